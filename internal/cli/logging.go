package cli

import (
	"fmt"
	"io"
	"log"
	"log/slog"
	"os"
	"os/exec"
	"runtime"
	"strings"

	"portico/internal/config"
)

// logs are portico's own two loggers, one format: own writes to error_log
// (warnings, errors, reloads), announce writes the startup lines to stdout.
type logs struct {
	own, announce *slog.Logger
	close         func()
}

// openLogs opens error_log and makes both loggers in error_log_format.
func openLogs(srv config.Server, stdout, stderr io.Writer) (logs, error) {
	out, closeFn, err := openErrorLog(srv.ErrorLog, stdout, stderr)
	if err != nil {
		return logs{}, err
	}
	return logs{
		own:      newLogger(srv.ErrorLogFormat, out),
		announce: newLogger(srv.ErrorLogFormat, stdout),
		close:    closeFn,
	}, nil
}

// redirectStdLog sends what libraries print through the standard
// logger (net/http's client reports an upstream's unsolicited bytes that
// way) to l, as warnings in error_log's format, instead of a bare line on
// stderr that a JSON log reader cannot parse. It returns the undo.
func redirectStdLog(l *slog.Logger) (restore func()) {
	out, flags, prefix := log.Writer(), log.Flags(), log.Prefix()
	log.SetOutput(stdLogWriter{l})
	log.SetFlags(0)
	log.SetPrefix("")
	return func() {
		log.SetOutput(out)
		log.SetFlags(flags)
		log.SetPrefix(prefix)
	}
}

type stdLogWriter struct{ l *slog.Logger }

func (w stdLogWriter) Write(p []byte) (int, error) {
	w.l.Warn(strings.TrimSpace(string(p)), "source", "go")
	return len(p), nil
}

// newLogger makes a slog logger: JSON for "json", text otherwise (the
// config has validated the value).
func newLogger(format string, w io.Writer) *slog.Logger {
	opts := &slog.HandlerOptions{Level: slog.LevelInfo}
	if format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

func openErrorLog(dest string, stdout, stderr io.Writer) (io.Writer, func(), error) {
	switch dest {
	case "", "stderr":
		return stderr, func() {}, nil
	case "stdout":
		return stdout, func() {}, nil
	}
	f, err := os.OpenFile(dest, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return nil, nil, fmt.Errorf("error log: %w", err)
	}
	return f, func() { f.Close() }, nil
}

// browserOpener picks the program that opens a URL on this desktop, or
// says why there is none. lookPath and getenv are exec.LookPath and
// os.Getenv, passed in for tests.
func browserOpener(goos string, lookPath func(string) (string, error), getenv func(string) string) (cmd string, args []string, why string) {
	switch goos {
	case "darwin":
		return "open", nil, ""
	case "windows":
		return "rundll32", []string{"url.dll,FileProtocolHandler"}, ""
	}
	if getenv("DISPLAY") == "" && getenv("WAYLAND_DISPLAY") == "" {
		return "", nil, "no desktop session (DISPLAY and WAYLAND_DISPLAY are unset)"
	}
	for _, c := range []string{"xdg-open", "sensible-browser", "x-www-browser"} {
		if _, err := lookPath(c); err == nil {
			return c, nil, ""
		}
	}
	return "", nil, "no browser opener found (install xdg-utils)"
}

// openBrowser opens url in the desktop's browser and says what it did, or
// why it could not (then the user opens the URL printed above).
func openBrowser(url string, log *slog.Logger) {
	cmd, args, why := browserOpener(runtime.GOOS, exec.LookPath, os.Getenv)
	if cmd == "" {
		log.Warn("portico: --open: cannot open a browser: "+why+"; open "+url+" yourself", "url", url)
		return
	}
	c := exec.Command(cmd, append(args, url)...)
	if err := c.Start(); err != nil {
		log.Warn("portico: --open: "+cmd+" failed; open "+url+" yourself", "url", url, "err", err)
		return
	}
	log.Info("portico: --open: asked "+cmd+" to open "+url, "url", url)
	go func() {
		if err := c.Wait(); err != nil {
			log.Warn("portico: --open: "+cmd+" failed; open "+url+" yourself", "url", url, "err", err)
		}
	}()
}
