package server

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"portico/internal/config"
)

// Provision (what `portico check` runs) builds every handler and starts
// nothing: a proxy route with health checks sends no probe until Start,
// which `portico run` adds.
func TestProvisionStartsNothingStartDoes(t *testing.T) {
	var probes atomic.Int64
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/healthz" {
			probes.Add(1)
		}
	}))
	defer up.Close()
	cfg := &config.Config{Sites: []config.Site{{
		Listen: []string{"127.0.0.1:0"},
		Routes: []config.Route{{Path: "/", Proxy: &config.Proxy{
			Upstreams: []string{up.URL},
			Health:    &config.Health{Path: "/healthz", Interval: config.Duration(20 * time.Millisecond)},
		}}},
	}}}
	config.ApplyDefaults(cfg)
	tr, err := Provision(cfg, Deps{})
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close(context.Background())
	if err := tr.Check(); err != nil {
		t.Fatalf("Check: %v", err)
	}
	time.Sleep(200 * time.Millisecond)
	if n := probes.Load(); n != 0 {
		t.Fatalf("%d health probes after Provision and Check, want 0", n)
	}
	if err := tr.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for probes.Load() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("no health probe 5s after Start")
		}
		time.Sleep(10 * time.Millisecond)
	}
}
