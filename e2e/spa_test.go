package e2e

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// spaExampleDir is the example of examples/spa, whose dist/ .ci/run builds
// with npm (npm talks to the registry, which tests do not).
const spaExampleDir = "../examples/spa"

// startSPAExample runs examples/spa/portico.toml as it is, on a free
// loopback port, serving the built examples/spa/dist.
func startSPAExample(t *testing.T) *Proc {
	t.Helper()
	abs, err := filepath.Abs(spaExampleDir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(abs, "dist", "index.html")); err != nil {
		if testing.Short() {
			t.Skip("examples/spa is not built (-short)")
		}
		t.Fatalf("examples/spa is not built: run `cd examples/spa && npm ci && npm run build` (.ci/run does): %v", err)
	}
	raw, err := os.ReadFile(filepath.Join(abs, "portico.toml"))
	if err != nil {
		t.Fatal(err)
	}
	cfg := string(raw)
	// The config as shipped, but on a free port and with its roots made
	// absolute, since it runs from a temporary folder.
	for old, repl := range map[string]string{
		`listen = ["127.0.0.1:8080"]`: `listen = ["127.0.0.1:0"]`,
		`root = "dist"`:               `root = "` + filepath.Join(abs, "dist") + `"`,
		`root = "dist/assets"`:        `root = "` + filepath.Join(abs, "dist", "assets") + `"`,
	} {
		if !strings.Contains(cfg, old) {
			t.Fatalf("examples/spa/portico.toml no longer holds %s; update this test", old)
		}
		cfg = strings.Replace(cfg, old, repl, 1)
	}
	return startConfig(t, t.TempDir(), cfg, 1)
}

var (
	assetRef     = regexp.MustCompile(`(?:src|href)="(/assets/[^"]+\.(?:js|css))"`)
	immutableCC  = "public, max-age=31536000, immutable"
	browserHTML  = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
	anchorHref   = regexp.MustCompile(`<a [^>]*href="([^"]*)"`)
	itemLinkHref = regexp.MustCompile(`<a href="([^"]*)" class="item-link">`)
)

// TestSPAExampleCaching checks the caching the example's header rules
// promise: fingerprinted assets immutable for a year; the page itself,
// whether asked for as /, /index.html or a deep link, revalidated
// (no-cache); and a missing asset a 404, not index.html.
func TestSPAExampleCaching(t *testing.T) {
	p := startSPAExample(t)

	var index string
	for _, path := range []string{"/", "/index.html", "/items/2", "/no/such/page"} {
		resp, body := get(t, p.URL(path), "Accept", browserHTML)
		if resp.StatusCode != 200 || !strings.Contains(body, `<div id="app"></div>`) {
			t.Errorf("GET %s (a browser navigation): %d, want 200 with index.html:\n%.300s", path, resp.StatusCode, body)
		}
		if cc := resp.Header.Get("Cache-Control"); cc != "no-cache" {
			t.Errorf("GET %s: Cache-Control %q, want no-cache", path, cc)
		}
		if path == "/" {
			index = body
		}
	}

	assets := assetRef.FindAllStringSubmatch(index, -1)
	var sawJS bool
	for _, m := range assets {
		resp, body := get(t, p.URL(m[1]), "Accept", "*/*")
		if resp.StatusCode != 200 || len(body) == 0 {
			t.Errorf("GET %s: %d, %d bytes", m[1], resp.StatusCode, len(body))
		}
		if cc := resp.Header.Get("Cache-Control"); cc != immutableCC {
			t.Errorf("GET %s: Cache-Control %q, want %q", m[1], cc, immutableCC)
		}
		if strings.HasSuffix(m[1], ".js") {
			sawJS = true
			if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/javascript") {
				t.Errorf("GET %s: Content-Type %q, want text/javascript", m[1], ct)
			}
		}
	}
	if !sawJS {
		t.Fatalf("index.html names no /assets/*.js (a Vite build does):\n%s", index)
	}

	// A missing asset: fetched by a script tag (*/*), by a bare client, and
	// even by a browser navigating to it, it is a 404 without a year of
	// caching, never index.html.
	for _, accept := range []string{"*/*", "", browserHTML} {
		resp, body := get(t, p.URL("/assets/x.js"), "Accept", accept)
		if resp.StatusCode != 404 || strings.Contains(body, `<div id="app">`) {
			t.Errorf("GET /assets/x.js (Accept %q): %d, want 404 and not index.html:\n%.200s", accept, resp.StatusCode, body)
		}
		if cc := resp.Header.Get("Cache-Control"); strings.Contains(cc, "immutable") || strings.Contains(cc, "max-age=31536000") {
			t.Errorf("GET /assets/x.js (Accept %q): Cache-Control %q on a 404", accept, cc)
		}
	}
}

