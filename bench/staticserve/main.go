// Command staticserve serves a folder with the static handler alone on
// plain net/http, without portico's server stack. It separates the cost of
// the handler from that of the layers around it when profiling:
//
//	go build -o /tmp/staticserve ./bench/staticserve
//	taskset -c 0 /tmp/staticserve -addr 127.0.0.1:8090 -root DIR -cpuprofile /tmp/cpu.out
//	taskset -c 1 wrk -t1 -c50 -d10s http://127.0.0.1:8090/1k.txt
//	kill -INT <pid>; go tool pprof -top /tmp/staticserve /tmp/cpu.out
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/pprof"

	"portico/internal/config"
	"portico/internal/static"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:8090", "listen address")
	root := flag.String("root", ".", "folder to serve")
	cpuprofile := flag.String("cpuprofile", "", "write a CPU profile here until interrupted")
	flag.Parse()
	abs, err := filepath.Abs(*root)
	if err != nil {
		log.Fatal(err)
	}
	cfg := config.Static{Root: abs}
	cfg.SetDefaults()
	h, err := static.New(cfg, static.Options{})
	if err != nil {
		log.Fatal(err)
	}
	defer h.Close(context.Background())
	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		if err != nil {
			log.Fatal(err)
		}
		pprof.StartCPUProfile(f)
		defer pprof.StopCPUProfile()
	}
	srv := &http.Server{Addr: *addr, Handler: h}
	go func() {
		if err := srv.ListenAndServe(); err != http.ErrServerClosed {
			log.Fatal(err)
		}
	}()
	fmt.Fprintf(os.Stderr, "staticserve: serving %s on http://%s/\n", abs, *addr)
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt)
	<-sig
	srv.Close()
}
