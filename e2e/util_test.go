package e2e

import (
	"io"
	"net/http"
)

// io_Copy reads a response body into w.
func io_Copy(w io.Writer, resp *http.Response) (int64, error) {
	return io.Copy(w, resp.Body)
}
