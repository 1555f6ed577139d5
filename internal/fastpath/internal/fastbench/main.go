// Command fastbench serves a 1 KiB body from memory, through the fast path
// or through plain net/http, for side-by-side load tests:
//
//	taskset -c 0 go run ./internal/fastpath/internal/fastbench -mode fast &
//	taskset -c 1 wrk -t1 -c50 -d10s http://127.0.0.1:8099/1k
package main

import (
	"flag"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"runtime/pprof"
	"strconv"
	"strings"
	"time"

	"portico/internal/fastpath"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:8099", "listen address")
	mode := flag.String("mode", "fast", "fast or nethttp")
	prof := flag.String("cpuprofile", "", "write a CPU profile until SIGINT")
	flag.Parse()
	body := []byte(strings.Repeat("x", 1024))
	ct := []string{"text/plain; charset=utf-8"}
	cl := []string{strconv.Itoa(len(body))}
	slow := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header()["Content-Type"] = ct
		w.Header()["Content-Length"] = cl
		w.Write(body)
	})
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatal(err)
	}
	if *mode == "fast" {
		ln = fastpath.Listen(ln, fastpath.HandlerFunc(func(req *fastpath.Request, w *fastpath.ResponseWriter) bool {
			if req.Path != "/1k" {
				return false
			}
			w.WriteHeader(200)
			w.AddHeader("Content-Type", ct[0])
			w.AddHeader("Content-Length", cl[0])
			w.Write(body)
			return true
		}), fastpath.Options{ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 120 * time.Second})
	}
	if *prof != "" {
		f, _ := os.Create(*prof)
		pprof.StartCPUProfile(f)
		go func() {
			c := make(chan os.Signal, 1)
			signal.Notify(c, os.Interrupt)
			<-c
			pprof.StopCPUProfile()
			os.Exit(0)
		}()
	}
	srv := &http.Server{Handler: slow, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 120 * time.Second}
	log.Fatal(srv.Serve(ln))
}
