// Command fastbench serves a 1 KiB body from memory, through the fast path
// or through plain net/http, for side-by-side load tests:
//
//	taskset -c 0 go run ./bench/fastbench -mode fast &
//	taskset -c 1 wrk -t1 -c50 -d10s http://127.0.0.1:8099/1k
package main

import (
	"context"
	"flag"
	"log"
	"net"
	"net/http"
	"os"
	"runtime/pprof"
	"strconv"
	"strings"
	"time"

	"portico/internal/config"
	"portico/internal/fastpath"
	"portico/internal/server"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:8099", "listen address")
	mode := flag.String("mode", "fast", "fast, nethttp, or portico (with -config)")
	noKeepAlive := flag.Bool("nokeepalive", false, "no TCP keep-alive probes on accepted connections")
	cfgFile := flag.String("config", "", "portico config file, for -mode portico")
	prof := flag.String("cpuprofile", "", "write a CPU profile, then exit after -for")
	dur := flag.Duration("for", 10*time.Second, "how long to profile")
	flag.Parse()
	body := []byte(strings.Repeat("x", 1024))
	ct := []string{"text/plain; charset=utf-8"}
	cl := []string{strconv.Itoa(len(body))}
	slow := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header()["Content-Type"] = ct
		w.Header()["Content-Length"] = cl
		w.Write(body)
	})
	if *mode == "portico" {
		cfg, err := config.Load(*cfgFile)
		if err != nil {
			log.Fatal(err)
		}
		s := server.New(server.Options{Stdout: os.Stdout, Stderr: os.Stderr, Metrics: server.NewMetrics()})
		if err := s.Start(cfg); err != nil {
			log.Fatal(err)
		}
		profile(*prof, *dur)
		select {}
	}
	lc := net.ListenConfig{}
	if *noKeepAlive {
		lc.KeepAlive = -1 // no SO_KEEPALIVE + 3 setsockopt per accepted connection
	}
	ln, err := lc.Listen(context.Background(), "tcp", *addr)
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
	profile(*prof, *dur)
	srv := &http.Server{Handler: slow, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 120 * time.Second}
	log.Fatal(srv.Serve(ln))
}

// profile writes a CPU profile to file for d, then exits.
func profile(file string, d time.Duration) {
	if file == "" {
		return
	}
	f, err := os.Create(file)
	if err != nil {
		log.Fatal(err)
	}
	pprof.StartCPUProfile(f)
	go func() {
		time.Sleep(d)
		pprof.StopCPUProfile()
		f.Close()
		os.Exit(0)
	}()
}
