package proxy

// Response relay on the fast path: the response head (with 1xx interim
// answers), the header lines the client gets, and the body copies for
// known-length and until-EOF bodies (chunked ones: fastchunked.go).

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"portico/internal/fastpath"
)

// maxInterim bounds the 1xx responses before the final one (as Go's
// transport).
const maxInterim = 5

// readHead reads the final response head. 1xx interim responses other
// than 101 go to the client at once, as ReverseProxy's Got1xxResponse
// does: the site's headers and the interim fields (all of them but
// Content-Length and Transfer-Encoding, as net/http writes 1xx).
func (c *upConn) readHead(w *fastpath.ResponseWriter, scratch *[]byte, deadline time.Time, poll time.Duration) error {
	interim := 0
	for {
		if c.w > c.r {
			n, err := parseResponseHead(c.buf[c.r:c.w], &c.head)
			if err != nil {
				return err
			}
			if n > 0 {
				if s := c.head.status; s >= 100 && s < 200 && s != 101 {
					if interim++; interim > maxInterim {
						return errors.New("too many 1xx responses from upstream")
					}
					base := c.buf[c.r : c.r+n]
					o := headerOut{b: (*scratch)[:0], defs: w.DefaultHeaders()}
					for _, f := range c.head.fields {
						name := base[f.ns:f.ne]
						if foldEq(name, "content-length") || foldEq(name, "transfer-encoding") {
							continue
						}
						o.add(name, base[f.vs:f.ve])
					}
					o.rest()
					*scratch = o.b
					_ = w.WriteInterim(s, o.b) // a failed write shows later
					c.r += n
					continue
				}
				return nil
			}
		}
		if _, err := c.fill(); err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				if now := time.Now(); now.Before(deadline) {
					if w.ClientGone() {
						return errClientGone
					}
					d := now.Add(poll)
					if d.After(deadline) {
						d = deadline
					}
					_ = c.nc.SetReadDeadline(d)
					c.deadline = time.Time{}
					continue
				}
			}
			if err == io.EOF && c.w > 0 {
				return io.ErrUnexpectedEOF
			}
			return err
		}
	}
}

// clientPoll is how often a wait for an upstream's response head looks
// whether the client is still there.
const clientPoll = time.Second

// Body framings.
const (
	bodyNone = iota
	bodyLength
	bodyChunked
	bodyEOF
)

// fastDrain discards the body of a response that is retried elsewhere,
// as drainClose: up to 64 KiB is read so the connection can be reused.
func (h *Handler) fastDrain(c *upConn, u *upstream, isHEAD bool) {
	hd := &c.head
	c.r += hd.n
	noBody := isHEAD || hd.status == 204 || hd.status == 304
	if !hd.close && !hd.chunked && (noBody || hd.clen >= 0 && hd.clen <= 64<<10) {
		remaining := int64(0)
		if !noBody {
			remaining = hd.clen
		}
		for remaining > 0 {
			if c.r == c.w {
				if err := c.fillBody(); err != nil {
					c.nc.Close()
					return
				}
			}
			k := min(int64(c.w-c.r), remaining)
			c.r += int(k)
			remaining -= k
		}
		if c.r == c.w {
			h.fast.pools[u.idx].put(c, time.Now())
			return
		}
	}
	c.nc.Close()
}

// responseSkip reports whether a response field is not copied as it is:
// hop-by-hop ones (forward.go's hopByHop, as modifyResponse applies it on
// the net/http path), and Via, Date and Content-Length, which fastRelay
// writes itself.
func responseSkip(name []byte) bool {
	switch len(name) {
	case 3:
		return foldEq(name, "via")
	case 4:
		return foldEq(name, "date")
	case 14:
		return foldEq(name, "content-length")
	}
	return hopByHop(name)
}

// headerOut renders response header lines, putting a site default header
// (SetDefaultHeaders) before the upstream's field of the same name, as
// the net/http path does (the site's value is set first, ReverseProxy
// adds the upstream's).
type headerOut struct {
	b    []byte
	defs [][2]string
	used uint64
}

