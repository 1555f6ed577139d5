// Command cacheupstream is the tiny upstream of bench/cache-bench.sh: every
// request gets the same cacheable body ("Cache-Control: public,
// max-age=3600") from memory, and the number of requests it served is
// printed on exit, so the script can check the caches really answered.
//
//	cacheupstream -addr 127.0.0.1:18091 -size 1024
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"sync/atomic"
	"syscall"
	"time"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:18091", "listen address")
	size := flag.Int("size", 1024, "response body bytes")
	flag.Parse()
	body := make([]byte, *size)
	for i := range body {
		body[i] = 'a' + byte(i%26)
	}
	length := []string{strconv.Itoa(len(body))}
	ctype := []string{"text/plain; charset=utf-8"}
	cc := []string{"public, max-age=3600"}
	etag := []string{`"bench-1"`}
	var served atomic.Int64
	srv := &http.Server{
		Addr:              *addr,
		ReadHeaderTimeout: 10 * time.Second,
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			served.Add(1)
			h := w.Header()
			h["Content-Length"] = length
			h["Content-Type"] = ctype
			h["Cache-Control"] = cc
			h["Etag"] = etag
			w.Write(body)
		}),
	}
	go func() {
		sig := make(chan os.Signal, 1)
		signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
		<-sig
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
	}()
	if err := srv.ListenAndServe(); err != nil && err != http.ErrServerClosed {
		log.Fatal(err)
	}
	fmt.Fprintf(os.Stderr, "cacheupstream: served %d requests\n", served.Load())
}
