package h2guard

import (
	"encoding/binary"

	"golang.org/x/net/http2"
)

// inspector follows the client's byte stream frame by frame. It is fed
// whatever each read returned, split anywhere, and keeps what it needs
// across calls: where the preface and the current frame are, the HPACK
// decoder's table, and the request bodies it counts.
type inspector struct {
	conn *Conn // told of stream events (earlyreset.go)

	prefaceLeft int  // bytes of the client preface still to come
	bypass      bool // stopped guarding: the rest goes to Go unseen
	holdNeed    int  // set by feed when it asks for a hold: bytes the held frame start needs

	inFrame bool        // a frame header was read, its payload is coming
	frame   frameHeader // that frame
	pos     uint32      // payload bytes of it seen so far

	// HEADERS/CONTINUATION payload: [fragStart, fragEnd) is header block.
	fragStart, fragEnd uint32

	scan  *hpackScanner
	block headerBlock // the header block being decoded

	windowUpdate [4]byte // a stream's WINDOW_UPDATE payload

	// DATA with PADDED waits for its first byte (the padding length) to
	// count its data.
	dataPadPending bool

	bodies     map[uint32]body // request bodies with a content-length still coming
	lastStream uint32          // highest stream a whole request header block came on
}

// headerBlock is what the guard learns from one header block.
type headerBlock struct {
	open          bool // HEADERS seen, END_HEADERS not yet
	stream        uint32
	endStream     bool
	newStream     bool // a request's headers, not trailers
	forbidden     bool // a connection-specific field
	contentLength int64
	clConflict    bool // two different content-length values
}

// body is a request body being counted against its content-length.
type body struct {
	declared, received int64
}

func (in *inspector) init(c *Conn) {
	in.conn = c
	in.prefaceLeft = len(clientPreface)
	in.scan = newHPACKScanner(in.onField)
}

// feed inspects b. It returns n, how many bytes of b are valid (SETTINGS
// rewrites shrink b in place), and held >= 0 when b[held:n] is the start
// of a frame that must be held until holdNeed bytes of it are in (held
// is -1 otherwise); or the violation b contains.
func (in *inspector) feed(b []byte) (n, held int, v *Violation) {
	i := 0
	for i < len(b) && !in.bypass {
		if in.prefaceLeft > 0 {
			k := min(in.prefaceLeft, len(b)-i)
			at := len(clientPreface) - in.prefaceLeft
			if string(b[i:i+k]) != string(clientPreface[at:at+k]) {
				in.bypass = true // not HTTP/2: Go refuses it
				break
			}
			in.prefaceLeft -= k
			i += k
			continue
		}
		if !in.inFrame {
			if len(b)-i < frameHeaderLen {
				in.holdNeed = frameHeaderLen
				return len(b), i, nil
			}
			h := parseFrameHeader(b[i:])
			if rewritableSettings(h) {
				total := frameHeaderLen + int(h.length)
				if len(b)-i < total {
					in.holdNeed = total
					return len(b), i, nil
				}
				if m := dedupeSettings(b[i : i+total]); m < total {
					copy(b[i+m:], b[i+total:])
					b = b[:len(b)-(total-m)]
					total = m
				}
				in.noteSettings(b[i+frameHeaderLen : i+total])
				i += total
				continue
			}
			i += frameHeaderLen
			if v := in.beginFrame(h); v != nil {
				return 0, -1, v
			}
			if !in.inFrame {
				if v := in.endFrame(); v != nil {
					return 0, -1, v
				}
			}
			continue
		}
		k := int(min(in.frame.length-in.pos, uint32(len(b)-i)))
		if v := in.payload(b[i : i+k]); v != nil {
			return 0, -1, v
		}
		i += k
		if in.pos == in.frame.length {
			in.inFrame = false
			if v := in.endFrame(); v != nil {
				return 0, -1, v
			}
		}
	}
	return len(b), -1, nil
}

// beginFrame starts frame h, whose header was just read. Header-time
// checks (a DATA frame's length against its body) happen here, before
// Go sees any of the frame.
func (in *inspector) beginFrame(h frameHeader) *Violation {
	in.frame, in.pos = h, 0
	in.inFrame = h.length > 0
	if in.block.open && (h.typ != frameContinuation || h.stream != in.block.stream) {
		in.bypass = true // Go: connection error PROTOCOL_ERROR
		return nil
	}
	switch h.typ {
	case frameHeaders:
		if h.stream == 0 {
			in.bypass = true
			return nil
		}
		if h.stream <= in.lastStream {
			in.conn.clientFrame(h.stream, h.typ) // trailers
		}
		in.fragStart = 0
		if h.flags&flagPadded != 0 {
			in.fragStart++
		}
		if h.flags&flagPriority != 0 {
			in.fragStart += 5
		}
		if h.length < in.fragStart {
			in.bypass = true
			return nil
		}
		in.fragEnd = h.length // PADDED: set when the pad length is read
		in.block = headerBlock{
			open:          true,
			stream:        h.stream,
			endStream:     h.flags&flagEndStream != 0,
			newStream:     h.stream > in.lastStream,
			contentLength: -1,
		}
	case frameContinuation:
		if !in.block.open {
			in.bypass = true
			return nil
		}
		in.fragStart, in.fragEnd = 0, h.length
	case frameData:
		in.dataPadPending = false
		in.conn.clientFrame(h.stream, h.typ)
		if _, ok := in.bodies[h.stream]; !ok {
			return nil
		}
		if h.flags&flagPadded != 0 {
			if h.length == 0 {
				in.bypass = true // Go: PROTOCOL_ERROR
				return nil
			}
			in.dataPadPending = true
			return nil
		}
		return in.countData(h.stream, int64(h.length), h.flags&flagEndStream != 0)
	case frameRSTStream:
		delete(in.bodies, h.stream)
		in.conn.clientFrame(h.stream, h.typ)
	}
	return nil
}