func (o *headerOut) add(name, val []byte) {
	for i, kv := range o.defs {
		if o.used&(1<<uint(i)) == 0 && fastpath.EqualFold(name, kv[0]) {
			o.used |= 1 << uint(i)
			o.b = append(o.b, kv[0]...)
			o.b = append(o.b, ": "...)
			o.b = append(o.b, kv[1]...)
			o.b = append(o.b, "\r\n"...)
		}
	}
	o.b = appendCanonical(o.b, name)
	o.b = append(o.b, ": "...)
	o.b = append(o.b, val...)
	o.b = append(o.b, "\r\n"...)
}

// rest adds the default headers no field has brought in yet.
func (o *headerOut) rest() {
	for i, kv := range o.defs {
		if o.used&(1<<uint(i)) == 0 {
			o.used |= 1 << uint(i)
			o.b = append(o.b, kv[0]...)
			o.b = append(o.b, ": "...)
			o.b = append(o.b, kv[1]...)
			o.b = append(o.b, "\r\n"...)
		}
	}
}

// fastRelay answers the client with the upstream's response, as
// ReverseProxy and net/http's server would.
func (h *Handler) fastRelay(st *fastState, req *fastpath.Request, w *fastpath.ResponseWriter, c *upConn, u *upstream, isHEAD bool) {
	hd := &c.head
	status := hd.status
	if status == 101 {
		// Switching protocols that were not asked for: ReverseProxy's
		// upgrade handling fails the same way.
		c.nc.Close()
		h.fastError(st, req, w, fmt.Errorf("backend tried to switch protocol %q when %q was requested", "", ""))
		return
	}
	base := c.buf[c.r : c.r+hd.n]
	named := func(name []byte) bool {
		for _, t := range hd.conn {
			if foldEqBytes(name, base[t.ns:t.ne]) {
				return true
			}
		}
		return false
	}
	bodyAllowed := status >= 200 && status != 204 && status != 304
	mode := bodyNone
	switch {
	case isHEAD || !bodyAllowed:
	case hd.chunked:
		mode = bodyChunked
	case hd.clen >= 0:
		mode = bodyLength
	default:
		mode = bodyEOF
	}
	o := headerOut{b: st.resp[:0], defs: w.DefaultHeaders()}
	hasType, hasCE, clOut, eventStream := false, false, false, false
	nvia := 0
	for _, f := range hd.fields {
		name, val := base[f.ns:f.ne], base[f.vs:f.ve]
		if len(hd.conn) > 0 && named(name) {
			continue
		}
		if responseSkip(name) {
			switch {
			case len(name) == 3: // Via
				nvia++
			case len(name) == 14: // Content-Length
				clOut = hd.clen >= 0 && bodyAllowed
			}
			continue
		}
		if len(name) == 12 && foldEq(name, "content-type") {
			if status == 304 {
				continue
			}
			hasType = true
			eventStream = bytes.HasPrefix(val, []byte("text/event-stream"))
		} else if len(name) == 16 && foldEq(name, "content-encoding") && len(val) > 0 {
			hasCE = true
		}
		o.add(name, val)
	}
	for _, kv := range o.defs {
		// A site's Content-Type or Content-Encoding is in the header
		// before ReverseProxy's copy, so net/http does not sniff.
		switch {
		case strings.EqualFold(kv[0], "Content-Type"):
			hasType = true
		case strings.EqualFold(kv[0], "Content-Encoding") && kv[1] != "":
			hasCE = true
		}
	}
	if clOut {
		var nb [20]byte
		o.add([]byte("Content-Length"), strconv.AppendInt(nb[:0], hd.clen, 10))
	}
	// Via: the upstream's, then portico (modifyResponse).
	{
		v := make([]byte, 0, 64)
		if nvia > 0 {
			for _, f := range hd.fields {
				if name := base[f.ns:f.ne]; len(name) == 3 && foldEq(name, "via") && !named(name) {
					v = append(v, base[f.vs:f.ve]...)
					v = append(v, ", "...)
				}
			}
		}
		v = append(v, "1.1 portico"...)
		o.add([]byte("Via"), v)
	}
	// Announced trailers (ReverseProxy rebuilds Trailer from them).
	if hd.chunked && hd.hasTrail && !named([]byte("trailer")) {
		var t []byte
		for _, f := range hd.fields {
			if name := base[f.ns:f.ne]; len(name) == 7 && foldEq(name, "trailer") {
				for _, k := range bytes.Split(base[f.vs:f.ve], []byte(",")) {
					if k = bytes.Trim(k, " \t"); len(k) > 0 {
						if len(t) > 0 {
							t = append(t, ", "...)
						}
						t = appendCanonical(t, k)
					}
				}
			}
		}
		if len(t) > 0 {
			o.add([]byte("Trailer"), t)
		}
	}
	st.resp = o.b
	reuse := !hd.close && mode != bodyEOF
	c.client = w
	defer func() { c.client = nil }()
	if eventStream && (mode == bodyChunked || mode == bodyEOF) {
		// A stream may be quiet for long: as on the net/http path, no
		// read timeout inside its body.
		c.bodyTimeout = 0
	}
	c.r += hd.n

	// Sniff a Content-Type as net/http would, from the body's start.
	sniff := ""
	// Only for a body of known length: for others ReverseProxy flushes the
	// header before the first body byte, and net/http sniffs nothing.
	if mode == bodyLength && !hasType && !hasCE {
		need := int(min(hd.clen, 512))
		var err error
		for err == nil && c.w-c.r < need {
			err = c.fillBody()
		}
		if err != nil {
			// Nothing was sent yet: net/http would abort the response
			// (ErrAbortHandler) and close the client's connection.
			c.nc.Close()
			w.Abort()
			return
		}
		if n := min(c.w-c.r, need, 512); n > 0 {
			sniff = http.DetectContentType(c.buf[c.r : c.r+n])
		}
	}

	w.WriteHeader(status)
	w.AddHeaderLines(st.resp)
	if sniff != "" {
		w.AddHeader("Content-Type", sniff)
	}
	chunkOut := mode != bodyNone && !clOut
	if chunkOut {
		w.AddHeader("Transfer-Encoding", "chunked")
	}
	var err error
	switch mode {
	case bodyNone:
		// nothing
	case bodyLength:
		err = h.copyLength(c, w, hd.clen, chunkOut)
	case bodyChunked:
		err = h.copyChunked(c, w)
	case bodyEOF:
		err = h.copyEOF(c, w)
	}
	if err != nil {
		c.nc.Close()
		w.Abort()
		return
	}
	if chunkOut {
		if mode != bodyChunked {
			_ = w.EndChunks(nil)
		}
	}
	if reuse && c.r == c.w {
		h.fast.pools[u.idx].put(c, w.Now())
	} else {
		c.nc.Close()
	}
}

