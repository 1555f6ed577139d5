// Command proxyprof serves internal/proxy's Handler on a bare http.Server
// and writes a CPU profile, to tell the proxy's own cost from the server's.
//
//	proxyprof -addr 127.0.0.1:18100 -upstream http://127.0.0.1:18090 -cpuprofile cpu.out -for 10s
package main

import (
	"context"
	"flag"
	"log"
	"net/http"
	"os"
	"runtime/pprof"
	"time"

	"portico/internal/config"
	"portico/internal/proxy"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:18100", "listen address")
	upstream := flag.String("upstream", "http://127.0.0.1:18090", "upstream URL")
	prof := flag.String("cpuprofile", "", "write a CPU profile here")
	dur := flag.Duration("for", 0, "profile this long after start, then exit (0: serve forever)")
	flag.Parse()
	h, err := proxy.New(config.Proxy{Upstreams: []string{*upstream}}, proxy.Options{})
	if err != nil {
		log.Fatal(err)
	}
	defer h.Close(context.Background())
	srv := &http.Server{Addr: *addr, Handler: h, ReadHeaderTimeout: 10 * time.Second}
	if *prof != "" {
		f, err := os.Create(*prof)
		if err != nil {
			log.Fatal(err)
		}
		pprof.StartCPUProfile(f)
		defer pprof.StopCPUProfile()
	}
	if *dur > 0 {
		time.AfterFunc(*dur, func() { srv.Close() })
	}
	if err := srv.ListenAndServe(); err != http.ErrServerClosed {
		log.Fatal(err)
	}
}
