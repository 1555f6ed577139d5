// Command h2prof runs portico's server on a config file (or, with -bare,
// a plain net/http file server on the same TLS certificate) and writes a
// CPU profile: portico's HTTP/2 engine (internal/h2) against Go's own
// HTTP/2 server (net/http's, with -bare), on the same file.
//
//	h2prof -c portico.toml -cpuprofile cpu.out -for 15s
//	h2prof -bare -addr 127.0.0.1:18445 -cert cert.pem -key key.pem -root www -cpuprofile bare.out -for 15s
package main

import (
	"context"
	"flag"
	"log"
	"net/http"
	"os"
	"os/signal"
	"runtime/pprof"
	"syscall"
	"time"

	"portico/internal/config"
	"portico/internal/server"
)

func main() {
	cfgFile := flag.String("c", "portico.toml", "portico config file")
	bare := flag.Bool("bare", false, "serve -root with http.FileServer instead of portico")
	addr := flag.String("addr", "127.0.0.1:18445", "listen address (-bare)")
	cert := flag.String("cert", "cert.pem", "certificate (-bare)")
	key := flag.String("key", "key.pem", "key (-bare)")
	root := flag.String("root", "www", "folder to serve (-bare)")
	prof := flag.String("cpuprofile", "", "write a CPU profile here")
	dur := flag.Duration("for", time.Minute, "serve this long (or until SIGINT or SIGTERM), then exit")
	flag.Parse()
	if *prof != "" {
		f, err := os.Create(*prof)
		if err != nil {
			log.Fatal(err)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			log.Fatal(err)
		}
		defer pprof.StopCPUProfile()
	}
	if *bare {
		srv := &http.Server{Addr: *addr, Handler: http.FileServer(http.Dir(*root))}
		go func() { waitEnd(*dur); srv.Close() }()
		if err := srv.ListenAndServeTLS(*cert, *key); err != http.ErrServerClosed {
			log.Fatal(err)
		}
		return
	}
	cfg, err := config.Load(*cfgFile)
	if err != nil {
		log.Fatal(err)
	}
	srv := server.New(server.Options{})
	if err := srv.Start(cfg); err != nil {
		log.Fatal(err)
	}
	waitEnd(*dur)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	srv.Shutdown(ctx)
}

// waitEnd returns after d or at SIGINT or SIGTERM, whichever comes first.
func waitEnd(d time.Duration) {
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	select {
	case <-sig:
	case <-time.After(d):
	}
}
