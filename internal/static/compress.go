package static

import (
	"io"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"portico/internal/compress"
)

// On-the-fly compression of static files (a route's compress keys).
//
// A file is compressed once per encoding, on the first request that
// wants it, and the encoded bytes are kept beside the file in the
// open-file cache, as an entry like a precompressed sibling's: both
// engines serve it from memory, conditionals and all, and the fast path
// stays the fast path. An edit to the file replaces its node, and so its
// variants. A precompressed sibling of the chosen encoding is preferred.
// Range requests get the identity file, whose bytes the ranges name.

// maxCompressFile is the largest file compressed on the fly: the encoded
// variants live in memory. Larger files are sent as they are (or from a
// precompressed sibling).
const maxCompressFile = 8 << 20

// dynVariants are a node's compressed variants, built on first use.
type dynVariants struct {
	mu  sync.Mutex // held while one is built: one compression per file and encoding
	enc [numEnc]atomic.Pointer[entry]
}

// staticIndex maps a compress.Encoding to the index of the node's
// variant arrays.
func staticIndex(e compress.Encoding) int {
	switch e {
	case compress.Brotli:
		return encBr
	case compress.Zstd:
		return encZstd
	case compress.Gzip:
		return encGzip
	}
	return -1
}

// compressible reports whether the plain entry of a file is compressed
// on the fly: compression on, a compressible type, a size within bounds.
func (h *Handler) compressible(e *entry) bool {
	if h.comp == nil || h.cacheControl != nil && strings.Contains(strings.ToLower(h.cacheControl[0]), "no-transform") {
		return false // cache_control says no-transform: sent as it is
	}
	return e.Size >= h.comp.MinSize && e.Size <= maxCompressFile && h.comp.Compressible(e.ContentType[0])
}

// pickCompressed chooses the representation of a compressible file: the
// identity for a range or when the client accepts none of the route's
// encodings, else the variant (a precompressed sibling, else the
// compressed copy in memory).
func (h *Handler) pickCompressed(n *node, ae string, hasRange bool) *entry {
	if hasRange {
		return n.plain
	}
	enc := h.comp.Negotiate(ae)
	i := staticIndex(enc)
	if i < 0 {
		return n.plain
	}
	if n.enc[i] != nil {
		return n.enc[i]
	}
	if e := n.dyn.enc[i].Load(); e != nil {
		return e
	}
	return h.buildVariant(n, i, enc)
}

// buildVariant compresses the file of n with enc and keeps the result in
// n. On failure (the file changed or went away; compression did not make
// it smaller) the identity entry stands in, and is remembered too.
func (h *Handler) buildVariant(n *node, i int, enc compress.Encoding) *entry {
	n.dyn.mu.Lock()
	defer n.dyn.mu.Unlock()
	if e := n.dyn.enc[i].Load(); e != nil {
		return e
	}
	plain := n.plain
	body := plain.Body
	if body == nil {
		f, err := plain.Open()
		if err != nil {
			return plain // changed since cached: not remembered, the next stat reloads
		}
		body, err = io.ReadAll(io.LimitReader(f, plain.Size+1))
		f.Close()
		if err != nil || int64(len(body)) != plain.Size {
			return plain
		}
	}
	z, err := h.comp.Codec.Compress(enc, body)
	if err != nil || len(z) >= len(body) {
		h.log.Debug("static: not compressed", "file", plain.relFile, "encoding", enc.Token(), "err", err)
		n.dyn.enc[i].Store(plain)
		return plain
	}
	tok := enc.Token()
	etag := plain.ETag[0]
	e := &entry{
		Name:            plain.Name,
		Size:            int64(len(z)),
		ModTime:         plain.ModTime,
		Encoding:        tok,
		Vary:            true,
		Body:            z,
		ContentType:     plain.ContentType,
		ETag:            []string{etag[:len(etag)-1] + "-" + tok + `"`},
		LastModified:    plain.LastModified,
		ContentLength:   []string{strconv.Itoa(len(z))},
		ContentEncoding: []string{tok},
		root:            plain.root,
		relFile:         plain.relFile,
	}
	e.Head = buildHead(e, h.cacheControl)
	n.dyn.enc[i].Store(e)
	h.cache.grow(n, int64(len(z)))
	return e
}

// grow adds delta bytes to n's cost (a variant built after n was cached).
func (c *fileCache) grow(n *node, delta int64) {
	c.mu.Lock()
	n.cost += delta
	if n.cached {
		c.bytes += delta
	}
	c.mu.Unlock()
}
