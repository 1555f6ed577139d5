package wsgi

import (
	"net/http"
	"strings"
	"testing"
)

// FuzzForwardHeaders checks the header rules that stop httpoxy, header
// aliasing and private-header spoofing, for any header names: nothing
// that reaches the adapter maps to HTTP_PROXY, has a byte that could alias
// another name, is private, or is hop-by-hop; and no two forwarded names
// map to the same HTTP_* variable.
func FuzzForwardHeaders(f *testing.F) {
	for _, s := range []string{"Proxy", "X_Foo", "x-portico-scheme", "X-Foo", "Connection", "proxy", "X.Y", "X-Portico-", "Content-Length", "Te"} {
		f.Add(s, "X-Foo")
	}
	f.Fuzz(func(t *testing.T, a, b string) {
		in := http.Header{a: {"1"}, b: {"2"}, "Connection": {b}}
		out := forwardHeaders(in)
		seen := map[string]string{}
		for k := range out {
			env := "HTTP_" + strings.ToUpper(strings.ReplaceAll(k, "-", "_"))
			if prev, ok := seen[env]; ok {
				t.Fatalf("%q and %q both map to %s", prev, k, env)
			}
			seen[env] = k
			switch {
			case env == "HTTP_PROXY":
				t.Fatalf("%q would become HTTP_PROXY", k)
			case !envSafeName(k):
				t.Fatalf("%q forwarded: not letters, digits and '-'", k)
			case strings.HasPrefix(strings.ToLower(k), "x-portico-"):
				t.Fatalf("private header %q forwarded", k)
			case responseHopByHop(http.CanonicalHeaderKey(k)), strings.EqualFold(k, b):
				t.Fatalf("hop-by-hop header %q forwarded", k)
			}
		}
	})
}

// FuzzDecodeFrame checks the parser of the adapter's framed log lines (a
// traceback as one record): any worker output is either an ordinary line
// or a frame whose text is the JSON string it carried, and nothing
// panics.
func FuzzDecodeFrame(f *testing.F) {
	for _, s := range []string{
		frameMark + `traceback "Traceback (most recent call last):\n  File \"x.py\"\nValueError: x\n"`,
		frameMark + `errors "two\nlines\n"`,
		frameMark + `traceback`,
		frameMark + ` "no kind"`,
		frameMark + `errors "unterminated`,
		frameMark + `errors 42`,
		"an ordinary line",
		"",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, line []byte) {
		kind, text, ok := decodeFrame(line)
		if !ok {
			if kind != "" || text != "" {
				t.Fatalf("not a frame, yet kind %q text %q", kind, text)
			}
			return
		}
		if !strings.HasPrefix(string(line), frameMark+kind+" ") || kind == "" {
			t.Fatalf("kind %q does not follow the mark in %q", kind, line)
		}
		if strings.HasSuffix(text, "\n") {
			t.Fatalf("text %q keeps its trailing newline", text)
		}
	})
}
