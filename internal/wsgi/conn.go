package wsgi

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// The worker protocol (adapter.py's opening comment has the whole of it):
// one unix connection per worker process, kept open across requests, that
// carries frames both ways: a kind byte, a 4-byte big-endian payload
// length, the payload. Request frames carry an id the adapter echoes in
// each response's H, E, Z and S frames; any frame that is not what the
// exchange expects makes portico drop the connection, so bytes a worker
// left behind can never be taken as the answer to a later request.
const (
	frameRequest  = 'Q'
	framePing     = 'P'
	frameHead     = 'H'
	frameAppError = 'E'
	frameData     = 'D'
	frameEnd      = 'Z'
	frameSettled  = 'S'

	endCut     = 1 // Z flag: the body is cut short
	endSettled = 2 // Z flag: no S frame follows

	frameHeaderLen = 5
	maxHeadFrame   = 1<<20 + 8 // response headers, as http.Transport's default limit
	maxDataFrame   = 1 << 30
)

// Errors of an exchange with a worker.
var (
	// errFraming: the worker's stream is not what the protocol allows
	// here (stray bytes, a wrong id); the connection is dropped.
	errFraming = errors.New("wsgi worker stream out of step")
	// errAppCut: the adapter says the body is cut short (the app raised
	// after its headers, or sent less than its Content-Length).
	errAppCut = errors.New("response cut short by the app")
)

// notSentError marks a request that never fully reached the worker (the
// connection could not be made, or the request frame could not be
// written): the app never saw it, so it may go to another worker.
type notSentError struct{ err error }

func (e *notSentError) Error() string { return "send to worker: " + e.err.Error() }
func (e *notSentError) Unwrap() error { return e.err }

// workerConn is portico's connection to one worker process. Whoever holds
// the proc (a request, the pinger, the warm-up) uses it alone; close may
// come from any goroutine (the watchdog, the process's exit).
type workerConn struct {
	c    net.Conn
	br   *bufio.Reader
	wbuf []byte
}

// connection returns pr's open connection, dialing one if it has none
// (then fresh is true).
func (pr *proc) connection() (wc *workerConn, fresh bool, err error) {
	pr.connMu.Lock()
	wc = pr.conn
	pr.connMu.Unlock()
	if wc != nil {
		return wc, false, nil
	}
	c, err := net.DialTimeout("unix", pr.sock, 5*time.Second)
	if err != nil {
		return nil, true, &notSentError{fmt.Errorf("connect: %w", err)}
	}
	wc = &workerConn{c: c, br: bufio.NewReaderSize(c, 32<<10)}
	pr.connMu.Lock()
	defer pr.connMu.Unlock()
	if !pr.alive() {
		c.Close()
		return nil, true, &notSentError{errors.New("worker exited")}
	}
	pr.conn = wc
	return wc, true, nil
}

// dropConn closes wc and forgets it, so the next request dials afresh.
func (pr *proc) dropConn(wc *workerConn) {
	pr.connMu.Lock()
	if pr.conn == wc {
		pr.conn = nil
	}
	pr.connMu.Unlock()
	wc.c.Close()
}

// closeConn closes the current connection (a frozen or exited worker):
// whoever is reading from it gets an error at once.
func (pr *proc) closeConn() {
	pr.connMu.Lock()
	wc := pr.conn
	pr.conn = nil
	pr.connMu.Unlock()
	if wc != nil {
		wc.c.Close()
	}
}

// nextID numbers pr's next exchange; owned by whoever holds pr.
func (pr *proc) nextID() uint64 {
	pr.lastID++
	return pr.lastID
}

// exchange is one request on a worker connection, and its response as the
// frames arrive.
type exchange struct {
	pr *proc
	wc *workerConn
	id uint64

	writer chan error // the body writer's result; nil when sent inline

	status   int
	header   http.Header
	appError bool  // E: the app failed before its response
	length   int64 // Content-Length the app gave, or -1

	left    int  // bytes left in the current D frame
	ended   bool // Z read
	settled bool // nothing more for this request (Z flag or S read)
	cut     bool
	err     error // sticky error of the body reader

	closeMu  sync.Mutex
	released bool // pr went back to the pool: Close must not touch its connection
}

// inlineBody is the largest body sent in the same write as the request
// frame; a larger one is written by its own goroutine while the response
// is read (the worker may answer before it reads the body).
const inlineBody = 16 << 10

