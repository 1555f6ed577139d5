package h2guard

import (
	"encoding/binary"
	"fmt"

	"golang.org/x/net/http2"
)

// Frame layout and codes of RFC 9113 section 4 and 6.
const (
	frameHeaderLen = 9
	streamIDMask   = 1<<31 - 1

	frameData         = 0x0
	frameHeaders      = 0x1
	frameRSTStream    = 0x3
	frameSettings     = 0x4
	frameGoAway       = 0x7
	frameWindowUpdate = 0x8
	frameContinuation = 0x9

	flagEndStream  = 0x1
	flagEndHeaders = 0x4
	flagPadded     = 0x8
	flagPriority   = 0x20
	flagAck        = 0x1

	// maxSettingsPayload is the largest SETTINGS frame the guard rewrites:
	// 100 settings, beyond which Go's server refuses a frame anyway (a
	// flood guard the guard keeps).
	maxSettingsPayload = 100 * 6

	// headerTableSize is the HPACK dynamic table size Go's server
	// decodes with (it announces no other), so the client encodes for it.
	headerTableSize = 4096

	// maxHeaderString caps one HPACK string the guard's decoder will
	// buffer across frames. A longer one stops the guarding of that
	// connection (Go's own decoder has a lower cap and ends it).
	maxHeaderString = 1 << 20

	// maxTrackedBodies bounds the request bodies counted at once on one
	// connection; more than Go's 250 concurrent streams only happen when
	// the server ended streams whose client keeps them open.
	maxTrackedBodies = 1024
)

var clientPreface = []byte(http2.ClientPreface)

type frameHeader struct {
	length uint32
	typ    uint8
	flags  uint8
	stream uint32
}

func parseFrameHeader(b []byte) frameHeader {
	return frameHeader{
		length: uint32(b[0])<<16 | uint32(b[1])<<8 | uint32(b[2]),
		typ:    b[3],
		flags:  b[4],
		stream: binary.BigEndian.Uint32(b[5:9]) & streamIDMask,
	}
}

func putFrameHeader(b []byte, length uint32, typ, flags uint8, stream uint32) {
	b[0], b[1], b[2] = byte(length>>16), byte(length>>8), byte(length)
	b[3], b[4] = typ, flags
	binary.BigEndian.PutUint32(b[5:9], stream&streamIDMask)
}

// Violation is a rule of RFC 9113 a client broke: the connection error
// the guard answered it with.
type Violation struct {
	Code       http2.ErrCode // in the GOAWAY
	LastStream uint32        // in the GOAWAY: the last stream Go was given
	Stream     uint32        // the offending stream
	Rule       string        // which rule, for logs and tests
}

func (v *Violation) Error() string {
	return fmt.Sprintf("http2 guard: stream %d: %s (%v)", v.Stream, v.Rule, v.Code)
}

// The rules, as Violation.Rule says them.
const (
	RuleConnectionHeader = "connection-specific header field"
	RuleContentLength    = "body length differs from content-length"
)
