package h2guard

import (
	"bytes"
	"errors"

	"golang.org/x/net/http2/hpack"

	"portico/internal/httpnum"
)

// hpackScanner follows a client's HPACK header blocks (RFC 7541) and
// reports, for each field, only what the guard judges: whether its name
// is connection-specific, te or content-length, and for the last two
// whether the value is acceptable. Its dynamic table keeps those facts
// and the entry sizes, not the strings, so an indexed field costs a
// table lookup, a literal one no allocation, and a literal value that is
// neither indexed nor judged is skipped undecoded. Go's decoder, which
// sees the same blocks, checks everything else; on anything the scanner
// cannot read the guard steps aside.
type hpackScanner struct {
	table   [maxTableEntries]tableEntry // ring; newest at (oldest+n-1) % len
	oldest  int
	n       int
	size    uint32 // sum of the entries' sizes
	maxSize uint32 // current limit, at most headerTableSize

	firstField bool         // at the start of a header block
	pending    []byte       // a field cut by the end of a fragment
	scratch    bytes.Buffer // a Huffman-decoded string
	emit       func(f scannedField)
}

// maxTableEntries is how many entries a 4096-byte table holds: each is at
// least 32 bytes (RFC 7541 4.1). A power of two: ring indexes are masked.
const maxTableEntries = headerTableSize / 32

// fieldClass is what the guard needs to know of a header field's name.
type fieldClass uint8

const (
	fieldOther         fieldClass = iota
	fieldForbidden                // connection, keep-alive, proxy-connection, transfer-encoding, upgrade
	fieldTE                       // te
	fieldContentLength            // content-length
)

// scannedField is one header field as the guard sees it.
type scannedField struct {
	class fieldClass
	ok    bool  // te: "trailers" or empty; content-length: a number
	num   int64 // content-length
}

type tableEntry struct {
	scannedField
	nameLen uint32
	size    uint32 // name + value + 32
}

// staticTable is RFC 7541 appendix A as the scanner needs it, read once
// from hpack's own decoder so the two cannot disagree.
var staticTable = func() (t [61]tableEntry) {
	for i := range t {
		var hf hpack.HeaderField
		d := hpack.NewDecoder(headerTableSize, func(f hpack.HeaderField) { hf = f })
		if _, err := d.Write([]byte{0x80 | byte(i+1)}); err != nil {
			panic("hpack static table: " + err.Error())
		}
		t[i] = tableEntry{scannedField: classify(classOf([]byte(hf.Name)), []byte(hf.Value)), nameLen: uint32(len(hf.Name))}
	}
	return t
}()

var (
	errHPACK         = errors.New("hpack: invalid header block")
	errHPACKNeedMore = errors.New("hpack: field cut")
)

func newHPACKScanner(emit func(scannedField)) *hpackScanner {
	return &hpackScanner{maxSize: headerTableSize, firstField: true, emit: emit}
}

// Write scans the next fragment of a header block.
func (s *hpackScanner) Write(frag []byte) error {
	buf := frag
	if len(s.pending) > 0 {
		s.pending = append(s.pending, frag...)
		buf = s.pending
	}
	for len(buf) > 0 {
		n, err := s.field(buf)
		if err == errHPACKNeedMore {
			if len(buf) > 2*maxHeaderString {
				return errHPACK
			}
			if len(s.pending) == 0 {
				s.pending = append(s.pending, buf...)
			} else {
				s.pending = s.pending[:copy(s.pending, buf)]
			}
			return nil
		}
		if err != nil {
			return err
		}
		buf = buf[n:]
		s.firstField = false
	}
	s.pending = s.pending[:0]
	if cap(s.pending) > 64<<10 { // a long field passed: do not keep its room
		s.pending = nil
	}
	return nil
}

// Close ends a header block: a field cut at its end is an error.
func (s *hpackScanner) Close() error {
	s.firstField = true
	if len(s.pending) > 0 {
		s.pending = s.pending[:0]
		return errHPACK
	}
	return nil
}

// field scans one field representation at the start of b and returns its
// length.
func (s *hpackScanner) field(b []byte) (int, error) {
	switch c := b[0]; {
	case c&0x80 != 0: // indexed (6.1)
		idx, n, err := readInt(b, 7)
		if err != nil {
			return 0, err
		}
		e, ok := s.at(idx)
		if !ok {
			return 0, errHPACK
		}
		s.emit(e.scannedField)
		return n, nil
	case c&0xc0 == 0x40: // literal with incremental indexing (6.2.1)
		return s.literal(b, 6, true)
	case c&0xe0 == 0x00: // literal without indexing, never indexed (6.2.2, 6.2.3)
		return s.literal(b, 4, false)
	default: // dynamic table size update (6.3)
		if !s.firstField && s.size > 0 {
			return 0, errHPACK
		}
		v, n, err := readInt(b, 5)
		if err != nil {
			return 0, err
		}
		if v > headerTableSize {
			return 0, errHPACK
		}
		s.maxSize = uint32(v)
		s.evict(0)
		return n, nil
	}
}

