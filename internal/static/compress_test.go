package static

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/gzip"

	"portico/internal/compress"
	"portico/internal/config"
)

func compressedHandler(t *testing.T, cacheControl string, files map[string]string) *Handler {
	t.Helper()
	dir := t.TempDir()
	for name, body := range files {
		os.MkdirAll(filepath.Dir(filepath.Join(dir, name)), 0o755)
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	comp, err := compress.NewSettings(config.Compression{Encodings: []string{"br", "gzip"}, MinSize: 1024, Types: config.DefaultCompressTypes(), Level: 1})
	if err != nil {
		t.Fatal(err)
	}
	cfg := config.Static{Root: dir, CacheControl: cacheControl}
	cfg.SetDefaults()
	h, err := New(cfg, Options{Compress: comp})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close(context.Background()) })
	return h
}

func get(h http.Handler, path string, header ...string) *httptest.ResponseRecorder {
	r := httptest.NewRequest("GET", path, nil)
	for i := 0; i+1 < len(header); i += 2 {
		r.Header.Set(header[i], header[i+1])
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

// A file is compressed once per encoding: the variant is kept in the
// open-file cache, counted in its bytes, and replaced when the file changes.
func TestCompressOncePerVariant(t *testing.T) {
	css := strings.Repeat(".a { color: red; }\n", 500)
	h := compressedHandler(t, "", map[string]string{"a.css": css})
	w1 := get(h, "/a.css", "Accept-Encoding", "gzip")
	w2 := get(h, "/a.css", "Accept-Encoding", "gzip")
	if w1.Header().Get("Content-Encoding") != "gzip" || !bytes.Equal(w1.Body.Bytes(), w2.Body.Bytes()) {
		t.Fatalf("gzip variant: %v", w1.Header())
	}
	zr, _ := gzip.NewReader(w1.Body)
	if dec, _ := io.ReadAll(zr); string(dec) != css {
		t.Fatal("variant does not decode to the file")
	}
	n := h.cache.get("a.css")
	e := n.dyn.enc[encGzip].Load()
	if e == nil || len(e.Body) != w2.Body.Len() {
		t.Fatal("variant not kept in the node")
	}
	h.cache.mu.RLock()
	bytesHeld := h.cache.bytes
	h.cache.mu.RUnlock()
	if bytesHeld != int64(len(css))+int64(len(e.Body)) {
		t.Errorf("cache holds %d bytes, want file + variant = %d", bytesHeld, len(css)+len(e.Body))
	}
	if wb := get(h, "/a.css", "Accept-Encoding", "br"); wb.Header().Get("Content-Encoding") != "br" || n.dyn.enc[encBr].Load() == nil {
		t.Errorf("br variant: %v", wb.Header())
	}
	// An edit shows up after revalidation, compressed afresh.
	os.WriteFile(filepath.Join(h.rootReal, "a.css"), []byte(strings.Repeat(".b{}\n", 400)), 0o644)
	future := time.Now().Add(time.Hour)
	os.Chtimes(filepath.Join(h.rootReal, "a.css"), future, future)
	n.checked.Store(0)
	w3 := get(h, "/a.css", "Accept-Encoding", "gzip")
	zr, _ = gzip.NewReader(w3.Body)
	if dec, _ := io.ReadAll(zr); string(dec) != strings.Repeat(".b{}\n", 400) {
		t.Errorf("after an edit: decoded %.20q", dec)
	}
}

func TestCompressNoTransform(t *testing.T) {
	h := compressedHandler(t, "public, no-transform", map[string]string{"a.css": strings.Repeat("x{}", 1000)})
	if w := get(h, "/a.css", "Accept-Encoding", "gzip"); w.Header().Get("Content-Encoding") != "" || w.Header().Get("Vary") != "" {
		t.Errorf("no-transform file compressed: %v", w.Header())
	}
}

// Serving a kept variant costs no allocation (the fast path's lookup).
func TestCompressedLookupNoAlloc(t *testing.T) {
	h := compressedHandler(t, "", map[string]string{"app.js": strings.Repeat("let x = 1;\n", 300)})
	if e, err := h.lookup("/app.js", "", "gzip, deflate, br", false); err != nil || e.Encoding != "br" {
		t.Fatalf("lookup: %v %v", e, err)
	}
	n := testing.AllocsPerRun(100, func() {
		if e, _ := h.lookup("/app.js", "", "gzip, deflate, br", false); e == nil || e.Encoding != "br" {
			t.Fatal("not the br variant")
		}
	})
	if n != 0 {
		t.Errorf("lookup of a compressed variant allocates %v times", n)
	}
}
