package e2e

// Minimal HTTP/1.1 pieces for load in fault tests: an upstream and a
// keep-alive client that cost little per request, so that under -race the
// test process (net/http there is several times slower) does not throttle
// the load it drives through portico.

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// rawPageServer answers every request on its keep-alive connections with
// a public, cacheable page of size bytes that starts with the request
// path padded to 32 bytes. It returns its base URL; it stops with the test.
func rawPageServer(t *testing.T, size int) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	head := fmt.Sprintf("HTTP/1.1 200 OK\r\nCache-Control: public, max-age=600\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n\r\n", size)
	filler := bytes.Repeat([]byte("x"), size-32)
	var mu sync.Mutex
	conns := map[net.Conn]bool{}
	var wg sync.WaitGroup
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns[c] = true
			mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer func() { mu.Lock(); delete(conns, c); mu.Unlock(); c.Close() }()
				br, bw := bufio.NewReader(c), bufio.NewWriter(c)
				for {
					line, err := br.ReadString('\n')
					if err != nil {
						return
					}
					f := strings.Fields(line)
					if len(f) != 3 {
						return
					}
					for { // the header fields: a GET has no body to skip
						h, err := br.ReadSlice('\n')
						if err != nil {
							return
						}
						if len(bytes.TrimSpace(h)) == 0 {
							break
						}
					}
					fmt.Fprintf(bw, "%s%-32s", head, f[1])
					bw.Write(filler)
					if bw.Flush() != nil {
						return
					}
				}
			}()
		}
	}()
	return "http://" + ln.Addr().String()
}

// rawClient sends GETs on one keep-alive connection (redialled after an
// error) and reads Content-Length framed answers.
type rawClient struct {
	addr string
	c    net.Conn
	br   *bufio.Reader
}

// get returns the status, the Cache-Status field and the body length.
func (rc *rawClient) get(path string) (int, string, int64, error) {
	if rc.c == nil {
		c, err := net.DialTimeout("tcp", rc.addr, 5*time.Second)
		if err != nil {
			return 0, "", 0, err
		}
		rc.c, rc.br = c, bufio.NewReader(c)
	}
	status, cacheStatus, n, err := rc.roundTrip(path)
	if err != nil {
		rc.c.Close()
		rc.c = nil
	}
	return status, cacheStatus, n, err
}

func (rc *rawClient) roundTrip(path string) (int, string, int64, error) {
	rc.c.SetDeadline(time.Now().Add(15 * time.Second))
	if _, err := fmt.Fprintf(rc.c, "GET %s HTTP/1.1\r\nHost: load.test\r\n\r\n", path); err != nil {
		return 0, "", 0, err
	}
	line, err := rc.br.ReadString('\n')
	if err != nil {
		return 0, "", 0, fmt.Errorf("%s: status line: %w", path, err)
	}
	f := strings.Fields(line)
	if len(f) < 2 {
		return 0, "", 0, fmt.Errorf("%s: status line %q", path, line)
	}
	status, _ := strconv.Atoi(f[1])
	length := int64(-1)
	cacheStatus := ""
	for {
		h, err := rc.br.ReadString('\n')
		if err != nil {
			return 0, "", 0, fmt.Errorf("%s: header: %w", path, err)
		}
		h = strings.TrimSpace(h)
		if h == "" {
			break
		}
		name, value, _ := strings.Cut(h, ":")
		switch strings.ToLower(name) {
		case "content-length":
			length, _ = strconv.ParseInt(strings.TrimSpace(value), 10, 64)
		case "cache-status":
			cacheStatus = strings.TrimSpace(value)
		case "transfer-encoding":
			return 0, "", 0, fmt.Errorf("%s: Transfer-Encoding %q, this client reads Content-Length only", path, value)
		}
	}
	if length < 0 {
		return 0, "", 0, fmt.Errorf("%s: no Content-Length", path)
	}
	n, err := io.CopyN(io.Discard, rc.br, length)
	return status, cacheStatus, n, err
}

func (rc *rawClient) close() {
	if rc.c != nil {
		rc.c.Close()
	}
}