// send writes the request frame (and the body) and reads the response
// head. A *notSentError means the app cannot have seen the request.
func (p *Pool) send(pr *proc, r *http.Request, body *reqBody) (*exchange, error) {
	inline := body.size <= inlineBody && body.file == nil
	var ex *exchange
	var wc *workerConn
	for {
		var fresh bool
		var err error
		wc, fresh, err = pr.connection()
		if err != nil {
			return nil, err
		}
		ex = &exchange{pr: pr, wc: wc, id: pr.nextID(), length: -1}
		wc.wbuf = p.appendRequest(wc.wbuf[:0], r, ex.id, body.size)
		frameLen := len(wc.wbuf)
		if inline {
			wc.wbuf = append(wc.wbuf, body.mem...)
		}
		n, err := wc.c.Write(wc.wbuf)
		if err == nil {
			break
		}
		pr.dropConn(wc)
		switch {
		case n >= frameLen:
			return nil, fmt.Errorf("send request body: %w", err)
		case !fresh:
			// The worker closed a connection kept from an earlier
			// request; the request frame did not get through, so a new
			// connection may carry it.
			continue
		}
		return nil, &notSentError{err}
	}
	if len(wc.wbuf) > 64<<10 {
		wc.wbuf = nil // do not keep a huge buffer per worker
	}
	if !inline {
		ex.writer = make(chan error, 1)
		go func() {
			_, err := io.Copy(wc.c, body.reader())
			ex.writer <- err
		}()
	}
	if err := ex.readHead(); err != nil {
		ex.abandon()
		return nil, err
	}
	return ex, nil
}

// ping sends a ping frame and waits for its answer, within d.
func (pr *proc) ping(d time.Duration) error {
	wc, _, err := pr.connection()
	if err != nil {
		return err
	}
	id := pr.nextID()
	var b [frameHeaderLen + 8]byte
	b[0] = framePing
	binary.BigEndian.PutUint32(b[1:], 8)
	binary.BigEndian.PutUint64(b[5:], id)
	_ = wc.c.SetDeadline(time.Now().Add(d))
	if _, err := wc.c.Write(b[:]); err != nil {
		pr.dropConn(wc)
		return err
	}
	ex := &exchange{pr: pr, wc: wc, id: id, ended: true}
	if err := ex.settle(); err != nil {
		return err // settle has dropped the connection
	}
	_ = wc.c.SetDeadline(time.Time{})
	return nil
}

// readFrame reads one frame header: the kind and the payload length.
func (ex *exchange) readFrame() (byte, int, error) {
	var h [frameHeaderLen]byte
	if _, err := io.ReadFull(ex.wc.br, h[:]); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return 0, 0, err
	}
	return h[0], int(binary.BigEndian.Uint32(h[1:])), nil
}

// readID reads the 8-byte id at the start of a payload and checks it.
func (ex *exchange) readID() error {
	var b [8]byte
	if _, err := io.ReadFull(ex.wc.br, b[:]); err != nil {
		return err
	}
	if got := binary.BigEndian.Uint64(b[:]); got != ex.id {
		return fmt.Errorf("%w: answer for request %d, want %d", errFraming, got, ex.id)
	}
	return nil
}

func (ex *exchange) readHead() error {
	kind, n, err := ex.readFrame()
	if err != nil {
		return err
	}
	switch {
	case kind == frameAppError && n == 8:
		ex.appError = true
		return ex.readID()
	case kind != frameHead || n < 8+3 || n > maxHeadFrame:
		return fmt.Errorf("%w: frame %q of %d bytes where a response head belongs", errFraming, kind, n)
	}
	if err := ex.readID(); err != nil {
		return err
	}
	text := make([]byte, n-8)
	if _, err := io.ReadFull(ex.wc.br, text); err != nil {
		return err
	}
	return ex.parseHead(string(text))
}

