package config

import (
	"fmt"
	"slices"
)

// Defaults of on-the-fly compression.
const (
	DefaultCompressMinSize = 1 << 10
	DefaultCompressLevel   = 5
)

// DefaultCompressTypes are the media types compressed unless compress_types
// says otherwise (package compress matches them: "type/*" and
// "type/*+suffix" patterns). A function, so no caller can change a shared
// slice.
func DefaultCompressTypes() []string {
	return []string{
		"text/*",
		"application/javascript", "application/x-javascript", "application/ecmascript",
		"application/json", "application/*+json",
		"application/xml", "application/*+xml",
		"application/wasm",
		"application/vnd.ms-fontobject", "application/x-font-ttf",
		"font/ttf", "font/otf", "font/collection",
		"image/svg+xml", "image/x-icon", "image/vnd.microsoft.icon", "image/bmp",
	}
}

// QuickCompress is what `portico serve` compresses with.
func QuickCompress() []string { return []string{"zstd", "br", "gzip"} }

// Compression is a route's resolved on-the-fly compression.
type Compression struct {
	// Encodings in order of preference: "zstd", "br", "gzip". Never empty.
	Encodings []string
	MinSize   Size
	Types     []string
	Level     int
}

// resolveCompression fills r.Compression from the route's compress keys,
// falling back to its site's, then to the defaults.
func resolveCompression(s *Site, r *Route) {
	enc := r.Compress
	if enc == nil {
		enc = s.Compress
	}
	if len(enc) == 0 {
		r.Compression = nil
		return
	}
	c := &Compression{Encodings: slices.Clone(enc), MinSize: r.CompressMinSize, Types: r.CompressTypes, Level: r.CompressLevel}
	if c.MinSize == 0 {
		c.MinSize = s.CompressMinSize
	}
	if c.MinSize == 0 {
		c.MinSize = DefaultCompressMinSize
	}
	if c.Types == nil {
		c.Types = s.CompressTypes
	}
	if len(c.Types) == 0 {
		c.Types = DefaultCompressTypes()
	}
	c.Types = slices.Clone(c.Types)
	if c.Level == 0 {
		c.Level = s.CompressLevel
	}
	if c.Level == 0 {
		c.Level = DefaultCompressLevel
	}
	r.Compression = c
}

// checkCompress validates the compress keys of a site or route at base.
func checkCompress(add addFunc, ps *positions, base string, enc []string, minSize Size, types []string, level int) {
	seen := map[string]bool{}
	for k, e := range enc {
		switch e {
		case "zstd", "br", "gzip":
		default:
			add(ps, fmt.Sprintf("%s.compress[%d]", base, k), "compress %q: want \"zstd\", \"br\" or \"gzip\"", e)
		}
		if seen[e] {
			add(ps, fmt.Sprintf("%s.compress[%d]", base, k), "compress lists %q twice", e)
		}
		seen[e] = true
	}
	if minSize < 0 {
		add(ps, base+".compress_min_size", "compress_min_size must not be negative")
	}
	for k, t := range types {
		if !validMediaPattern(t) {
			add(ps, fmt.Sprintf("%s.compress_types[%d]", base, k), "compress_types %q: want a media type such as \"text/*\", \"application/json\" or \"application/*+xml\"", t)
		}
	}
	if level != 0 && (level < 1 || level > 9) {
		add(ps, base+".compress_level", "compress_level must be from 1 (fastest) to 9 (smallest), not %d", level)
	}
}

// validMediaPattern: "type/subtype", "type/*" or "type/*+suffix", tokens
// without blanks or parameters.
func validMediaPattern(p string) bool {
	slash := -1
	for i := 0; i < len(p); i++ {
		c := p[i]
		switch {
		case c == '/':
			if slash >= 0 {
				return false
			}
			slash = i
		case c <= ' ' || c >= 0x7f || c == ';' || c == ',' || c == '"':
			return false
		}
	}
	if slash <= 0 || slash == len(p)-1 {
		return false
	}
	typ, sub := p[:slash], p[slash+1:]
	if slices.Contains([]byte(typ), '*') {
		return false
	}
	for i := 0; i < len(sub); i++ {
		if sub[i] == '*' {
			return i == 0 && (sub == "*" || len(sub) > 2 && sub[1] == '+' && !slices.Contains([]byte(sub[1:]), '*'))
		}
	}
	return true
}
