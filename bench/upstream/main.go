// Command upstream is the tiny, fast HTTP server that bench/proxy-bench.sh
// puts behind each proxy: every request gets the same body from memory.
//
//	upstream -addr 127.0.0.1:18090 -size 1024
package main

import (
	"flag"
	"fmt"
	"log"
	"net/http"
	"os"
	"strconv"
	"time"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:18090", "listen address")
	size := flag.Int("size", 1024, "response body bytes")
	flag.Parse()
	body := make([]byte, *size)
	for i := range body {
		body[i] = 'a' + byte(i%26)
	}
	length := []string{strconv.Itoa(len(body))}
	ctype := []string{"text/plain; charset=utf-8"}
	srv := &http.Server{
		Addr: *addr,
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			h := w.Header()
			h["Content-Length"] = length
			h["Content-Type"] = ctype
			w.Write(body)
		}),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       120 * time.Second,
	}
	fmt.Fprintf(os.Stderr, "upstream: serving %d bytes on http://%s/\n", len(body), *addr)
	log.Fatal(srv.ListenAndServe())
}
