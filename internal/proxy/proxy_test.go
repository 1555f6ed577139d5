package proxy

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"portico/internal/config"
)

func TestNewRejectsBadConfig(t *testing.T) {
	cases := []struct {
		name  string
		cfg   config.Proxy
		field string
	}{
		{"none", config.Proxy{}, "proxy.upstreams"},
		{"bad url", config.Proxy{Upstreams: []string{"http://127.0.0.1:1", "http//x:1"}}, "proxy.upstreams[1]"},
		{"bad scheme", config.Proxy{Upstreams: []string{"ftp://127.0.0.1:1"}}, "proxy.upstreams[0]"},
		{"bad port", config.Proxy{Upstreams: []string{"http://127.0.0.1:99999"}}, "proxy.upstreams[0]"},
		{"path", config.Proxy{Upstreams: []string{"http://127.0.0.1:1/app"}}, "proxy.upstreams[0]"},
		{"relative unix", config.Proxy{Upstreams: []string{"unix:app.sock"}}, "proxy.upstreams[0]"},
		{"weight zero", config.Proxy{Upstreams: []string{"http://127.0.0.1:1 weight=0"}}, "proxy.upstreams[0]"},
		{"weight word", config.Proxy{Upstreams: []string{"http://127.0.0.1:1 weight=x"}}, "proxy.upstreams[0]"},
		{"unknown option", config.Proxy{Upstreams: []string{"http://127.0.0.1:1 backup"}}, "proxy.upstreams[0]"},
		{"balance", config.Proxy{Upstreams: []string{"http://127.0.0.1:1"}, Balance: "fastest"}, "proxy.balance"},
		{"health path", config.Proxy{Upstreams: []string{"http://127.0.0.1:1"}, Health: &config.Health{}}, "proxy.health.path"},
		{"health expect", config.Proxy{Upstreams: []string{"http://127.0.0.1:1"}, Health: &config.Health{Path: "/", Expect: 42}}, "proxy.health.expect"},
		{"host", config.Proxy{Upstreams: []string{"http://127.0.0.1:1"}, Host: "a b"}, "proxy.host"},
		{"max fails", config.Proxy{Upstreams: []string{"http://127.0.0.1:1"}, MaxFails: -1}, "proxy.max_fails"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			c.cfg.SetDefaults() // defaults do not make a bad value good
			h, err := New(c.cfg, Options{})
			if err == nil {
				h.Close(t.Context())
				t.Fatalf("New accepted %+v", c.cfg)
			}
			if !strings.HasPrefix(err.Error(), c.field+":") {
				t.Errorf("error %q does not name field %q", err, c.field)
			}
		})
	}
}

func TestNewAcceptsGoodConfig(t *testing.T) {
	for _, up := range []string{"http://127.0.0.1:8081", "https://example.test", "http://[::1]:80/", "unix:/run/app.sock weight=3", "http://h:1  weight=1000"} {
		cfg := config.Proxy{Upstreams: []string{up}}
		cfg.SetDefaults()
		h, err := New(cfg, Options{})
		if err != nil {
			t.Errorf("New(%q): %v", up, err)
			continue
		}
		h.Close(t.Context())
	}
}

func TestUnixSocketUpstream(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "app.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	var gotHost string
	up := serveUpstream(t, ln, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/healthz" {
			return
		}
		gotHost = r.Host
		io.WriteString(w, "unix "+r.URL.Path)
	}))
	h := newHandler(t, config.Proxy{Upstreams: []string{up.URL}, Host: "upstream"}, Options{})
	w := serve(h, "GET", "http://site.test/x", "", nil)
	if w.Code != 200 || body(t, w) != "unix /x" {
		t.Fatalf("got %d %q, want 200 %q", w.Code, body(t, w), "unix /x")
	}
	if gotHost != "localhost" {
		t.Errorf("Host: got %q, want %q", gotHost, "localhost")
	}

	// Active health checks reach the socket too.
	hh := newHandler(t, config.Proxy{Upstreams: []string{up.URL},
		Health: &config.Health{Path: "/healthz", Interval: ms(20)}}, Options{})
	before := up.reqs.Load()
	waitFor(t, 3*time.Second, "a health check over the socket", func() bool { return up.reqs.Load() > before })
	if hh.pool.ups[0].activeDown.Load() {
		t.Error("healthy unix upstream marked down")
	}
}

