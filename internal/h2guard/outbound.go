package h2guard

// outbound follows the frame boundaries in the server's output, which
// Go's buffered writer may cut anywhere (a large DATA frame spans
// writes). It reads only frame headers and skips payloads.
type outbound struct {
	skip int // payload bytes of the current frame still to come
	hdr  [frameHeaderLen]byte
	hdrN int // bytes of the next frame header seen
}

func (o *outbound) advance(b []byte) {
	for len(b) > 0 {
		if o.skip > 0 {
			k := min(o.skip, len(b))
			o.skip -= k
			b = b[k:]
			continue
		}
		if o.hdrN == 0 && len(b) >= frameHeaderLen {
			o.skip = int(b[0])<<16 | int(b[1])<<8 | int(b[2])
			b = b[frameHeaderLen:]
			continue
		}
		k := copy(o.hdr[o.hdrN:], b)
		o.hdrN += k
		b = b[k:]
		if o.hdrN == frameHeaderLen {
			o.skip = int(o.hdr[0])<<16 | int(o.hdr[1])<<8 | int(o.hdr[2])
			o.hdrN = 0
		}
	}
}

// atBoundary reports whether the output so far ends between frames.
func (o *outbound) atBoundary() bool { return o.skip == 0 && o.hdrN == 0 }
