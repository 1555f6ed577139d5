// Command idleprof measures, inside one portico server, what idle
// keep-alive connections cost: it starts the server with the config of
// bench/idle-rss.sh (a 1 KiB static file, idle_timeout 5m), starts itself
// again as a client in a child process that opens -n connections, sends
// one request on each and keeps them open, and prints the growth of the
// server's runtime.MemStats and anonymous RSS per connection. With -heap
// it writes a heap profile (run with GODEBUG=memprofilerate=1 for every
// allocation) of what the idle connections hold.
//
//	GOMAXPROCS=1 go run ./bench/idleprof -n 2000 [-heap idle.pprof]
//	go tool pprof -sample_index=inuse_space -top idle.pprof
package main

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/metrics"
	"runtime/pprof"
	"strconv"
	"strings"
	"time"

	"portico/internal/config"
	"portico/internal/server"
)

func main() {
	n := flag.Int("n", 2000, "idle connections")
	heapFile := flag.String("heap", "", "write a heap profile of the idle connections")
	settle := flag.Duration("settle", 15*time.Second, "wait after the connections are idle (a parked connection detaches after 10s)")
	verbose := flag.Bool("v", false, "print the growth of every runtime/metrics memory class")
	warm := flag.Int("warm", 0, "open and close this many connections first, as idle-rss.sh's WARM (a server that has served before)")
	gcFirst := flag.Bool("gc", true, "collect twice before the first figure, as portico run does once it listens (false: the first collections' metadata counts against the connections)")
	client := flag.String("client", "", "(internal) run as the client of this address")
	flag.Parse()
	if *client != "" {
		runClient(*client, *n)
		return
	}
	dir, err := os.MkdirTemp("", "idleprof")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	if err := os.WriteFile(filepath.Join(dir, "1k.txt"), []byte(strings.Repeat("x", 1024)), 0o644); err != nil {
		log.Fatal(err)
	}
	addr := freeAddr()
	cfgFile := filepath.Join(dir, "portico.toml")
	toml := fmt.Sprintf("[server]\naccess_log = \"off\"\nidle_timeout = \"5m\"\n[[site]]\nlisten = [%q]\n  [[site.route]]\n  path = \"/\"\n  static = { root = %q }\n", addr, dir)
	if err := os.WriteFile(cfgFile, []byte(toml), 0o644); err != nil {
		log.Fatal(err)
	}
	cfg, err := config.Load(cfgFile)
	if err != nil {
		log.Fatal(err)
	}
	s := server.New(server.Options{Stdout: io.Discard, Stderr: os.Stderr})
	if err := s.Start(cfg); err != nil {
		log.Fatal(err)
	}
	time.Sleep(time.Second)
	if *warm > 0 {
		stop, _ := startClient(addr, *warm)
		stop()
		time.Sleep(*settle)
	}
	if *gcFirst {
		runtime.GC()
		runtime.GC()
	}
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	anon0 := rssAnonKiB()
	m0 := memClasses()

	peak := make(chan int)
	sampling := make(chan struct{})
	go func() { // the most goroutines at once while the connections open
		most := 0
		for {
			most = max(most, runtime.NumGoroutine())
			select {
			case <-sampling:
				peak <- most
				return
			case <-time.After(time.Millisecond):
			}
		}
	}()
	stop, err := startClient(addr, *n)
	if err != nil {
		log.Fatal(err)
	}
	defer stop()
	close(sampling)
	peakGoroutines := <-peak
	time.Sleep(*settle)
	runtime.ReadMemStats(&after)
	anon1 := rssAnonKiB()
	per := func(a, b uint64) float64 { return float64(int64(b)-int64(a)) / float64(*n) }
	fmt.Printf("per connection: RssAnon %.0f B  HeapInuse %.0f  HeapAlloc %.0f  StackInuse %.0f  GCSys %.0f  OtherSys %.0f  MSpanInuse %.0f  HeapReleased %.0f  NumGoroutine %d (peak %d) NumGC %d->%d\n",
		float64(anon1-anon0)*1024/float64(*n), per(before.HeapInuse, after.HeapInuse), per(before.HeapAlloc, after.HeapAlloc),
		per(before.StackInuse, after.StackInuse), per(before.GCSys, after.GCSys), per(before.OtherSys, after.OtherSys),
		per(before.MSpanInuse, after.MSpanInuse), per(before.HeapReleased, after.HeapReleased), runtime.NumGoroutine(), peakGoroutines, before.NumGC, after.NumGC)
	if *verbose {
		for name, v := range memClasses() {
			if d := int64(v) - int64(m0[name]); d != 0 {
				fmt.Printf("  %-50s %+8.0f B per connection\n", name, float64(d)/float64(*n))
			}
		}
	}
	if *heapFile != "" {
		runtime.GC()
		f, err := os.Create(*heapFile)
		if err != nil {
			log.Fatal(err)
		}
		if err := pprof.WriteHeapProfile(f); err != nil {
			log.Fatal(err)
		}
		f.Close()
	}
}

// startClient starts this program again as a client that opens n
// connections to addr, and returns once all are answered; stop closes
// them.
func startClient(addr string, n int) (stop func(), err error) {
	cmd := exec.Command(os.Args[0], "-client", addr, "-n", strconv.Itoa(n))
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	stop = func() {
		stdin.Close()
		cmd.Wait()
	}
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "ready") {
		stop()
		return nil, fmt.Errorf("client: %q %v", line, err)
	}
	return stop, nil
}

// runClient opens n connections to addr, one request each, prints
// "ready" once all are answered, and holds them until stdin closes.
func runClient(addr string, n int) {
	conns := make([]net.Conn, 0, n)
	req := []byte("GET /1k.txt HTTP/1.1\r\nHost: x\r\n\r\n")
	for i := 0; i < n; i++ {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			log.Fatal(err)
		}
		if _, err := c.Write(req); err != nil {
			log.Fatal(err)
		}
		conns = append(conns, c)
	}
	buf := make([]byte, 4096)
	for _, c := range conns {
		got := 0
		for got < 1024+100 {
			k, err := c.Read(buf)
			got += k
			if err != nil {
				log.Fatal(err)
			}
			if strings.Contains(string(buf[:k]), "\r\n\r\n") && got >= 1024 {
				break
			}
		}
	}
	fmt.Println("ready")
	io.Copy(io.Discard, os.Stdin)
}

func freeAddr() string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// memClasses returns runtime/metrics' memory classes.
func memClasses() map[string]uint64 {
	var samples []metrics.Sample
	for _, d := range metrics.All() {
		if strings.HasPrefix(d.Name, "/memory/classes/") && d.Kind == metrics.KindUint64 {
			samples = append(samples, metrics.Sample{Name: d.Name})
		}
	}
	metrics.Read(samples)
	m := map[string]uint64{}
	for _, s := range samples {
		m[s.Name] = s.Value.Uint64()
	}
	return m
}

// rssAnonKiB returns this process's anonymous RSS.
func rssAnonKiB() uint64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == "RssAnon:" {
			v, _ := strconv.ParseUint(f[1], 10, 64)
			return v
		}
	}
	return 0
}