// sequence sends n GETs and returns the names that answered.
func sequence(t *testing.T, h http.Handler, n int, remote string) []string {
	t.Helper()
	var got []string
	for range n {
		w := serve(h, "GET", "/", remote, nil)
		if w.Code != 200 {
			t.Fatalf("status %d: %s", w.Code, w.Body)
		}
		got = append(got, body(t, w))
	}
	return got
}

func TestRoundRobin(t *testing.T) {
	a, b, c := startUpstream(t, named("a")), startUpstream(t, named("b")), startUpstream(t, named("c"))
	h := newHandler(t, config.Proxy{Upstreams: []string{a.URL, b.URL, c.URL}}, Options{})
	got := strings.Join(sequence(t, h, 6, ""), "")
	if got != "abcabc" {
		t.Errorf("got %q, want %q", got, "abcabc")
	}
}

func TestSmoothWeightedRoundRobin(t *testing.T) {
	a, b, c := startUpstream(t, named("a")), startUpstream(t, named("b")), startUpstream(t, named("c"))
	h := newHandler(t, config.Proxy{Upstreams: []string{a.URL + " weight=5", b.URL, c.URL}}, Options{})
	got := strings.Join(sequence(t, h, 14, ""), "")
	// nginx's smooth sequence for 5,1,1.
	if want := "aabacaaaabacaa"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestLeastConn(t *testing.T) {
	release := make(chan struct{})
	slow := startUpstream(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			<-release
		}
		io.WriteString(w, "slow")
	}))
	fast := startUpstream(t, named("fast"))
	h := newHandler(t, config.Proxy{Upstreams: []string{slow.URL, fast.URL}, Balance: "least_conn"}, Options{})
	fe := front(t, h)
	// Pin two long requests: with least_conn they spread one per upstream,
	// so "slow" holds one. Then every short request must go to "fast"
	// while slow has one in flight... unless both went to slow's twin.
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		resp, err := http.Get(fe.URL + "/slow")
		if err == nil {
			resp.Body.Close()
		}
	}()
	deadline := time.Now().Add(5 * time.Second)
	for h.pool.ups[0].active.Load()+h.pool.ups[1].active.Load() == 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	busy := "slow"
	if h.pool.ups[1].active.Load() == 1 {
		busy = "fast"
	}
	for i := range 6 {
		w := serve(h, "GET", "/", "", nil)
		if got := body(t, w); got == busy {
			t.Errorf("request %d went to busy upstream %q", i, got)
		}
	}
	close(release)
	wg.Wait()
}

func TestIPHashSticky(t *testing.T) {
	a, b, c := startUpstream(t, named("a")), startUpstream(t, named("b")), startUpstream(t, named("c"))
	h := newHandler(t, config.Proxy{Upstreams: []string{a.URL, b.URL, c.URL}, Balance: "ip_hash"}, Options{})
	seen := map[string]bool{}
	for i := range 30 {
		ip := fmt.Sprintf("10.0.%d.%d:1234", i, i*7)
		got := sequence(t, h, 4, ip)
		for _, g := range got[1:] {
			if g != got[0] {
				t.Fatalf("client %s moved: %v", ip, got)
			}
		}
		// Another port of the same client sticks too.
		if again := sequence(t, h, 1, fmt.Sprintf("10.0.%d.%d:999", i, i*7)); again[0] != got[0] {
			t.Fatalf("client %s moved with its port: %v then %v", ip, got, again)
		}
		seen[got[0]] = true
	}
	if len(seen) != 3 {
		t.Errorf("30 clients used %d upstreams, want 3", len(seen))
	}
}

func TestIPHashOnlyMovesClientsOfDownUpstream(t *testing.T) {
	a, b, c := startUpstream(t, named("a")), startUpstream(t, named("b")), startUpstream(t, named("c"))
	h := newHandler(t, config.Proxy{Upstreams: []string{a.URL, b.URL, c.URL}, Balance: "ip_hash"}, Options{})
	before := map[string]string{}
	for i := range 30 {
		ip := fmt.Sprintf("192.168.1.%d:1", i)
		before[ip] = sequence(t, h, 1, ip)[0]
	}
	h.pool.ups[1].activeDown.Store(true) // b leaves
	for ip, was := range before {
		now := sequence(t, h, 1, ip)[0]
		if was != "b" && now != was {
			t.Errorf("client %s moved from %s to %s though %s is up", ip, was, now, was)
		}
		if now == "b" {
			t.Errorf("client %s sent to down upstream b", ip)
		}
	}
}

