package durhist

import (
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/common/expfmt"
)

var buckets = []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}

// The exposition is the one client_golang's own histogram gives for the
// same observations, bounds included ("le" is inclusive).
func TestSameExpositionAsClientGolang(t *testing.T) {
	observations := []time.Duration{
		0, 100 * time.Microsecond, 500 * time.Microsecond, // on the first bound
		500*time.Microsecond + 1, time.Millisecond, 3 * time.Millisecond,
		250 * time.Millisecond, 2 * time.Second, 10 * time.Second, 11 * time.Second, time.Hour,
	}
	ours := NewVec("t_seconds", "help", buckets, "site")
	theirs := prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "t_seconds", Help: "help", Buckets: buckets}, []string{"site"})
	for _, site := range []string{"a", "b"} {
		h, p := ours.With(site), theirs.WithLabelValues(site)
		for _, d := range observations {
			h.Observe(d)
			p.Observe(d.Seconds())
		}
	}
	ours.With("a").Observe(time.Millisecond) // a second With returns the same child
	theirs.WithLabelValues("a").Observe(time.Millisecond.Seconds())

	want, err := testutil.CollectAndFormat(theirs, expfmt.TypeTextPlain, "t_seconds")
	if err != nil {
		t.Fatal(err)
	}
	got, err := testutil.CollectAndFormat(ours, expfmt.TypeTextPlain, "t_seconds")
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != string(want) {
		t.Errorf("exposition differs\n--- ours\n%s\n--- client_golang\n%s", got, want)
	}
	if !strings.Contains(string(got), `t_seconds_bucket{site="a",le="0.0005"} 3`) {
		t.Errorf("a duration on a bound is not counted in it:\n%s", got)
	}
}

func TestConcurrentObserversLoseNothing(t *testing.T) {
	v := NewVec("c_seconds", "help", buckets)
	h := v.With()
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 1000; i++ {
				h.Observe(time.Duration(i) * time.Millisecond)
			}
		}()
	}
	wg.Wait()
	count, sum, b := h.snapshot(v.seconds)
	if count != 8000 {
		t.Errorf("count %d, want 8000", count)
	}
	if want := 8 * 499.5; sum < want-1e-6 || sum > want+1e-6 {
		t.Errorf("sum %v, want %v", sum, want)
	}
	if b[0.001] != 8*2 { // 0 and 1 ms
		t.Errorf("le=0.001: %d, want 16", b[0.001])
	}
}

func TestNilHistogramObservesNothing(t *testing.T) {
	var h *Histogram
	h.Observe(time.Second)
}

func TestBucketsMustAscend(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("descending buckets accepted")
		}
	}()
	NewVec("x", "help", []float64{1, 0.5})
}

func BenchmarkObserve(b *testing.B) {
	h := NewVec("b_seconds", "help", buckets, "site").With("s")
	for i := 0; i < b.N; i++ {
		h.Observe(time.Duration(i&1023) * time.Microsecond)
	}
}

// The same on client_golang's histogram, for the ratio.
func BenchmarkObserveClientGolang(b *testing.B) {
	h := prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "b_seconds", Help: "help", Buckets: buckets}, []string{"site"}).WithLabelValues("s")
	for i := 0; i < b.N; i++ {
		h.Observe((time.Duration(i&1023) * time.Microsecond).Seconds())
	}
}
