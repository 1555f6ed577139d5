package static

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"
)

var (
	condTag  = `"a-1"`
	condMod  = time.Date(2025, 3, 14, 15, 9, 26, 500, time.UTC) // sub-second part is dropped
	condAt   = condMod.Format(http.TimeFormat)
	condPast = condMod.Add(-time.Hour).Format(http.TimeFormat)
	condNext = condMod.Add(time.Hour).Format(http.TimeFormat)
)

func TestCheckPreconditions(t *testing.T) {
	for _, c := range []struct {
		rfc  string
		fr   fileRequest
		want int
	}{
		{"13.2.2 none", fileRequest{}, 0},
		{"13.1.1 if-match hit", fileRequest{ifMatch: condTag}, 0},
		{"13.1.1 if-match list", fileRequest{ifMatch: `"x", ` + condTag}, 0},
		{"13.1.1 if-match star", fileRequest{ifMatch: "*"}, 0},
		{"13.1.1 if-match miss", fileRequest{ifMatch: `"x"`}, 412},
		{"13.1.1 if-match strong only", fileRequest{ifMatch: "W/" + condTag}, 412},
		{"13.1.1 if-match second line", fileRequest{ifMatch: "junk\n" + condTag}, 0},
		{"13.1.4 ius later", fileRequest{ifUnmodifiedSince: condNext}, 0},
		{"13.1.4 ius equal", fileRequest{ifUnmodifiedSince: condAt}, 0},
		{"13.1.4 ius earlier", fileRequest{ifUnmodifiedSince: condPast}, 412},
		{"13.1.4 ius bad date ignored", fileRequest{ifUnmodifiedSince: "soon"}, 0},
		{"13.2.2 step 2 skipped with if-match", fileRequest{ifMatch: condTag, ifUnmodifiedSince: condPast}, 0},
		{"13.1.2 inm hit", fileRequest{method: "GET", ifNoneMatch: condTag}, 304},
		{"13.1.2 inm weak", fileRequest{method: "GET", ifNoneMatch: "W/" + condTag}, 304},
		{"13.1.2 inm star", fileRequest{method: "HEAD", ifNoneMatch: "*"}, 304},
		{"13.1.2 inm miss", fileRequest{method: "GET", ifNoneMatch: `"x"`}, 0},
		{"13.1.2 inm other method", fileRequest{method: "POST", ifNoneMatch: condTag}, 412},
		{"13.1.3 ims equal", fileRequest{method: "GET", ifModifiedSince: condAt}, 304},
		{"13.1.3 ims later", fileRequest{method: "GET", ifModifiedSince: condNext}, 304},
		{"13.1.3 ims earlier", fileRequest{method: "GET", ifModifiedSince: condPast}, 0},
		{"13.1.3 ims bad date", fileRequest{method: "GET", ifModifiedSince: "yesterday"}, 0},
		{"13.1.3 ims only for GET and HEAD", fileRequest{method: "POST", ifModifiedSince: condAt}, 0},
		{"13.2.2 step 4 skipped with inm", fileRequest{method: "GET", ifNoneMatch: `"x"`, ifModifiedSince: condNext}, 0},
		{"13.2.2 step 1 before 3", fileRequest{method: "GET", ifMatch: `"x"`, ifNoneMatch: condTag}, 412},
		{"13.2.2 step 2 before 4", fileRequest{method: "GET", ifUnmodifiedSince: condPast, ifModifiedSince: condAt}, 412},
		{"13.2.2 if-match then 304", fileRequest{method: "GET", ifMatch: condTag, ifNoneMatch: condTag}, 304},
	} {
		if got := checkPreconditions(&c.fr, condTag, condMod); got != c.want {
			t.Errorf("RFC 9110 %s: %+v: got %d, want %d", c.rfc, c.fr, got, c.want)
		}
	}
}

