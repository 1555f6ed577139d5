package cli

import (
	"fmt"
	"runtime"
	"runtime/debug"
)

// Build facts. Release builds set them with -ldflags
// "-X portico/internal/cli.Version=1.2.3 -X portico/internal/cli.Commit=...
// -X portico/internal/cli.BuildDate=...". A plain `go build` in a git
// checkout leaves them empty and versionInfo fills them from the VCS
// stamp Go embeds (debug.ReadBuildInfo), so every binary says what it is.
var (
	Version   = "0.1.0-dev"
	Commit    = ""
	BuildDate = ""
)

// buildFacts is what `portico version` prints.
type buildFacts struct {
	version, commit, date string
	modified              bool
}

// versionInfo merges the link-time values with the build info: a value
// set with -X wins; otherwise vcs.revision and vcs.time are used (vcs.time
// is the commit's time, the closest a plain build has to a build date).
func versionInfo(info *debug.BuildInfo, ok bool) buildFacts {
	f := buildFacts{version: Version, commit: Commit, date: BuildDate}
	if !ok || info == nil {
		return f
	}
	if f.version == "0.1.0-dev" && info.Main.Version != "" && info.Main.Version != "(devel)" {
		f.version = info.Main.Version
	}
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			if f.commit == "" {
				f.commit = s.Value
			}
		case "vcs.time":
			if f.date == "" {
				f.date = s.Value
			}
		case "vcs.modified":
			f.modified = s.Value == "true"
		}
	}
	return f
}

// versionLine renders the facts on one line, e.g.
// "portico 0.1.0-dev commit 542ec74b1c2d built 2026-12-04T21:14:11Z (go1.26.8 linux/amd64)".
func versionLine(f buildFacts) string {
	commit, date := f.commit, f.date
	if commit == "" {
		commit = "unknown"
	} else if len(commit) > 12 {
		commit = commit[:12]
	}
	if f.modified {
		commit += "+dirty"
	}
	if date == "" {
		date = "unknown"
	}
	return fmt.Sprintf("portico %s commit %s built %s (%s %s/%s)",
		f.version, commit, date, runtime.Version(), runtime.GOOS, runtime.GOARCH)
}

func printVersion() string {
	info, ok := debug.ReadBuildInfo()
	return versionLine(versionInfo(info, ok))
}

// shortVersion is the version and commit, for the status page.
func shortVersion() string {
	info, ok := debug.ReadBuildInfo()
	f := versionInfo(info, ok)
	if f.commit == "" {
		return f.version
	}
	if len(f.commit) > 12 {
		f.commit = f.commit[:12]
	}
	return f.version + " (" + f.commit + ")"
}
