package config

import (
	"strings"
	"testing"
)

// TestParseUpstream pins the one upstream grammar that both Load and the
// proxy use; before it had one owner, Load accepted "unix:relative" that
// the proxy then refused at start.
func TestParseUpstream(t *testing.T) {
	for _, tc := range []struct {
		in      string
		want    Upstream
		wantErr string
	}{
		{in: "http://127.0.0.1:8080", want: Upstream{Scheme: "http", Host: "127.0.0.1:8080", Weight: 1}},
		{in: "https://app.test/", want: Upstream{Scheme: "https", Host: "app.test", Weight: 1}},
		{in: "http://[::1]:9000 weight=7", want: Upstream{Scheme: "http", Host: "[::1]:9000", Weight: 7}},
		{in: "unix:/run/app.sock weight=2", want: Upstream{Scheme: "http", Socket: "/run/app.sock", Weight: 2}},
		{in: "unix:run/app.sock", wantErr: "must be absolute"},
		{in: "unix:", wantErr: "want unix:/path"},
		{in: "", wantErr: "empty upstream"},
		{in: "ftp://x", wantErr: "want http://"},
		{in: "http://x/app", wantErr: "without path"},
		{in: "http://u@x", wantErr: "without path"},
		{in: "http://x:0", wantErr: "bad port"},
		{in: "http://x weight=0", wantErr: "weight=N"},
		{in: "http://x weight=1001", wantErr: "weight=N"},
		{in: "http://x backup", wantErr: "weight=N"},
	} {
		got, err := ParseUpstream(tc.in)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("ParseUpstream(%q) = %v, want error with %q", tc.in, err, tc.wantErr)
			}
			continue
		}
		tc.want.Raw = tc.in
		if err != nil || got != tc.want {
			t.Errorf("ParseUpstream(%q) = %+v, %v; want %+v", tc.in, got, err, tc.want)
		}
	}
}

func TestResolveUpstreamKeepsWeight(t *testing.T) {
	for in, want := range map[string]string{
		"unix:run/a.sock weight=3": "unix:/etc/portico/run/a.sock weight=3",
		"unix:/abs.sock":           "unix:/abs.sock",
		"http://x:1":               "http://x:1",
	} {
		if got := resolveUpstream("/etc/portico", in); got != want {
			t.Errorf("resolveUpstream(%q) = %q, want %q", in, got, want)
		}
	}
}

func FuzzParseUpstream(f *testing.F) {
	for _, s := range []string{"http://127.0.0.1:8080", "unix:/a.sock weight=2", "https://[::1]/", "http://x:99999"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		u, err := ParseUpstream(s)
		if err != nil {
			return
		}
		if (u.Host == "") == (u.Socket == "") {
			t.Fatalf("%q: exactly one of Host and Socket must be set: %+v", s, u)
		}
		if u.Weight < MinUpstreamWeight || u.Weight > MaxUpstreamWeight {
			t.Fatalf("%q: weight %d out of bounds", s, u.Weight)
		}
	})
}