func (s *hpackScanner) literal(b []byte, prefix uint8, indexing bool) (int, error) {
	idx, n, err := readInt(b, prefix)
	if err != nil {
		return 0, err
	}
	var class fieldClass
	var nameLen int
	if idx > 0 {
		e, ok := s.at(idx)
		if !ok {
			return 0, errHPACK
		}
		class, nameLen = e.class, int(e.nameLen)
	} else {
		huff, raw, m, err := readString(b[n:])
		if err != nil {
			return 0, err
		}
		n += m
		name, err := s.decode(huff, raw)
		if err != nil {
			return 0, err
		}
		class, nameLen = classOf(name), len(name)
	}
	huff, raw, m, err := readString(b[n:])
	if err != nil {
		return 0, err
	}
	n += m
	f := scannedField{class: class}
	valueLen := len(raw)
	if huff && (indexing || class == fieldTE || class == fieldContentLength) {
		value, err := s.decode(huff, raw)
		if err != nil {
			return 0, err
		}
		valueLen = len(value)
		f = classify(class, value)
	} else if class != fieldOther {
		f = classify(class, raw)
	}
	s.emit(f)
	if indexing {
		s.add(tableEntry{scannedField: f, nameLen: uint32(nameLen), size: uint32(nameLen+valueLen) + 32})
	}
	return n, nil
}

// at is the entry at HPACK index i: 1-61 static, then the dynamic table
// newest first.
func (s *hpackScanner) at(i uint64) (*tableEntry, bool) {
	switch {
	case i == 0:
		return nil, false
	case i <= uint64(len(staticTable)):
		return &staticTable[i-1], true
	case i-uint64(len(staticTable)) > uint64(s.n):
		return nil, false
	}
	back := int(i) - len(staticTable) // 1: the newest
	return &s.table[(s.oldest+s.n-back)&(maxTableEntries-1)], true
}

func (s *hpackScanner) add(e tableEntry) {
	if e.size > s.maxSize {
		s.n, s.size = 0, 0
		return
	}
	s.evict(e.size)
	s.table[(s.oldest+s.n)&(maxTableEntries-1)] = e
	s.n++
	s.size += e.size
}

// evict drops the oldest entries until room more bytes fit.
func (s *hpackScanner) evict(room uint32) {
	for s.n > 0 && s.size+room > s.maxSize {
		s.size -= s.table[s.oldest].size
		s.oldest = (s.oldest + 1) & (maxTableEntries - 1)
		s.n--
	}
}

// decode returns a string's bytes, Huffman-decoded into scratch if need be.
func (s *hpackScanner) decode(huff bool, raw []byte) ([]byte, error) {
	if !huff {
		return raw, nil
	}
	s.scratch.Reset()
	if _, err := hpack.HuffmanDecode(&s.scratch, raw); err != nil {
		return nil, errHPACK
	}
	return s.scratch.Bytes(), nil
}

// readInt reads an integer with an n-bit prefix (RFC 7541 5.1).
func readInt(b []byte, n uint8) (v uint64, length int, err error) {
	if len(b) == 0 {
		return 0, 0, errHPACKNeedMore
	}
	max := uint64(1)<<n - 1
	v = uint64(b[0]) & max
	if v < max {
		return v, 1, nil
	}
	var shift uint
	for i := 1; i < len(b); i++ {
		v += uint64(b[i]&0x7f) << shift
		if b[i]&0x80 == 0 {
			return v, i + 1, nil
		}
		shift += 7
		if shift >= 63 {
			return 0, 0, errHPACK
		}
	}
	return 0, 0, errHPACKNeedMore
}

// readString reads a string literal (RFC 7541 5.2): whether it is Huffman
// coded, its bytes as sent, and the length of the whole literal.
func readString(b []byte) (huff bool, raw []byte, length int, err error) {
	if len(b) == 0 {
		return false, nil, 0, errHPACKNeedMore
	}
	l, n, err := readInt(b, 7)
	if err != nil {
		return false, nil, 0, err
	}
	if l > maxHeaderString {
		return false, nil, 0, errHPACK
	}
	if uint64(len(b)-n) < l {
		return false, nil, 0, errHPACKNeedMore
	}
	return b[0]&0x80 != 0, b[n : n+int(l)], n + int(l), nil
}

// classOf names what the guard cares about in a field name.
func classOf(name []byte) fieldClass {
	switch string(name) { // no allocation: the compiler compares in place
	case "connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade":
		return fieldForbidden
	case "te":
		return fieldTE
	case "content-length":
		return fieldContentLength
	}
	return fieldOther
}

// classify judges a value of a field of class c.
func classify(c fieldClass, value []byte) scannedField {
	f := scannedField{class: c}
	switch c {
	case fieldTE:
		f.ok = len(value) == 0 || string(value) == "trailers" // Go lets an empty TE by
	case fieldContentLength:
		f.num, f.ok = httpnum.Digits(value)
	}
	return f
}
