package h2guard

// outbound follows the frame boundaries in the server's output, which
// Go's buffered writer may cut anywhere (a large DATA frame spans
// writes). It reads only frame headers and skips payloads, and counts
// the DATA bytes sent (for the flow-control bound of earlyreset.go).
type outbound struct {
	skip      int // payload bytes of the current frame still to come
	hdr       [frameHeaderLen]byte
	hdrN      int   // bytes of the next frame header seen
	dataBytes int64 // DATA payload bytes of all frames begun so far
}

func (o *outbound) advance(b []byte) {
	for len(b) > 0 {
		b = b[o.step(b):]
	}
}

// step consumes the start of b, at most to the end of a payload or of a
// frame header, and returns how many bytes it took.
func (o *outbound) step(b []byte) int {
	if o.skip > 0 {
		k := min(o.skip, len(b))
		o.skip -= k
		return k
	}
	if o.hdrN == 0 && len(b) >= frameHeaderLen {
		o.begin(b)
		return frameHeaderLen
	}
	k := copy(o.hdr[o.hdrN:], b)
	o.hdrN += k
	if o.hdrN == frameHeaderLen {
		o.hdrN = 0
		o.begin(o.hdr[:])
	}
	return k
}

func (o *outbound) begin(h []byte) {
	o.skip = int(h[0])<<16 | int(h[1])<<8 | int(h[2])
	if h[3] == frameData {
		o.dataBytes += int64(o.skip)
	}
}

// atBoundary reports whether the output so far ends between frames.
func (o *outbound) atBoundary() bool { return o.skip == 0 && o.hdrN == 0 }