func TestRandomTwoChoices(t *testing.T) {
	release := make(chan struct{})
	var once sync.Once
	hold := startUpstream(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/hold" {
			<-release
		}
		io.WriteString(w, "held")
	}))
	free := startUpstream(t, named("free"))
	t.Cleanup(func() { once.Do(func() { close(release) }) })
	h := newHandler(t, config.Proxy{Upstreams: []string{hold.URL, free.URL}, Balance: "random"}, Options{})
	counts := map[string]int{}
	for _, s := range sequence(t, h, 60, "") {
		counts[s]++
	}
	if counts["held"] < 10 || counts["free"] < 10 {
		t.Errorf("idle upstreams got %v, want both used", counts)
	}
	// Load "held" with in-flight requests: with two choices the less
	// loaded one wins whenever both are drawn, so "held" gets much less.
	h.pool.ups[0].active.Add(100)
	defer h.pool.ups[0].active.Add(-100)
	clear(counts)
	for _, s := range sequence(t, h, 200, "") {
		counts[s]++
	}
	// P(held) = P(both draws are held) = 1/4.
	if counts["held"] > 90 {
		t.Errorf("loaded upstream got %d of 200, want about 50", counts["held"])
	}
}

func TestHostModes(t *testing.T) {
	up := startUpstream(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, r.Host) }))
	cases := []struct{ mode, want string }{
		{"", "site.test"},
		{"client", "site.test"},
		{"upstream", up.Addr},
		{"app.internal", "app.internal"},
	}
	for _, c := range cases {
		h := newHandler(t, config.Proxy{Upstreams: []string{up.URL}, Host: c.mode}, Options{})
		if got := body(t, serve(h, "GET", "http://site.test/", "", nil)); got != c.want {
			t.Errorf("host %q: got %q, want %q", c.mode, got, c.want)
		}
	}
}

func TestReadTimeout(t *testing.T) {
	release := make(chan struct{})
	up := startUpstream(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer close(release)
	h := newHandler(t, config.Proxy{Upstreams: []string{up.URL}, ReadTimeout: ms(200)}, Options{})
	start := time.Now()
	w := serve(h, "GET", "/", "", nil)
	if w.Code != http.StatusGatewayTimeout {
		t.Errorf("status %d, want 504", w.Code)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("took %v, want about 200ms", d)
	}
}

// TestConnectTimeout dials a listener whose accept queue is full: Linux
// drops the SYN, so the connect hangs until connect_timeout.
func TestConnectTimeout(t *testing.T) {
	// A listening socket with backlog 0 that never accepts.
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer syscall.Close(fd)
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Listen(fd, 0); err != nil {
		t.Fatal(err)
	}
	sa, _ := syscall.Getsockname(fd)
	addr := fmt.Sprintf("127.0.0.1:%d", sa.(*syscall.SockaddrInet4).Port)
	var conns []net.Conn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	filled := false
	for range 64 {
		c, err := net.DialTimeout("tcp", addr, 100*time.Millisecond)
		if err != nil {
			filled = true
			break
		}
		conns = append(conns, c)
	}
	if !filled {
		t.Skip("could not fill the accept queue")
	}
	h := newHandler(t, config.Proxy{Upstreams: []string{"http://" + addr}, ConnectTimeout: ms(200)}, Options{})
	start := time.Now()
	w := serve(h, "GET", "/", "", nil)
	if w.Code != http.StatusGatewayTimeout {
		t.Errorf("status %d, want 504", w.Code)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("took %v, want about 200ms", d)
	}
}

// echoHeaders answers with the request headers the upstream saw.
func echoHeaders() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		r.Header.Write(w)
	})
}

func parseHeaders(t *testing.T, s string) http.Header {
	t.Helper()
	h := http.Header{}
	sc := bufio.NewScanner(strings.NewReader(s))
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ": ")
		if ok {
			h.Add(k, v)
		}
	}
	return h
}