// payload inspects the next bytes of the current frame's payload.
func (in *inspector) payload(b []byte) *Violation {
	h := &in.frame
	switch h.typ {
	case frameHeaders, frameContinuation:
		for len(b) > 0 {
			if in.pos == 0 && h.typ == frameHeaders && h.flags&flagPadded != 0 {
				pad := uint32(b[0])
				if pad > h.length-in.fragStart {
					in.bypass = true // Go: PROTOCOL_ERROR
					return nil
				}
				in.fragEnd = h.length - pad
			}
			var k uint32
			switch {
			case in.pos < in.fragStart:
				k = min(in.fragStart-in.pos, uint32(len(b)))
			case in.pos < in.fragEnd:
				k = min(in.fragEnd-in.pos, uint32(len(b)))
				if err := in.scan.Write(b[:k]); err != nil {
					in.bypass = true // Go: COMPRESSION_ERROR
					return nil
				}
			default:
				k = uint32(len(b)) // padding, to the end of the frame
			}
			in.pos += k
			b = b[k:]
		}
	case frameWindowUpdate:
		if in.pos < 4 {
			copy(in.windowUpdate[in.pos:], b)
		}
		in.pos += uint32(len(b))
	case frameData:
		if in.dataPadPending && in.pos == 0 && len(b) > 0 {
			in.dataPadPending = false
			pad := int64(b[0])
			data := int64(h.length) - 1 - pad
			if data < 0 {
				in.bypass = true // Go: PROTOCOL_ERROR
				return nil
			}
			in.pos += uint32(len(b))
			return in.countData(h.stream, data, h.flags&flagEndStream != 0)
		}
		in.pos += uint32(len(b))
	default:
		in.pos += uint32(len(b))
	}
	return nil
}

// endFrame finishes the current frame: a header block ends with the
// frame that has END_HEADERS.
func (in *inspector) endFrame() *Violation {
	h := &in.frame
	if h.typ == frameWindowUpdate && h.stream != 0 && h.length == 4 {
		in.conn.windowUpdate(h.stream, binary.BigEndian.Uint32(in.windowUpdate[:])&streamIDMask)
		return nil
	}
	if (h.typ != frameHeaders && h.typ != frameContinuation) || in.bypass || h.flags&flagEndHeaders == 0 {
		return nil
	}
	if err := in.scan.Close(); err != nil {
		in.bypass = true
		return nil
	}
	blk := in.block
	in.block.open = false
	if blk.forbidden {
		return in.violation(http2.ErrCodeProtocol, blk.stream, RuleConnectionHeader)
	}
	if blk.clConflict {
		return in.violation(http2.ErrCodeProtocol, blk.stream, RuleContentLength)
	}
	if blk.newStream {
		in.lastStream = blk.stream
		if !blk.endStream {
			in.conn.bodyPending(blk.stream)
		}
		if !blk.endStream && blk.contentLength >= 0 && len(in.bodies) < maxTrackedBodies {
			if in.bodies == nil {
				in.bodies = make(map[uint32]body)
			}
			in.bodies[blk.stream] = body{declared: blk.contentLength}
		}
		return nil
	}
	if b, ok := in.bodies[blk.stream]; ok && blk.endStream {
		// Trailers end the body.
		delete(in.bodies, blk.stream)
		if b.received != b.declared {
			return in.violation(http2.ErrCodeProtocol, blk.stream, RuleContentLength)
		}
	}
	return nil
}

// countData adds n bytes of DATA to stream's body; a body longer than its
// content-length, or ending shorter, is malformed (RFC 9113 8.1.1).
func (in *inspector) countData(stream uint32, n int64, end bool) *Violation {
	b, ok := in.bodies[stream]
	if !ok {
		return nil
	}
	b.received += n
	switch {
	case b.received > b.declared || end && b.received != b.declared:
		delete(in.bodies, stream)
		return in.violation(http2.ErrCodeProtocol, stream, RuleContentLength)
	case end:
		delete(in.bodies, stream)
	default:
		in.bodies[stream] = b
	}
	return nil
}

func (in *inspector) violation(code http2.ErrCode, stream uint32, rule string) *Violation {
	in.bypass = true // nothing more is read
	return &Violation{Code: code, LastStream: in.lastStream, Stream: stream, Rule: rule}
}

// onField is told of each header field: it notes the fields that make a
// request malformed (RFC 9113 section 8.2.2) and the content-length.
func (in *inspector) onField(f scannedField) {
	switch f.class {
	case fieldForbidden:
		in.block.forbidden = true
	case fieldTE:
		if !f.ok {
			in.block.forbidden = true
		}
	case fieldContentLength:
		switch {
		case !f.ok:
			// Go's server answers an unparsable content-length itself.
		case in.block.contentLength < 0:
			in.block.contentLength = f.num
		case in.block.contentLength != f.num:
			in.block.clConflict = true
		}
	}
}

// noteSettings reads the client's SETTINGS_INITIAL_WINDOW_SIZE from a
// SETTINGS payload Go will read (already deduplicated).
func (in *inspector) noteSettings(payload []byte) {
	for len(payload) >= 6 {
		id, val := binary.BigEndian.Uint16(payload), binary.BigEndian.Uint32(payload[2:])
		if http2.SettingID(id) == http2.SettingInitialWindowSize && val <= maxWindow {
			in.conn.initialWindow.Store(int64(val))
		}
		payload = payload[6:]
	}
}