// viewOf returns the rendered <main> of a dumped DOM: what vue-router put
// on the page.
func viewOf(dom string) string {
	start := strings.Index(dom, "<main>")
	end := strings.Index(dom, "</main>")
	if start < 0 || end < start {
		return ""
	}
	return dom[start : end+len("</main>")]
}

// renderSPA loads url in a fresh headless chromium and returns the DOM
// once the app has run (virtual time lets the module scripts load).
func renderSPA(t *testing.T, url string) string {
	t.Helper()
	return runChromium(t, "--virtual-time-budget=10000", "--dump-dom", url)
}

// TestSPAExampleInBrowser opens the Vue example in headless chromium as a
// user would: a deep link straight to a detail page, the list page whose
// router links must be real history-mode URLs, each of those URLs opened
// directly (what clicking and then reloading does), a fresh reload of the
// deep link, and an unknown client route showing the app's 404 view.
func TestSPAExampleInBrowser(t *testing.T) {
	p := startSPAExample(t)

	// A deep link: the server answers /items/2 with index.html, the router
	// renders the detail view.
	first := viewOf(renderSPA(t, p.URL("/items/2")))
	if !strings.Contains(first, `id="view-item"`) || !strings.Contains(first, "Item 2: Column") {
		t.Fatalf("deep link /items/2 did not render the detail view:\n%s", first)
	}

	// The list page: its links are history-mode URLs (/items/3, not #/items/3).
	list := renderSPA(t, p.URL("/items"))
	if !strings.Contains(list, `id="view-items"`) {
		t.Fatalf("/items did not render the list view:\n%s", list)
	}
	links := itemLinkHref.FindAllStringSubmatch(list, -1)
	if len(links) != 3 {
		t.Fatalf("want 3 item links on /items, got %d:\n%s", len(links), list)
	}
	for i, l := range links {
		if want := "/items/" + string(rune('1'+i)); l[1] != want {
			t.Errorf("item link %d: href %q, want %q (history mode)", i+1, l[1], want)
		}
	}
	var navHrefs []string
	for _, m := range anchorHref.FindAllStringSubmatch(list, -1) {
		if strings.Contains(m[1], "#") {
			t.Errorf("link %q is a hash-mode URL", m[1])
		}
		navHrefs = append(navHrefs, m[1])
	}
	if !strings.Contains(strings.Join(navHrefs, " "), "/items") {
		t.Errorf("the nav has no /items link: %v", navHrefs)
	}

	// Following a link from the list, opened directly as a new tab would.
	third := viewOf(renderSPA(t, p.URL(links[2][1])))
	if !strings.Contains(third, "Item 3: Bench") {
		t.Errorf("link %s opened directly did not render item 3:\n%s", links[2][1], third)
	}

	// A reload: a second, fresh load of the deep link renders the same view.
	if again := viewOf(renderSPA(t, p.URL("/items/2"))); again != first {
		t.Errorf("reloading /items/2 rendered something else:\nfirst:  %s\nreload: %s", first, again)
	}

	// A path the app does not know: the client-side 404 view.
	if nf := viewOf(renderSPA(t, p.URL("/no/such/page"))); !strings.Contains(nf, `id="view-not-found"`) || !strings.Contains(nf, "/no/such/page") {
		t.Errorf("/no/such/page did not render the app's 404 view:\n%s", nf)
	}
}
