package accessinfo

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

type recWriter struct {
	http.ResponseWriter
	Record
}

type wrapper struct{ http.ResponseWriter }

func (w wrapper) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func TestFindThroughWrappers(t *testing.T) {
	rw := &recWriter{ResponseWriter: httptest.NewRecorder()}
	w := wrapper{wrapper{rw}}
	if Find(w) != nil {
		t.Fatal("found a Reporter that does not record")
	}
	rw.SetRecording(true)
	if Find(w) != Reporter(rw) {
		t.Fatal("Reporter under two wrappers not found")
	}
	CacheStatus(w, "HIT")
	rw.ReportUpstream("127.0.0.1:1", 1500*time.Microsecond)
	rw.ReportUpstream("127.0.0.1:2", 2*time.Second)
	if rw.CacheStatus() != "HIT" || string(rw.UpstreamAddrs()) != "127.0.0.1:1, 127.0.0.1:2" ||
		string(rw.UpstreamTimes()) != "0.002, 2.000" {
		t.Errorf("record: %q %q %q", rw.CacheStatus(), rw.UpstreamAddrs(), rw.UpstreamTimes())
	}
	if Find(httptest.NewRecorder()) != nil {
		t.Error("a plain writer is no Reporter")
	}
}
