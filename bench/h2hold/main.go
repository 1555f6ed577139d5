// Command h2hold opens -n HTTP/2 connections over TLS (certificates are
// not checked: a benchmark's throwaway one), sends one GET of -path on
// each, reads the answer, and keeps them all open and idle until its
// standard input closes. It prints "ready" once they are. For
// bench/idle-rss.sh TLS=h2.
//
//	go run ./bench/h2hold -addr 127.0.0.1:8443 -n 2000
package main

import (
	"crypto/tls"
	"flag"
	"fmt"
	"io"
	"log"
	"net/http"
	"os"

	"golang.org/x/net/http2"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:8443", "server address")
	n := flag.Int("n", 2000, "connections")
	path := flag.String("path", "/1k.txt", "what each connection GETs")
	flag.Parse()
	tr := &http2.Transport{}
	conns := make([]*http2.ClientConn, 0, *n)
	ok := 0
	for i := 0; i < *n; i++ {
		tc, err := tls.Dial("tcp", *addr, &tls.Config{InsecureSkipVerify: true, NextProtos: []string{"h2"}, ServerName: "localhost"})
		if err != nil {
			log.Fatalf("connection %d: %v", i, err)
		}
		cc, err := tr.NewClientConn(tc)
		if err != nil {
			log.Fatalf("connection %d: %v", i, err)
		}
		req, _ := http.NewRequest("GET", "https://localhost"+*path, nil)
		resp, err := cc.RoundTrip(req)
		if err != nil {
			log.Fatalf("connection %d: %v", i, err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			ok++
		}
		conns = append(conns, cc)
	}
	fmt.Fprintf(os.Stderr, "%d of %d HTTP/2 connections answered, now idle\n", ok, *n)
	fmt.Println("ready")
	io.Copy(io.Discard, os.Stdin)
	for _, cc := range conns {
		cc.Close()
	}
}
