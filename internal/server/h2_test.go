package server

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// startTLSSite runs a TLS site serving dir/www (files given) with a
// certificate from a test CA, and returns its address and a client pool
// that trusts the CA.
func startTLSSite(t *testing.T, files map[string]string) (string, *x509.CertPool) {
	t.Helper()
	dir := t.TempDir()
	ca := newTestCA(t)
	ca.issue(t, dir, "", true)
	addr, roots := startCertFileSite(t, dir, ca, files)
	return addr, roots
}

// startCertFileSite serves files over TLS from dir, with the certificate
// files cert.pem and key.pem already there (issued by ca), and returns
// its address and a pool that trusts ca.
func startCertFileSite(t *testing.T, dir string, ca *testCA, files map[string]string) (string, *x509.CertPool) {
	t.Helper()
	os.MkdirAll(filepath.Join(dir, "www"), 0o755)
	for name, body := range files {
		os.WriteFile(filepath.Join(dir, "www", name), []byte(body), 0o644)
	}
	_, addr, _, _ := startServerTOML(t, dir, `
[server]
access_log = "off"
[[site]]
listen = ["127.0.0.1:0"]
tls = { cert = "cert.pem", key = "key.pem" }
http3 = false
  [[site.route]]
  path = "/"
  static = { root = "www" }
`)
	roots := x509.NewCertPool()
	roots.AddCert(ca.cert)
	return addr, roots
}

// A HEADERS frame larger than the 16 KiB frames portico accepts is the
// connection error FRAME_SIZE_ERROR (RFC 9113 section 4.2; h2spec 4.2/3),
// not a request answered 431.
func TestHTTP2OversizedFrameIsFrameSizeError(t *testing.T) {
	addr, roots := startTLSSite(t, map[string]string{"index.html": "home"})
	c, err := tls.Dial("tcp", addr, &tls.Config{ServerName: "localhost", RootCAs: roots, NextProtos: []string{"h2"}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	io.WriteString(c, http2.ClientPreface)
	fr := http2.NewFramer(c, c)
	fr.WriteSettings()
	var block bytes.Buffer
	enc := hpack.NewEncoder(&block)
	for _, f := range [][2]string{{":method", "GET"}, {":scheme", "https"}, {":authority", "localhost"}, {":path", "/"}} {
		enc.WriteField(hpack.HeaderField{Name: f[0], Value: f[1]})
	}
	for i := range 5 {
		enc.WriteField(hpack.HeaderField{Name: fmt.Sprintf("x-dummy%d", i), Value: strings.Repeat("x", 4000)})
	}
	if block.Len() <= 16<<10 {
		t.Fatalf("header block of %d bytes is not over 16 KiB", block.Len())
	}
	if err := fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: block.Bytes(), EndStream: true, EndHeaders: true}); err != nil {
		t.Fatal(err)
	}
	for {
		f, err := fr.ReadFrame()
		if err != nil {
			t.Fatalf("connection ended without GOAWAY FRAME_SIZE_ERROR: %v", err)
		}
		switch f := f.(type) {
		case *http2.GoAwayFrame:
			if f.ErrCode != http2.ErrCodeFrameSize {
				t.Fatalf("GOAWAY %v, want FRAME_SIZE_ERROR", f.ErrCode)
			}
			return
		case *http2.HeadersFrame:
			t.Fatal("the oversized request was answered")
		}
	}
}

// Many concurrent HTTP/2 responses, small and large, arrive whole and
// in order of bytes through the write-behind connection, over a few
// connections; so do HTTP/1.1 responses on connections closed after them.
func TestHTTP2ResponsesWholeThroughWriteBehind(t *testing.T) {
	small := strings.Repeat("s", 1024)
	large := strings.Repeat("0123456789abcdef", 64<<10) // 1 MiB: Writes wait for room
	addr, roots := startTLSSite(t, map[string]string{"small.html": small, "large.bin": large})
	tr := &http2.Transport{TLSClientConfig: &tls.Config{ServerName: "localhost", RootCAs: roots}}
	defer tr.CloseIdleConnections()
	cl := &http.Client{Transport: tr, Timeout: 30 * time.Second}
	var wg sync.WaitGroup
	errs := make(chan error, 200)
	for i := range 200 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			path, want := "/small.html", small
			if i%20 == 0 {
				path, want = "/large.bin", large
			}
			resp, err := cl.Get("https://" + addr + path)
			if err != nil {
				errs <- err
				return
			}
			defer resp.Body.Close()
			b, err := io.ReadAll(resp.Body)
			if err != nil || resp.ProtoMajor != 2 || string(b) != want {
				errs <- fmt.Errorf("%s: %s, %d bytes, %v", path, resp.Proto, len(b), err)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}

	h1 := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{ServerName: "localhost", RootCAs: roots}, DisableKeepAlives: true}}
	for range 5 {
		req, _ := http.NewRequest("GET", "https://"+addr+"/large.bin", nil)
		req.Close = true
		resp, err := h1.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || resp.ProtoMajor != 1 || string(b) != large {
			t.Fatalf("HTTP/1.1 with Connection: close: %s, %d bytes, %v", resp.Proto, len(b), err)
		}
	}
}
