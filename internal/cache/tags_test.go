package cache

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"portico/internal/config"
)

func TestParseTags(t *testing.T) {
	long := strings.Repeat("x", maxTagLen+1)
	cases := []struct {
		in   []string
		want []string
	}{
		{nil, nil},
		{[]string{"a, b,c"}, []string{"a", "b", "c"}},           // Cache-Tag
		{[]string{"a b\tc", "d"}, []string{"a", "b", "c", "d"}}, // Surrogate-Key
		{[]string{"a,a, ,," + long}, []string{"a"}},
	}
	for _, tc := range cases {
		hdr := map[string][]string{"Cache-Tag": tc.in}
		if got := parseTags(hdr, "Cache-Tag"); !slices.Equal(got, tc.want) {
			t.Errorf("parseTags(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
	many := make([]string, 100)
	for i := range many {
		many[i] = fmt.Sprint(i)
	}
	if got := parseTags(map[string][]string{"Cache-Tag": {strings.Join(many, ",")}}, "Cache-Tag"); len(got) != maxTags {
		t.Errorf("%d tags kept, want %d", len(got), maxTags)
	}
}

// Tags are stripped before the client on every path (miss, hit, HEAD,
// unsafe methods), and PurgeTag removes exactly the tagged entries.
func TestTagPurgeMemory(t *testing.T) {
	o := newOrigin(nil, 200, "x", "Cache-Control", "max-age=60", "Surrogate-Key", "all product-1")
	h := newTestCache(t, config.Cache{TagHeader: "surrogate-key"}, o, nil)
	for _, u := range []string{"http://a.test/p1", "http://a.test/p1/img"} {
		if res := do(h, "GET", u); res.Header.Get("Surrogate-Key") != "" {
			t.Errorf("miss %s: Surrogate-Key reached the client", u)
		}
	}
	o.set(200, "y", "Cache-Control", "max-age=60", "Surrogate-Key", "all product-2")
	do(h, "GET", "http://a.test/p2")
	for _, m := range []string{"GET", "HEAD", "POST", "OPTIONS"} {
		if res := do(h, m, "http://a.test/p2"); res.Header.Get("Surrogate-Key") != "" {
			t.Errorf("%s: Surrogate-Key reached the client", m)
		}
	}
	do(h, "GET", "http://a.test/p2") // refill after the POST
	n, err := h.PurgeTag(context.Background(), "product-1")
	if err != nil || n != 2 {
		t.Fatalf("PurgeTag(product-1) = %d, %v; want 2", n, err)
	}
	for u, want := range map[string]string{"http://a.test/p1": "uri-miss", "http://a.test/p1/img": "uri-miss", "http://a.test/p2": "hit"} {
		if cs := do(h, "GET", u, "Cache-Control", "only-if-cached").Header.Get("Cache-Status"); !strings.Contains(cs, want) && !(want == "uri-miss" && strings.Contains(cs, "only-if-cached")) {
			t.Errorf("after PurgeTag: %s Cache-Status %q, want %s", u, cs, want)
		}
	}
	if n, _ := h.PurgeTag(context.Background(), "all"); n != 1 {
		t.Errorf("PurgeTag(all) = %d, want 1 (p2 left)", n)
	}
	if _, err := h.PurgeTag(context.Background(), ""); err == nil {
		t.Error("PurgeTag(\"\"): no error")
	}
}

// With Redis the tag index is shared: a purge by tag on one process
// removes the entries another process stored.
func TestTagPurgeRedisAcrossProcesses(t *testing.T) {
	addr := needRedis(t)
	name := "tags-" + fmt.Sprint(time.Now().UnixNano())
	o := newOrigin(nil, 200, "x", "Cache-Control", "max-age=60", "Cache-Tag", "red, blue")
	h1, err := New(filled(config.Cache{Store: "redis://" + addr + "/0", TagHeader: "Cache-Tag"}), o, Options{Name: name})
	if err != nil {
		t.Fatal(err)
	}
	defer h1.Close(context.Background())
	h2, err := New(filled(config.Cache{Store: "redis://" + addr + "/0", TagHeader: "Cache-Tag"}), o, Options{Name: name})
	if err != nil {
		t.Fatal(err)
	}
	defer h2.Close(context.Background())
	do(h1, "GET", "http://a.test/one")
	o.set(200, "x", "Cache-Control", "max-age=60", "Cache-Tag", "green", "Vary", "Accept")
	do(h1, "GET", "http://a.test/two", "Accept", "a")
	if res := waitCached(t, h2, "http://a.test/one"); res.Header.Get("Cache-Tag") != "" {
		t.Error("a hit sent Cache-Tag")
	}
	waitCached(t, h2, "http://a.test/two", "Accept", "a")
	n, err := h2.PurgeTag(context.Background(), "blue")
	if err != nil || n != 1 {
		t.Fatalf("PurgeTag(blue) = %d, %v; want 1", n, err)
	}
	if r := do(h1, "GET", "http://a.test/one", "Cache-Control", "only-if-cached"); r.StatusCode != 504 {
		t.Errorf("after PurgeTag on the other process: %d, want 504", r.StatusCode)
	}
	if n, err := h2.PurgeTag(context.Background(), "green"); err != nil || n != 1 {
		t.Errorf("PurgeTag(green) = %d, %v; want 1 (the variant)", n, err)
	}
	if r := do(h1, "GET", "http://a.test/two", "Accept", "a", "Cache-Control", "only-if-cached"); r.StatusCode != 504 {
		t.Errorf("variant after PurgeTag: %d, want 504", r.StatusCode)
	}
}

// RFC 9111 section 4.1: values of a Vary field may be normalised before
// they are compared; portico drops blanks around commas and folds the case
// of Accept-Language, on both engines' key builders.
func TestVaryNormalisation(t *testing.T) {
	same := [][2]string{
		{"Foo", "1,2"}, {"Foo", " 1, 2 "}, {"Foo", "1 ,\t2"},
	}
	for _, kv := range same {
		if got := secondaryKey(map[string][]string{kv[0]: {kv[1]}}, []string{kv[0]}); got != "Foo=1,2\n" {
			t.Errorf("secondaryKey(%q) = %q", kv[1], got)
		}
		raw := []byte(kv[0] + ": " + kv[1] + "\r\n")
		if got := string(appendSecondaryKey(nil, []string{kv[0]}, nil, raw)); got != "Foo=1,2\n" {
			t.Errorf("fast path key(%q) = %q", kv[1], got)
		}
	}
	for _, v := range []string{"en, de", "eN, De", " en ,   de"} {
		if got := secondaryKey(map[string][]string{"Accept-Language": {v}}, []string{"Accept-Language"}); got != "Accept-Language=en,de\n" {
			t.Errorf("Accept-Language %q: key %q", v, got)
		}
	}
	if a, b := secondaryKey(map[string][]string{"Foo": {"a b"}}, []string{"Foo"}), secondaryKey(map[string][]string{"Foo": {"ab"}}, []string{"Foo"}); a == b {
		t.Error("blanks inside a value were dropped")
	}
	if a, b := secondaryKey(map[string][]string{"Accept-Language": {"en, de"}}, []string{"Accept-Language"}), secondaryKey(map[string][]string{"Accept-Language": {"de, en"}}, []string{"Accept-Language"}); a == b {
		t.Error("Accept-Language order was dropped (it states a preference)")
	}
}
