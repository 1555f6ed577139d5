package fastcgi

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
)

// fakeServer is a FastCGI responder written for the tests, independent of
// the handler's encoder: it decodes records by hand from the bytes.
type fakeServer struct {
	t    testing.TB
	ln   net.Listener
	addr string // "unix:/path"
	// serve answers one request; it writes records with the helpers of
	// fakeReq. It may return errCloseConn to close the connection.
	serve func(req *fakeReq) error

	conns   atomic.Int64 // connections accepted
	active  atomic.Int64 // connections open now
	maxOpen atomic.Int64 // most connections open at once
	wg      sync.WaitGroup
}

var errCloseConn = errors.New("close the connection")

// fakeReq is one request as the fake server received it.
type fakeReq struct {
	params   map[string]string
	stdin    []byte
	keepConn bool
	conn     net.Conn
	id       uint16
}

func newFakeServer(t testing.TB, serve func(*fakeReq) error) *fakeServer {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "fcgi.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	s := &fakeServer{t: t, ln: ln, addr: "unix:" + sock, serve: serve}
	s.wg.Add(1)
	go s.accept()
	t.Cleanup(func() {
		ln.Close()
		s.wg.Wait()
	})
	return s
}

func (s *fakeServer) accept() {
	defer s.wg.Done()
	var conns []net.Conn
	var mu sync.Mutex
	defer func() {
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
	}()
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return
		}
		mu.Lock()
		conns = append(conns, c)
		mu.Unlock()
		s.conns.Add(1)
		n := s.active.Add(1)
		for {
			m := s.maxOpen.Load()
			if n <= m || s.maxOpen.CompareAndSwap(m, n) {
				break
			}
		}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			defer s.active.Add(-1)
			defer c.Close()
			br := bufio.NewReader(c)
			for {
				req, err := readFakeRequest(br)
				if err != nil {
					return
				}
				req.conn = c
				if err := s.serve(req); err != nil || !req.keepConn {
					return
				}
			}
		}()
	}
}

// readFakeRequest reads BEGIN_REQUEST, PARAMS and STDIN records.
func readFakeRequest(br *bufio.Reader) (*fakeReq, error) {
	req := &fakeReq{params: map[string]string{}}
	var params []byte
	paramsDone, stdinDone, begun := false, false, false
	for !paramsDone || !stdinDone {
		var h [8]byte
		if _, err := io.ReadFull(br, h[:]); err != nil {
			return nil, err
		}
		if h[0] != 1 {
			return nil, fmt.Errorf("version %d", h[0])
		}
		typ, id := h[1], binary.BigEndian.Uint16(h[2:])
		content := make([]byte, int(binary.BigEndian.Uint16(h[4:]))+int(h[6]))
		if _, err := io.ReadFull(br, content); err != nil {
			return nil, err
		}
		content = content[:binary.BigEndian.Uint16(h[4:])]
		switch typ {
		case 1:
			if begun || len(content) != 8 || binary.BigEndian.Uint16(content) != 1 {
				return nil, errors.New("bad begin request")
			}
			begun, req.id, req.keepConn = true, id, content[2]&1 != 0
		case 4:
			if len(content) == 0 {
				paramsDone = true
			}
			params = append(params, content...)
		case 5:
			if !paramsDone {
				return nil, errors.New("stdin before the end of params")
			}
			if len(content) == 0 {
				stdinDone = true
			}
			req.stdin = append(req.stdin, content...)
		default:
			return nil, fmt.Errorf("unexpected record type %d", typ)
		}
		if !begun {
			return nil, errors.New("no begin request")
		}
	}
	var err error
	req.params, err = decodeParams(params)
	return req, err
}

// decodeParams decodes FastCGI name-value pairs.
func decodeParams(b []byte) (map[string]string, error) {
	m := map[string]string{}
	readLen := func() (int, error) {
		if len(b) == 0 {
			return 0, errors.New("short params")
		}
		if b[0] < 128 {
			n := int(b[0])
			b = b[1:]
			return n, nil
		}
		if len(b) < 4 {
			return 0, errors.New("short params length")
		}
		n := int(binary.BigEndian.Uint32(b) &^ (1 << 31))
		b = b[4:]
		return n, nil
	}
	for len(b) > 0 {
		nl, err := readLen()
		if err != nil {
			return nil, err
		}
		vl, err := readLen()
		if err != nil {
			return nil, err
		}
		if nl+vl > len(b) {
			return nil, errors.New("params overrun")
		}
		m[string(b[:nl])] = string(b[nl : nl+vl])
		b = b[nl+vl:]
	}
	return m, nil
}

// record writes one record of the request's id, padded to 8 bytes as
// php-fpm pads them.
func (req *fakeReq) record(typ uint8, content []byte) error {
	_, err := req.conn.Write(req.appendRecord(nil, typ, content))
	return err
}

func (req *fakeReq) appendRecord(b []byte, typ uint8, content []byte) []byte {
	var h [8]byte
	pad := -len(content) & 7
	h[0], h[1] = 1, typ
	binary.BigEndian.PutUint16(h[2:], req.id)
	binary.BigEndian.PutUint16(h[4:], uint16(len(content)))
	h[6] = byte(pad)
	return append(append(append(b, h[:]...), content...), make([]byte, pad)...)
}

func (req *fakeReq) stdout(s string) error { return req.record(6, []byte(s)) }
func (req *fakeReq) stderr(s string) error { return req.record(7, []byte(s)) }

// end ends stdout and the request.
func (req *fakeReq) end() error {
	if err := req.record(6, nil); err != nil {
		return err
	}
	return req.record(3, []byte{0, 0, 0, 0, 0, 0, 0, 0})
}

// respond writes a whole response in one write, as php-fpm sends a short
// script's output: header block and body in records of at most 65535
// bytes, the end of stdout, the end of the request.
func (req *fakeReq) respond(s string) error {
	var b []byte
	for len(s) > 0 {
		n := min(len(s), 65535)
		b = req.appendRecord(b, 6, []byte(s[:n]))
		s = s[n:]
	}
	b = req.appendRecord(b, 6, nil)
	b = req.appendRecord(b, 3, []byte{0, 0, 0, 0, 0, 0, 0, 0})
	_, err := req.conn.Write(b)
	return err
}