func TestAnswerRanges(t *testing.T) {
	e := &entry{Size: 10, ModTime: condMod, ETag: []string{condTag}}
	for _, c := range []struct {
		rfc    string
		fr     fileRequest
		status int
		ranges string
	}{
		{"14.2 no range", fileRequest{method: "GET"}, 200, "[]"},
		{"14.2 one range", fileRequest{method: "GET", rangeSpec: "bytes=0-3"}, 206, "[{0 4}]"},
		{"14.2 several ranges", fileRequest{method: "GET", rangeSpec: "bytes=0-0,5-"}, 206, "[{0 1} {5 5}]"},
		{"14.2 GET only", fileRequest{method: "HEAD", rangeSpec: "bytes=0-3"}, 200, "[]"},
		{"15.5.17 unsatisfiable", fileRequest{method: "GET", rangeSpec: "bytes=10-"}, 416, "[]"},
		{"14.1.1 other unit ignored", fileRequest{method: "GET", rangeSpec: "lines=0-3"}, 200, "[]"},
		{"13.1.5 if-range etag", fileRequest{method: "GET", rangeSpec: "bytes=0-3", ifRange: condTag}, 206, "[{0 4}]"},
		{"13.1.5 if-range stale etag", fileRequest{method: "GET", rangeSpec: "bytes=0-3", ifRange: `"b"`}, 200, "[]"},
		{"13.1.5 if-range weak never", fileRequest{method: "GET", rangeSpec: "bytes=0-3", ifRange: "W/" + condTag}, 200, "[]"},
		{"13.1.5 if-range date exact", fileRequest{method: "GET", rangeSpec: "bytes=0-3", ifRange: condAt}, 206, "[{0 4}]"},
		{"13.1.5 if-range date later", fileRequest{method: "GET", rangeSpec: "bytes=0-3", ifRange: condNext}, 200, "[]"},
		{"13.1.5 unsatisfiable but stale", fileRequest{method: "GET", rangeSpec: "bytes=10-", ifRange: `"b"`}, 200, "[]"},
		{"13.2.2 preconditions first", fileRequest{method: "GET", rangeSpec: "bytes=10-", ifNoneMatch: condTag}, 304, "[]"},
		{"13.2.2 412 before 416", fileRequest{method: "GET", rangeSpec: "bytes=10-", ifMatch: `"x"`}, 412, "[]"},
	} {
		status, ranges := answer(&c.fr, e, nil)
		if got := fmt.Sprint(ranges); status != c.status || got != c.ranges {
			t.Errorf("RFC 9110 %s: %+v: got %d %s, want %d %s", c.rfc, c.fr, status, got, c.status, c.ranges)
		}
	}
	empty := &entry{Size: 0, ModTime: condMod, ETag: []string{condTag}}
	if status, _ := answer(&fileRequest{method: "GET", rangeSpec: "bytes=0-"}, empty, nil); status != 200 {
		t.Errorf("range of an empty file: got %d, want 200", status)
	}
}