func TestForwardedHeaders(t *testing.T) {
	up := startUpstream(t, echoHeaders())
	trusted := []netip.Prefix{netip.MustParsePrefix("10.1.0.0/16")}
	h := newHandler(t, config.Proxy{Upstreams: []string{up.URL}}, Options{TrustedProxies: trusted})
	forged := http.Header{
		"X-Forwarded-For":   {"6.6.6.6"},
		"X-Forwarded-Host":  {"evil.test"},
		"X-Forwarded-Proto": {"https"},
		"Forwarded":         {"for=6.6.6.6"},
		"Via":               {"1.0 cdn"},
	}
	cases := []struct {
		name, remote string
		tls          bool
		in           http.Header
		want         map[string]string
	}{
		{"untrusted forged", "203.0.113.9:5000", false, forged, map[string]string{
			"X-Forwarded-For": "203.0.113.9", "X-Forwarded-Host": "site.test",
			"X-Forwarded-Proto": "http", "Forwarded": "", "Via": "1.0 cdn, 1.1 portico"}},
		{"untrusted tls", "203.0.113.9:5000", true, nil, map[string]string{
			"X-Forwarded-For": "203.0.113.9", "X-Forwarded-Proto": "https", "Via": "1.1 portico"}},
		{"trusted appends", "10.1.2.3:5000", false, forged, map[string]string{
			"X-Forwarded-For": "6.6.6.6, 10.1.2.3", "X-Forwarded-Host": "evil.test",
			"X-Forwarded-Proto": "https", "Forwarded": "for=6.6.6.6"}},
		{"trusted multi-line xff", "10.1.2.3:5000", false, http.Header{"X-Forwarded-For": {"1.1.1.1", "2.2.2.2"}},
			map[string]string{"X-Forwarded-For": "1.1.1.1, 2.2.2.2, 10.1.2.3", "X-Forwarded-Host": "site.test", "X-Forwarded-Proto": "http"}},
		{"ipv6 client", "[2001:db8::1]:5000", false, nil, map[string]string{"X-Forwarded-For": "2001:db8::1"}},
		{"httpoxy", "203.0.113.9:5000", false, http.Header{"Proxy": {"http://evil:1"}}, map[string]string{"Proxy": ""}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := httptestRequest("GET", "http://site.test/", c.remote, c.in)
			if c.tls {
				r.TLS = &tls.ConnectionState{}
			}
			w := recorderServe(h, r)
			got := parseHeaders(t, w.Body.String())
			for k, want := range c.want {
				if g := strings.Join(got.Values(k), ", "); g != want {
					t.Errorf("%s: got %q, want %q", k, g, want)
				}
			}
		})
	}
}

// TestConnectionCannotStripForwardingHeaders: a client that names
// X-Forwarded-For (and friends) in Connection must not make portico drop
// the headers it adds (hop-by-hop abuse).
func TestConnectionCannotStripForwardingHeaders(t *testing.T) {
	up := startUpstream(t, echoHeaders())
	h := newHandler(t, config.Proxy{Upstreams: []string{up.URL}}, Options{})
	fe := front(t, h)
	req, _ := http.NewRequest("GET", fe.URL+"/", nil)
	req.Header.Set("Connection", "X-Forwarded-For, X-Forwarded-Host, X-Forwarded-Proto, Via, X-Secret")
	req.Header.Set("X-Secret", "hop")
	req.Header.Set("Keep-Alive", "timeout=5")
	req.Header.Set("Proxy-Connection", "keep-alive")
	req.Header.Set("Upgrade-Insecure-Requests", "1") // end-to-end, must pass
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	got := parseHeaders(t, string(b))
	for _, k := range []string{"X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Proto", "Via", "Upgrade-Insecure-Requests"} {
		if got.Get(k) == "" {
			t.Errorf("%s missing upstream:\n%s", k, b)
		}
	}
	for _, k := range []string{"X-Secret", "Keep-Alive", "Proxy-Connection"} {
		if v := got.Get(k); v != "" {
			t.Errorf("hop-by-hop %s reached upstream: %q", k, v)
		}
	}
}

