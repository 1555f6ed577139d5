package fastpath

import "bytes"

// HideRequestField makes RawHeader leave out every field named name
// (case-insensitively) for the rest of this request: a layer that has
// consumed a credential (basic auth's Authorization) keeps it from the
// handler, which may relay raw header lines upstream. The Request's own
// fields are the caller's to clear. Reset for every request.
func (w *ResponseWriter) HideRequestField(name string) { w.hidden = name }

// withoutHidden returns raw, or a copy without the hidden field's lines
// (in a buffer the connection reuses, so it allocates only while the
// buffer grows).
func (w *ResponseWriter) withoutHidden(raw []byte) []byte {
	name := w.hidden
	if name == "" {
		return raw
	}
	out := w.c.rawScratch[:0]
	for len(raw) > 0 {
		end := bytes.IndexByte(raw, '\n') + 1
		if end == 0 {
			end = len(raw)
		}
		line := raw[:end]
		raw = raw[end:]
		if len(line) > len(name) && line[len(name)] == ':' && equalFoldBytes(line[:len(name)], name) {
			continue
		}
		out = append(out, line...)
	}
	w.c.rawScratch = out
	return out
}

// RequestValues appends to dst the values of every field of the request
// being served named name (case-insensitively), in order, as strings
// that point into the connection's buffer (valid until ServeFast
// returns). When dst fills up (len == cap), the earliest values are
// dropped: fields like X-Forwarded-For are read from the right.
func (w *ResponseWriter) RequestValues(name string, dst []string) []string {
	raw := w.RawHeader()
	for len(raw) > 0 {
		end := bytes.IndexByte(raw, '\n')
		if end < 0 {
			end = len(raw)
		}
		line := raw[:end]
		raw = raw[min(end+1, len(raw)):]
		if len(line) <= len(name) || line[len(name)] != ':' || !equalFoldBytes(line[:len(name)], name) {
			continue
		}
		v := bytes.Trim(line[len(name)+1:], " \t\r")
		if len(dst) == cap(dst) && len(dst) > 0 {
			copy(dst, dst[1:])
			dst = dst[:len(dst)-1]
		}
		dst = append(dst, bstr(v))
	}
	return dst
}

// RequestValue returns the first value of the request field name, "" when
// there is none (valid until ServeFast returns).
func (w *ResponseWriter) RequestValue(name string) string {
	raw := w.RawHeader()
	for len(raw) > 0 {
		end := bytes.IndexByte(raw, '\n')
		if end < 0 {
			end = len(raw)
		}
		line := raw[:end]
		raw = raw[min(end+1, len(raw)):]
		if len(line) > len(name) && line[len(name)] == ':' && equalFoldBytes(line[:len(name)], name) {
			return bstr(bytes.Trim(line[len(name)+1:], " \t\r"))
		}
	}
	return ""
}