// TestFileFields checks the header set of each status in one table, as
// both engines render it (RFC 9110 15.4.5 for 304, 14.4 for Content-Range).
func TestFileFields(t *testing.T) {
	e := &entry{Size: 10, ModTime: condMod, ETag: []string{condTag}, LastModified: []string{condAt},
		ContentType: []string{"text/plain"}, ContentLength: []string{"10"}, Encoding: "br",
		ContentEncoding: []string{"br"}, Vary: true}
	for _, c := range []struct {
		status    int
		multipart bool
		rng       byteRange
		want      string
	}{
		{200, false, byteRange{}, "Content-Type: text/plain|Content-Length: 10|ETag: " + condTag + "|Last-Modified: " + condAt +
			"|Accept-Ranges: bytes|Content-Encoding: br|Vary: Accept-Encoding|Cache-Control: max-age=1|"},
		{206, false, byteRange{2, 3}, "Content-Type: text/plain|Content-Length: 3|ETag: " + condTag + "|Last-Modified: " + condAt +
			"|Accept-Ranges: bytes|Content-Encoding: br|Vary: Accept-Encoding|Cache-Control: max-age=1|Content-Range: bytes 2-4/10|"},
		{206, true, byteRange{}, "ETag: " + condTag + "|Last-Modified: " + condAt + "|Accept-Ranges: bytes|Content-Encoding: br|Vary: Accept-Encoding|Cache-Control: max-age=1|"},
		{304, false, byteRange{}, "ETag: " + condTag + "|Last-Modified: " + condAt + "|Vary: Accept-Encoding|Cache-Control: max-age=1|"},
		{412, false, byteRange{}, "Vary: Accept-Encoding|Cache-Control: max-age=1|"},
		{416, false, byteRange{}, "Accept-Ranges: bytes|Vary: Accept-Encoding|Cache-Control: max-age=1|Content-Range: bytes */10|"},
	} {
		set := fileFields(c.status, c.multipart, e, true)
		lines := strings.ReplaceAll(string(appendFields(nil, set, e, "max-age=1", c.rng)), "\r\n", "|")
		if lines != c.want {
			t.Errorf("%d multipart=%v: got %q, want %q", c.status, c.multipart, lines, c.want)
		}
		// The net/http rendering carries the same fields and values.
		hdr := http.Header{}
		setFields(hdr, set, e, []string{"max-age=1"}, c.rng)
		var fromMap []string
		for _, l := range strings.Split(strings.TrimSuffix(c.want, "|"), "|") {
			k, _, _ := strings.Cut(l, ": ")
			fromMap = append(fromMap, k+": "+strings.Join(hdr[k], ","))
		}
		if got := strings.Join(fromMap, "|") + "|"; got != c.want || len(hdr) != len(fromMap) {
			t.Errorf("%d multipart=%v: setFields gave %q, want %q", c.status, c.multipart, hdr, c.want)
		}
	}
}

// FuzzCheckPreconditions checks properties of the precondition decision
// that hold for any header values: it never panics, answers 0, 304 or
// 412; only If-Match or If-Unmodified-Since (or If-None-Match on an
// unsafe method) can make it 412; HEAD is decided as GET (RFC 9110
// 9.3.2); a matching If-None-Match still matches when split onto two
// field lines at a comma.
func FuzzCheckPreconditions(f *testing.F) {
	f.Add("GET", "", "", condTag, "")
	f.Add("GET", `"x", `+condTag, "", "", condAt)
	f.Add("HEAD", "*", condPast, `W/"a-1"`, "")
	f.Add("POST", "", "", "*", condNext)
	f.Add("GET", `W/"x",,"a-1"`, "Fri, 14 Mar 2025 15:09:26 GMT", `"a`, "garbage")
	f.Fuzz(func(t *testing.T, method, im, ius, inm, ims string) {
		if strings.Contains(im+inm, "\n") {
			return // "\n" is fieldLines' line separator, never in a value
		}
		fr := fileRequest{method: method, ifMatch: im, ifUnmodifiedSince: ius, ifNoneMatch: inm, ifModifiedSince: ims}
		got := checkPreconditions(&fr, condTag, condMod)
		switch got {
		case 0, 304:
		case 412:
			if im == "" && ius == "" && (inm == "" || method == "GET" || method == "HEAD") {
				t.Fatalf("%+v: 412 without a failing If-Match or If-Unmodified-Since", fr)
			}
		default:
			t.Fatalf("%+v: got %d", fr, got)
		}
		if method == "GET" {
			head := fr
			head.method = "HEAD"
			if h := checkPreconditions(&head, condTag, condMod); h != got {
				t.Fatalf("%+v: HEAD %d, GET %d", fr, h, got)
			}
		}
		// Split after a closing quote (an even count of quotes before it:
		// entity tags hold none), between two list elements.
		if i := strings.Index(inm, `", "`); i >= 0 && strings.Count(inm[:i+1], `"`)%2 == 0 {
			split := inm[:i+1] + "\n" + inm[i+3:]
			if etagListMatch(inm, condTag, true) && !etagListMatch(split, condTag, true) {
				t.Fatalf("%q matches on one line, not as %q", inm, split)
			}
		}
	})
}
