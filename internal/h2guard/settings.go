package h2guard

import (
	"encoding/binary"

	"golang.org/x/net/http2"
)

// rewritableSettings reports whether the frame h heads is a SETTINGS
// frame the guard holds whole and may rewrite: not an ACK, on stream 0,
// a whole number of settings, at most maxSettingsPayload. Go's server
// rejects the others itself, with the error RFC 9113 asks for (or its
// flood guard), and they pass unchanged.
func rewritableSettings(h frameHeader) bool {
	return h.typ == frameSettings && h.flags&flagAck == 0 && h.stream == 0 &&
		h.length%6 == 0 && h.length <= maxSettingsPayload
}

// dedupeSettings rewrites the SETTINGS frame f (header and payload) in
// place so that each setting appears once, with the value an endpoint
// processing the frame in order (RFC 9113 section 6.5.3) ends with, and
// returns the frame's new length. Go's server refuses a frame that
// repeats a setting, so it gets the equivalent frame instead.
//
// A value that is invalid stops in-order processing with an error: the
// frame then keeps the settings before it (deduplicated, without that
// setting's earlier values) and ends with the invalid one, so Go answers
// the same error.
func dedupeSettings(f []byte) int {
	payload := f[frameHeaderLen:]
	n := len(payload) / 6
	if n < 2 {
		return len(f)
	}
	dup := false
	for i := 1; i < n && !dup; i++ {
		id := binary.BigEndian.Uint16(payload[i*6:])
		for j := range i {
			if binary.BigEndian.Uint16(payload[j*6:]) == id {
				dup = true
				break
			}
		}
	}
	if !dup {
		return len(f)
	}
	out := 0 // settings kept, at the front of payload
	for i := range n {
		e := payload[i*6 : i*6+6]
		id := binary.BigEndian.Uint16(e)
		val := binary.BigEndian.Uint32(e[2:])
		invalid := http2.Setting{ID: http2.SettingID(id), Val: val}.Valid() != nil
		at := -1
		for j := range out {
			if binary.BigEndian.Uint16(payload[j*6:]) == id {
				at = j
				break
			}
		}
		switch {
		case invalid:
			if at >= 0 { // drop the earlier value: one occurrence, the invalid one
				copy(payload[at*6:], payload[(at+1)*6:out*6])
				out--
			}
			copy(payload[out*6:out*6+6], e)
			out++
			return finishSettings(f, out)
		case at >= 0:
			binary.BigEndian.PutUint32(payload[at*6+2:], val)
		default:
			copy(payload[out*6:out*6+6], e)
			out++
		}
	}
	return finishSettings(f, out)
}

func finishSettings(f []byte, settings int) int {
	length := uint32(settings * 6)
	f[0], f[1], f[2] = byte(length>>16), byte(length>>8), byte(length)
	return frameHeaderLen + int(length)
}
