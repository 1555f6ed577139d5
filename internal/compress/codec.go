package compress

import (
	"bytes"
	"io"
	"sync"

	"github.com/andybalholm/brotli"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
)

// encoder is a streaming compressor of one encoding, reusable with Reset.
type encoder interface {
	io.WriteCloser
	Flush() error
	Reset(io.Writer)
}

// zstdWindow bounds a zstd encoder's window (and so its memory, and the
// memory a client needs to decode): 1 MiB, well inside the 8 MiB browsers
// accept.
const zstdWindow = 1 << 20

// Codec makes compressors at one level and keeps them pooled: building a
// brotli or zstd encoder costs far more than compressing a small page.
// It is safe for concurrent use.
type Codec struct {
	level int
	pools [numEncodings]sync.Pool
}

// NewCodec returns a Codec for a level from 1 (fastest) to 9 (smallest):
// gzip uses it as is, brotli as its quality (0-11 scale), zstd maps 1-2 to
// its fastest mode, 3-5 to its default, 6-8 to "better", 9 to "best".
func NewCodec(level int) *Codec {
	level = min(max(level, 1), 9)
	c := &Codec{level: level}
	c.pools[Gzip].New = func() any {
		w, _ := gzip.NewWriterLevel(io.Discard, level) // level is in range
		return w
	}
	c.pools[Brotli].New = func() any { return brotli.NewWriterLevel(io.Discard, level) }
	c.pools[Zstd].New = func() any {
		w, _ := zstd.NewWriter(io.Discard, zstd.WithEncoderLevel(zstdLevel(level)),
			zstd.WithEncoderConcurrency(1), zstd.WithWindowSize(zstdWindow))
		return w
	}
	return c
}

func zstdLevel(level int) zstd.EncoderLevel {
	switch {
	case level <= 2:
		return zstd.SpeedFastest
	case level <= 5:
		return zstd.SpeedDefault
	case level <= 8:
		return zstd.SpeedBetterCompression
	}
	return zstd.SpeedBestCompression
}

// Level is the codec's level.
func (c *Codec) Level() int { return c.level }

// get returns a pooled encoder of enc writing to w.
func (c *Codec) get(enc Encoding, w io.Writer) encoder {
	e := c.pools[enc].Get().(encoder)
	e.Reset(w)
	return e
}

// put returns an encoder to its pool, detached from its writer.
func (c *Codec) put(enc Encoding, e encoder) {
	e.Reset(io.Discard)
	c.pools[enc].Put(e)
}

// Compress returns data encoded with enc (enc must not be None).
func (c *Codec) Compress(enc Encoding, data []byte) ([]byte, error) {
	var buf bytes.Buffer
	buf.Grow(len(data)/3 + 64)
	e := c.get(enc, &buf)
	_, err := e.Write(data)
	if cerr := e.Close(); err == nil {
		err = cerr
	}
	c.put(enc, e)
	if err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
