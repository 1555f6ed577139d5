package cache

import "testing"

// Every Cache-Status value portico sends, rendered by the one renderer.
func TestCacheStatusRendering(t *testing.T) {
	for _, tc := range []struct {
		s    cacheStatus
		want string
	}{
		{cacheStatus{hit: true, ttl: 42}, "portico; hit; ttl=42"},
		{cacheStatus{hit: true, ttl: -3}, "portico; hit; ttl=-3"},
		{cacheStatus{fwd: "uri-miss", stored: true}, "portico; fwd=uri-miss; stored"},
		{cacheStatus{fwd: "stale", fwdStatus: 304}, "portico; fwd=stale; fwd-status=304"},
		{cacheStatus{fwd: "stale", fwdStatus: 200, stored: true}, "portico; fwd=stale; fwd-status=200; stored"},
		{cacheStatus{fwd: "bypass"}, "portico; fwd=bypass"},
		{cacheStatus{fwd: "uri-miss", collapsed: true}, "portico; fwd=uri-miss; collapsed"},
		{cacheStatus{fwd: "stale", fwdStatus: 503, detail: "stale-if-error"}, "portico; fwd=stale; fwd-status=503; detail=stale-if-error"},
		{cacheStatus{fwd: "miss", detail: "only-if-cached"}, "portico; fwd=miss; detail=only-if-cached"},
	} {
		if got := tc.s.String(); got != tc.want {
			t.Errorf("%+v: %q, want %q", tc.s, got, tc.want)
		}
	}
}