// errClientWrite marks a failed write to the client.
var errClientWrite = errors.New("client write failed")

// copyLength relays a body of known length.
func (h *Handler) copyLength(c *upConn, w *fastpath.ResponseWriter, n int64, chunkOut bool) error {
	for n > 0 {
		if c.r == c.w {
			// Before waiting for the upstream, what we have goes out
			// (and the client's write deadline moves with progress).
			if w.Flush() != nil {
				return errClientWrite
			}
			if err := c.fillBody(); err != nil {
				return err
			}
		}
		k := int(min(int64(c.w-c.r), n))
		var err error
		if chunkOut {
			err = w.WriteChunk(c.buf[c.r : c.r+k])
		} else {
			_, err = w.Write(c.buf[c.r : c.r+k])
		}
		if err != nil {
			return errClientWrite
		}
		c.r += k
		n -= int64(k)
	}
	return nil
}

// copyEOF relays a body that ends when the upstream closes, chunked.
func (h *Handler) copyEOF(c *upConn, w *fastpath.ResponseWriter) error {
	for {
		if c.r < c.w {
			if w.WriteChunk(c.buf[c.r:c.w]) != nil {
				return errClientWrite
			}
			c.r = c.w
		}
		if w.Flush() != nil {
			return errClientWrite
		}
		if err := c.fillBody(); err != nil {
			if err == io.EOF {
				return nil
			}
			return err
		}
	}
}
