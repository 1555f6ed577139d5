package fastpath

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"runtime"
	"runtime/debug"
	"strings"
	"testing"
	"time"
)

func TestDbgTmp(t *testing.T) {
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	h := &memHandler{files: map[string][]byte{"/1k": []byte(strings.Repeat("x", 1024))}}
	fl := Listen(ln, h, Options{ReadHeaderTimeout: 10 * time.Second, IdleTimeout: time.Minute, ParkIdleAfter: 200 * time.Millisecond})
	defer fl.Close()
	dump := func(tag string) {
		debug.FreeOSMemory()
		debug.FreeOSMemory()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		rss, _ := os.ReadFile("/proc/self/status")
		var r string
		for _, l := range strings.Split(string(rss), "\n") {
			if strings.HasPrefix(l, "VmRSS") || strings.HasPrefix(l, "RssAnon") {
				r += l + " "
			}
		}
		t.Logf("%s: heapInuse %d stackInuse %d mspan %d mcache %d buckhash %d gcsys %d other %d sys %d released %d heapIdle %d objs %d | %s", tag, m.HeapInuse>>10, m.StackInuse>>10, m.MSpanInuse>>10, m.MCacheInuse>>10, m.BuckHashSys>>10, m.GCSys>>10, m.OtherSys>>10, m.Sys>>10, m.HeapReleased>>10, m.HeapIdle>>10, m.HeapObjects, r)
	}
	dump("before")
	script := fmt.Sprintf(`
import socket,time,sys
socks=[]
for i in range(2000):
    s=socket.create_connection(("127.0.0.1",%d)); s.sendall(b"GET /1k HTTP/1.1\r\nHost: x\r\n\r\n"); socks.append(s)
for s in socks:
    d=b""
    while len(d)<1100:
        d+=s.recv(65536)
print("ready",flush=True)
sys.stdin.read()
`, ln.Addr().(*net.TCPAddr).Port)
	cmd := exec.Command("python3", "-c", script)
	in, _ := cmd.StdinPipe()
	out, _ := cmd.StdoutPipe()
	cmd.Start()
	buf := make([]byte, 10)
	out.Read(buf)
	waitParked(t, fl, 2000)
	time.Sleep(100 * time.Millisecond)
	dump("parked")
	in.Close()
	cmd.Wait()
}
