package cli

import (
	"runtime/debug"
	"strings"
	"testing"
)

func TestVersionInfo(t *testing.T) {
	stamped := &debug.BuildInfo{
		Main: debug.Module{Path: "portico", Version: "(devel)"},
		Settings: []debug.BuildSetting{
			{Key: "vcs.revision", Value: "542ec74b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f"},
			{Key: "vcs.time", Value: "2026-12-04T21:14:11Z"},
			{Key: "vcs.modified", Value: "true"},
		},
	}
	tests := []struct {
		name string
		info *debug.BuildInfo
		ok   bool
		want []string
	}{
		{"no build info", nil, false, []string{"portico 0.1.0-dev ", "commit unknown", "built unknown"}},
		{"vcs stamp", stamped, true, []string{"commit 542ec74b1c2d+dirty", "built 2026-12-04T21:14:11Z"}},
		{"module version", &debug.BuildInfo{Main: debug.Module{Version: "v1.2.3"}}, true, []string{"portico v1.2.3 "}},
	}
	for _, tt := range tests {
		got := versionLine(versionInfo(tt.info, tt.ok))
		for _, w := range tt.want {
			if !strings.Contains(got, w) {
				t.Errorf("%s: got %q, want it to contain %q", tt.name, got, w)
			}
		}
	}
}

func TestVersionLinkTimeValuesWin(t *testing.T) {
	oldC, oldD := Commit, BuildDate
	t.Cleanup(func() { Commit, BuildDate = oldC, oldD })
	Commit, BuildDate = "abcdef", "2027-01-01T00:00:00Z"
	info := &debug.BuildInfo{Settings: []debug.BuildSetting{{Key: "vcs.revision", Value: "0123456789"}}}
	got := versionLine(versionInfo(info, true))
	if !strings.Contains(got, "commit abcdef built 2027-01-01T00:00:00Z") {
		t.Errorf("got %q, want the -X values", got)
	}
}
