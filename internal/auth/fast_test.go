package auth

import (
	"bytes"
	"strconv"

	"portico/internal/fastpath"
)

func itoa(n int) string { return strconv.Itoa(n) }

func (echo) ServeFast(req *fastpath.Request, w *fastpath.ResponseWriter) bool {
	body := "auth=" + req.Authorization
	if bytes.Contains(bytes.ToLower(w.RawHeader()), []byte("authorization:")) {
		body += " (raw header still has it)"
	}
	w.WriteHeader(200)
	w.AddHeader("Content-Type", "text/plain")
	w.AddHeader("Content-Length", strconv.Itoa(len(body)))
	w.Write([]byte(body))
	return true
}
