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
