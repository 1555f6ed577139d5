package cli

import (
	"testing"

	"portico/internal/config"
)

func TestMetricsOnlyWithAnAdminListener(t *testing.T) {
	var cfg config.Config
	if m := metricsFor(&cfg); m != nil {
		t.Error("metrics counted with no admin listener to read them")
	}
	cfg.Server.Admin = "127.0.0.1:0"
	if m := metricsFor(&cfg); m == nil {
		t.Error("no metrics for the admin listener's /metrics")
	}
}