func TestResponseHopByHopStripped(t *testing.T) {
	up := startUpstream(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Connection", "X-Internal")
		w.Header().Set("X-Internal", "secret")
		w.Header().Set("Keep-Alive", "timeout=99")
		w.Header().Set("Proxy-Authenticate", "Basic")
		w.Header().Set("X-App", "kept")
		io.WriteString(w, "ok")
	}))
	h := newHandler(t, config.Proxy{Upstreams: []string{up.URL}}, Options{})
	fe := front(t, h)
	resp, err := http.Get(fe.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	for _, k := range []string{"X-Internal", "Keep-Alive", "Proxy-Authenticate"} {
		if v := resp.Header.Get(k); v != "" {
			t.Errorf("hop-by-hop %s reached client: %q", k, v)
		}
	}
	if resp.Header.Get("X-App") != "kept" {
		t.Errorf("X-App lost")
	}
	if v := resp.Header.Get("Via"); v != "1.1 portico" {
		t.Errorf("Via: got %q, want %q", v, "1.1 portico")
	}
}

// TestEscapedPathForwardedAsReceived: %2F, %3F, %23 must stay encoded
// (Apache CVE-2024-38473), and the query passes untouched.
func TestEscapedPathForwardedAsReceived(t *testing.T) {
	up := startUpstream(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, r.RequestURI)
	}))
	h := newHandler(t, config.Proxy{Upstreams: []string{up.URL}}, Options{})
	fe := front(t, h)
	for _, target := range []string{
		"/a%2Fb",
		"/x.php%3F.css",
		"/a%23frag/b",
		"/%2e%2e/%2e%2e/etc/passwd",
		"/caf%C3%A9/%41",
		"/p?q=1;r=2&s=%2F",
		"/sp%20ace?x",
	} {
		c, err := net.Dial("tcp", fe.Listener.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: site.test\r\nConnection: close\r\n\r\n", target)
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		c.Close()
		if string(b) != target {
			t.Errorf("upstream saw %q, want %q", b, target)
		}
	}
}

// TestAbsoluteFormCannotPickUpstream: an absolute-form request target (or a
// Host header) never chooses where the request goes (SSRF).
func TestAbsoluteFormCannotPickUpstream(t *testing.T) {
	victim := startUpstream(t, named("victim"))
	up := startUpstream(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "app "+r.RequestURI)
	}))
	h := newHandler(t, config.Proxy{Upstreams: []string{up.URL}}, Options{})
	fe := front(t, h)
	for _, target := range []string{"http://" + victim.Addr + "/steal", "//" + victim.Addr + "/steal"} {
		c, err := net.Dial("tcp", fe.Listener.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n", target, victim.Addr)
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		c.Close()
		if !strings.HasPrefix(string(b), "app ") {
			t.Errorf("GET %s: answered by %q", target, b)
		}
	}
	if n := victim.reqs.Load(); n != 0 {
		t.Errorf("victim got %d requests", n)
	}
}

// TestProxyReframesRequests: whatever framing a client sends, the upstream
// gets one unambiguous framing (never both Content-Length and
// Transfer-Encoding), so the two cannot disagree on where a request ends.
func TestProxyReframesRequests(t *testing.T) {
	type seen struct {
		cl, te string
		body   string
	}
	got := make(chan seen, 4)
	up := startUpstream(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got <- seen{r.Header.Get("Content-Length"), strings.Join(r.TransferEncoding, ","), string(b)}
	}))
	h := newHandler(t, config.Proxy{Upstreams: []string{up.URL}}, Options{})
	fe := front(t, h)
	raw := "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n" +
		"5\r\nhello\r\n0\r\n\r\n"
	c, err := net.Dial("tcp", fe.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	io.WriteString(c, raw)
	io.ReadAll(c)
	select {
	case s := <-got:
		if s.cl != "" && s.te != "" {
			t.Errorf("upstream got both Content-Length %q and Transfer-Encoding %q", s.cl, s.te)
		}
		if s.body != "hello" {
			t.Errorf("upstream body %q, want the chunked one", s.body)
		}
	default:
		// Rejected before reaching the upstream is fine too.
	}
}

// TestNewTrustsConfig: New fills no defaults of its own (config's
// SetDefaults is their one owner), so an unfilled config is refused, not
// silently run with zero timeouts.
func TestNewTrustsConfig(t *testing.T) {
	h, err := New(config.Proxy{Upstreams: []string{"http://127.0.0.1:1"}}, Options{})
	if err == nil {
		h.Close(t.Context())
		t.Fatal("New accepted a config without its defaults")
	}
	if !strings.Contains(err.Error(), "SetDefaults") {
		t.Errorf("error %q does not say what is missing", err)
	}
}
