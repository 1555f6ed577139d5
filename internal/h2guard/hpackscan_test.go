package h2guard

import (
	"bytes"
	"testing"

	"golang.org/x/net/http2/hpack"
)

// scanBlocks runs data, a series of header blocks each prefixed by its
// length byte, through hpack's decoder and the scanner (in fragments of
// frag bytes), and fails if a block hpack decodes is judged differently.
func scanBlocks(t *testing.T, data []byte, frag int) {
	var want, got []scannedField
	dec := hpack.NewDecoder(headerTableSize, func(f hpack.HeaderField) {
		want = append(want, classify(classOf([]byte(f.Name)), []byte(f.Value)))
	})
	sc := newHPACKScanner(func(f scannedField) { got = append(got, f) })
	for block := 0; len(data) > 0; block++ {
		n := min(int(data[0]), len(data)-1)
		b := data[1 : 1+n]
		data = data[1+n:]
		want, got = want[:0], got[:0]
		_, err := dec.Write(b)
		if err == nil {
			err = dec.Close()
		}
		if err != nil {
			return // Go would end the connection here
		}
		var serr error
		for i := 0; i < len(b) && serr == nil; i += frag {
			serr = sc.Write(b[i:min(i+frag, len(b))])
		}
		if serr == nil {
			serr = sc.Close()
		}
		if serr != nil {
			t.Fatalf("block %d (%x): hpack decodes it, the scanner: %v", block, b, serr)
		}
		if len(got) != len(want) {
			t.Fatalf("block %d (%x): %d fields, hpack %d", block, b, len(got), len(want))
		}
		for i := range got {
			if got[i] != want[i] {
				t.Fatalf("block %d (%x) field %d: %+v, hpack's %+v", block, b, i, got[i], want[i])
			}
		}
	}
}

// encodedBlocks encodes header blocks the way clients do, length-prefixed
// for scanBlocks.
func encodedBlocks(blocks ...[]hpack.HeaderField) []byte {
	var out, buf bytes.Buffer
	enc := hpack.NewEncoder(&buf)
	for i, fields := range blocks {
		buf.Reset()
		if i == 2 {
			enc.SetMaxDynamicTableSize(100) // a size update starts the block
		}
		for _, f := range fields {
			enc.WriteField(f)
		}
		out.WriteByte(byte(min(buf.Len(), 255)))
		out.Write(buf.Bytes()[:min(buf.Len(), 255)])
	}
	return out.Bytes()
}

func hf(nv ...string) []hpack.HeaderField {
	var fs []hpack.HeaderField
	for i := 0; i+1 < len(nv); i += 2 {
		fs = append(fs, hpack.HeaderField{Name: nv[i], Value: nv[i+1], Sensitive: nv[i] == "cookie"})
	}
	return fs
}

var scanSeeds = [][]byte{
	encodedBlocks(
		hf(":method", "GET", ":path", "/", "te", "trailers", "content-length", "12", "user-agent", "x"),
		hf(":method", "GET", ":path", "/", "te", "trailers", "content-length", "12", "connection", "close"),
		hf(":method", "POST", "content-length", "99999", "te", "gzip", "cookie", "a=b", "keep-alive", "1"),
		hf("transfer-encoding", "chunked", "upgrade", "h2c", "proxy-connection", "x", "content-length", "1x"),
	),
	encodedBlocks(hf("a", "b"), hf("content-length", ""), hf("x-long", string(bytes.Repeat([]byte("v"), 200)))),
}

// The scanner judges every field as hpack's own decoder decodes it, with
// the dynamic table, size updates and eviction, however blocks are cut.
func TestHPACKScannerAgreesWithDecoder(t *testing.T) {
	for _, seed := range scanSeeds {
		for _, frag := range []int{1, 2, 3, 7, 1 << 10} {
			scanBlocks(t, seed, frag)
		}
	}
}

// The scanner allocates nothing for a block of indexed fields.
func TestHPACKScannerIndexedBlockAllocatesNothing(t *testing.T) {
	var buf bytes.Buffer
	enc := hpack.NewEncoder(&buf)
	fields := hf(":method", "GET", ":path", "/index.html", "user-agent", "Mozilla/5.0", "accept", "*/*", "cookie-x", "a=b", "te", "trailers")
	for _, f := range fields {
		enc.WriteField(f)
	}
	first := bytes.Clone(buf.Bytes())
	buf.Reset()
	for _, f := range fields {
		enc.WriteField(f)
	}
	again := bytes.Clone(buf.Bytes())
	sc := newHPACKScanner(func(scannedField) {})
	if err := sc.Write(first); err != nil {
		t.Fatal(err)
	}
	sc.Close()
	if allocs := testing.AllocsPerRun(100, func() {
		sc.Write(again)
		sc.Close()
	}); allocs != 0 {
		t.Fatalf("%v allocations per block", allocs)
	}
}

// FuzzHPACKScanner compares the scanner with hpack's decoder on
// arbitrary header blocks.
func FuzzHPACKScanner(f *testing.F) {
	for _, s := range scanSeeds {
		f.Add(s, uint8(3))
	}
	f.Fuzz(func(t *testing.T, data []byte, frag uint8) {
		scanBlocks(t, data, int(frag%32)+1)
	})
}
