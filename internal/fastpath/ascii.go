package fastpath

// EqualFold reports whether b and s are equal with ASCII letters folded,
// the comparison HTTP field names need. Handlers that read RawHeader use it
// too, so there is one copy of it.
func EqualFold(b []byte, s string) bool {
	return len(b) == len(s) && equalFoldBytes(b, s)
}