// parseHead reads "STATUS\r\nName: value\r\n..." as the adapter writes it.
func (ex *exchange) parseHead(text string) error {
	status, rest, _ := strings.Cut(text, "\r\n")
	code, err := strconv.Atoi(status[:min(3, len(status))])
	if err != nil || code < 100 || code > 999 || len(status) > 3 && status[3] != ' ' {
		return fmt.Errorf("%w: status %q", errFraming, status)
	}
	ex.status = code
	ex.header = make(http.Header, strings.Count(rest, "\r\n")+1)
	for rest != "" {
		var line string
		line, rest, _ = strings.Cut(rest, "\r\n")
		name, value, ok := strings.Cut(line, ":")
		if !ok || name == "" {
			return fmt.Errorf("%w: header line %q", errFraming, line)
		}
		key := http.CanonicalHeaderKey(name)
		ex.header[key] = append(ex.header[key], strings.Trim(value, " \t"))
	}
	if cl := ex.header["Content-Length"]; len(cl) == 1 {
		if v, err := strconv.ParseInt(cl[0], 10, 64); err == nil && v >= 0 {
			ex.length = v
		}
	}
	return nil
}

// Read reads the response body: the payloads of D frames up to Z. It
// returns io.EOF at Z, errAppCut when Z says the body is cut short.
func (ex *exchange) Read(b []byte) (int, error) {
	if ex.err != nil {
		return 0, ex.err
	}
	for ex.left == 0 {
		kind, n, err := ex.readFrame()
		if err != nil {
			return 0, ex.fail(err)
		}
		switch {
		case kind == frameData && n > 0 && n <= maxDataFrame:
			ex.left = n
		case kind == frameEnd && n == 9:
			if err := ex.readID(); err != nil {
				return 0, ex.fail(err)
			}
			flags, err := ex.wc.br.ReadByte()
			if err != nil {
				return 0, ex.fail(err)
			}
			ex.ended = true
			ex.settled = flags&endSettled != 0
			ex.cut = flags&endCut != 0
			ex.err = io.EOF
			if ex.cut {
				ex.err = errAppCut
			}
			return 0, ex.err
		default:
			return 0, ex.fail(fmt.Errorf("%w: frame %q of %d bytes in a response body", errFraming, kind, n))
		}
	}
	n, err := ex.wc.br.Read(b[:min(len(b), ex.left)])
	ex.left -= n
	if err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return n, ex.fail(err)
	}
	return n, nil
}

// fail makes err sticky and drops the connection: the stream cannot be
// trusted after a broken exchange.
func (ex *exchange) fail(err error) error {
	ex.err = err
	ex.pr.dropConn(ex.wc)
	return err
}

// Close ends a response that will not be read to the end (the client
// left): dropping the connection makes the adapter's next write fail,
// which ends the app's iterable (its close() is called). It may run
// while another goroutine reads; once the worker is released it does
// nothing (the connection may serve another request by then).
func (ex *exchange) Close() error {
	ex.closeMu.Lock()
	defer ex.closeMu.Unlock()
	if !ex.released {
		ex.pr.dropConn(ex.wc)
	}
	return nil
}

// release marks the exchange over, before pr goes back to the pool.
func (ex *exchange) release() {
	ex.closeMu.Lock()
	ex.released = true
	ex.closeMu.Unlock()
}

// abandon drops the connection of an exchange that failed before its body.
func (ex *exchange) abandon() {
	ex.err = errors.New("exchange abandoned")
	ex.pr.dropConn(ex.wc)
	ex.waitWriter()
}

// settle waits until the worker has finished the request: the S frame
// when Z did not say it was settled, and the body writer. It returns
// nil when the connection may carry the next request; otherwise the
// connection has been dropped (the worker itself may be fine).
func (ex *exchange) settle() error {
	if !ex.ended {
		return ex.fail(errors.New("response not read to its end"))
	}
	if !ex.settled {
		kind, n, err := ex.readFrame()
		if err == nil && (kind != frameSettled || n != 8) {
			err = fmt.Errorf("%w: frame %q of %d bytes where the end of a request belongs", errFraming, kind, n)
		}
		if err == nil {
			err = ex.readID()
		}
		if err != nil {
			ex.fail(err)
			ex.waitWriter()
			return err
		}
		ex.settled = true
	}
	if err := ex.waitWriter(); err != nil {
		ex.fail(err)
		return err
	}
	return nil
}

// waitWriter waits for the body writer goroutine (bounded: its
// connection is closed, or the worker is killed by the watchdog).
func (ex *exchange) waitWriter() error {
	if ex.writer == nil {
		return nil
	}
	err := <-ex.writer
	ex.writer = nil
	if err != nil {
		return fmt.Errorf("send request body: %w", err)
	}
	return nil
}
