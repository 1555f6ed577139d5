package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/pelletier/go-toml/v2"
)

// Problem is one thing wrong with a config, at a place in a file.
type Problem struct {
	Pos Position
	Msg string
}

func (p Problem) Error() string { return p.Pos.String() + ": " + p.Msg }

func (ps Problems) hasLine(line int) bool { return ps.indexOfLine(line) >= 0 }

// indexOfLine is the index of the first problem on line, or -1.
func (ps Problems) indexOfLine(line int) int {
	for i, p := range ps {
		if p.Pos.Line == line {
			return i
		}
	}
	return -1
}

// Problems is every problem found in a config. Load returns it as its error
// so that `portico check` can print them all at once, one per line.
type Problems []Problem

func (ps Problems) Error() string {
	lines := make([]string, len(ps))
	for i, p := range ps {
		lines[i] = p.Error()
	}
	return strings.Join(lines, "\n")
}

// Load reads the config file at path and every file its server.include
// globs name, decodes them strictly, resolves relative paths against the
// folder of the file that names them, fills in defaults and validates.
// The error, if any, is a Problems listing every problem with file and line.
func Load(path string) (*Config, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, Problems{{Pos: Position{File: path}, Msg: err.Error()}}
	}
	cfg := &Config{File: abs}
	var probs Problems
	main, ps, p, quiet := decodeFile(abs, false)
	probs = append(probs, p...)
	if main == nil {
		return nil, probs
	}
	// quiet maps a file to the lines whose validation problems would only
	// repeat a decode problem; lost is set when a file did not decode at
	// all or an include went wrong, so validating the rest would report
	// missing sites that are only missing from this load.
	quietByFile := map[string]map[int]bool{abs: quiet}
	lost := false
	cfg.Server = main.Server
	cfg.Sites = main.Sites
	sources := make([]*positions, len(cfg.Sites))
	for i := range sources {
		sources[i] = ps
	}
	dir := filepath.Dir(abs)
	resolveSites(cfg.Sites, dir, ps, 0)
	if cfg.Server.AccessLog != "" && !isLogKeyword(cfg.Server.AccessLog) {
		cfg.Server.AccessLog = resolve(dir, cfg.Server.AccessLog)
	}
	if cfg.Server.ErrorLog != "" && !isLogKeyword(cfg.Server.ErrorLog) {
		cfg.Server.ErrorLog = resolve(dir, cfg.Server.ErrorLog)
	}

	for k, pattern := range cfg.Server.Include {
		incPos := ps.at(fmt.Sprintf("server.include[%d]", k))
		matches, err := filepath.Glob(resolve(dir, pattern))
		if err != nil {
			lost = true
			probs = append(probs, Problem{incPos, fmt.Sprintf("include %q: %v", pattern, err)})
			continue
		}
		if len(matches) == 0 && !hasMeta(pattern) {
			// A glob may match nothing (an empty sites-enabled); a plain
			// file name that names nothing is a mistake.
			lost = true
			probs = append(probs, Problem{incPos, fmt.Sprintf("include %q: no such file", pattern)})
			continue
		}
		sort.Strings(matches)
		for _, m := range matches {
			if m == abs {
				continue
			}
			if fi, err := os.Stat(m); err == nil && fi.IsDir() {
				if !hasMeta(pattern) {
					lost = true
					probs = append(probs, Problem{incPos, fmt.Sprintf("include %q is a folder: use a glob such as %q", pattern, filepath.Join(pattern, "*.toml"))})
				}
				continue
			}
			inc, ips, p, q := decodeFile(m, true)
			quietByFile[m] = q
			if ips == nil {
				lost = true
				// Unreadable: point at the include line, which has one.
				for _, q := range p {
					probs = append(probs, Problem{incPos, fmt.Sprintf("include %q: %s", pattern, strings.Replace(q.Msg, "config", m, 1))})
				}
				continue
			}
			probs = append(probs, p...)
			if inc == nil {
				lost = lost || len(p) > 0
				continue
			}
			if !serverEmpty(inc.Server) || ips.has("server") {
				pos := ips.first("server")
				if pos.Line == 0 {
					pos.Line = 1
				}
				probs = append(probs, Problem{pos, "[server] is only allowed in the main config file"})
				lost = true
			}
			resolveSites(inc.Sites, filepath.Dir(m), ips, 0)
			for range inc.Sites {
				sources = append(sources, ips)
			}
			cfg.Sites = append(cfg.Sites, inc.Sites...)
		}
	}
	if lost {
		return nil, probs
	}
	ApplyDefaults(cfg)
	vprobs := validateACME(cfg, ps, sources)
	sources = addRedirectSites(cfg, sources)
	vprobs = append(vprobs, validate(cfg, ps, sources)...)
	decoded := len(probs)
	for _, v := range vprobs {
		if !quietByFile[v.Pos.File][v.Pos.Line] {
			probs = append(probs, v)
		}
	}
	if decoded > 0 && len(probs) > decoded {
		sortByFileAndLine(probs)
	}
	if len(probs) > 0 {
		return nil, probs
	}
	return cfg, nil
}

// sortByLine orders the problems of one file by line, keeping the order
// of problems on one line.
func sortByLine(ps Problems) {
	sort.SliceStable(ps, func(i, j int) bool { return ps[i].Pos.Line < ps[j].Pos.Line })
}

// sortByFileAndLine orders problems by file (in the order files first
// appear) and line, so decode and validation problems read top to bottom.
func sortByFileAndLine(ps Problems) {
	rank := map[string]int{}
	for _, p := range ps {
		if _, ok := rank[p.Pos.File]; !ok {
			rank[p.Pos.File] = len(rank)
		}
	}
	sort.SliceStable(ps, func(i, j int) bool {
		if a, b := rank[ps[i].Pos.File], rank[ps[j].Pos.File]; a != b {
			return a < b
		}
		return ps[i].Pos.Line < ps[j].Pos.Line
	})
}

func hasMeta(pattern string) bool { return strings.ContainsAny(pattern, `*?[\`) }

func serverEmpty(s Server) bool {
	return s.ShutdownTimeout == 0 && s.AccessLog == "" && s.LogFormat == "" && s.ErrorLog == "" && s.ErrorLogFormat == "" &&
		s.Admin == "" && len(s.Include) == 0 && s.ReadHeaderTimeout == 0 && s.ReadTimeout == 0 &&
		s.WriteTimeout == 0 && s.IdleTimeout == 0 && s.MaxHeaderBytes == 0 && s.MaxBodySize == 0 &&
		len(s.TrustedProxies) == 0 && s.ACME == nil && s.MaxConnsPerIP == 0
}

// decodeFile strictly decodes one file. Sources of sites and routes are
// filled from the position index. With problems, the config is still
// returned when what is left decodes (recover.go), so Load can validate
// the rest and check reports every problem at once; quiet holds the lines
// whose validation problems would only repeat a decode problem.
func decodeFile(path string, included bool) (cfg *Config, ps *positions, probs Problems, quiet map[int]bool) {
	data, err := readConfig(path, included)
	if err != nil {
		return nil, nil, Problems{{Pos: Position{File: path}, Msg: "cannot read config: " + unwrapPathError(err)}}, nil
	}
	ps = scanPositions(path, data)
	kindProbs := append(checkKeyCase(ps), checkKinds(ps)...)
	cfg = new(Config)
	dec := toml.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	err = dec.Decode(cfg)
	probs = kindProbs
	if err != nil {
		for _, p := range decodeProblems(path, err, ps) {
			if len(probs) > 0 && (p.Pos.Line == 0 || probs.hasLine(p.Pos.Line)) {
				continue // the same problem, already reported with its line
			}
			probs = append(probs, p)
		}
	}
	if len(probs) > 0 {
		var strict *toml.StrictMissingError
		if !errors.As(err, &strict) || len(kindProbs) > 0 {
			// The decoder stopped at its first error: find the others,
			// then decode what is left.
			more, bad := schemaProblems(ps)
			for _, p := range more {
				switch i := probs.indexOfLine(p.Pos.Line); {
				case i < 0:
					probs = append(probs, p)
				case i >= len(kindProbs):
					// The decoder's own message: this one names the
					// whole key, also inside an inline table.
					probs[i] = p
				}
			}
			var ok bool
			if cfg, ok = decodeWithout(data, bad); !ok {
				cfg = nil
			}
		}
		sortByLine(probs)
		quiet = quietLines(ps, probs)
	}
	if cfg != nil {
		for i := range cfg.Sites {
			cfg.Sites[i].Source = ps.at(fmt.Sprintf("site[%d]", i))
			for j := range cfg.Sites[i].Routes {
				cfg.Sites[i].Routes[j].Source = ps.at(fmt.Sprintf("site[%d].route[%d]", i, j))
			}
		}
	}
	return cfg, ps, probs, quiet
}

// maxConfigSize bounds one config file; a bigger one is surely a mistake
// (an include glob that matched a log file, /dev/zero).
const maxConfigSize = 8 << 20

// readConfig reads one config file. An included file must be a regular
// file: a glob must not block on a FIFO or read a device forever. The main
// file may be a pipe (`portico check -c <(generate)`).
func readConfig(path string, included bool) ([]byte, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	switch {
	case fi.IsDir():
		return nil, errors.New("is a folder")
	case included && !fi.Mode().IsRegular():
		return nil, errors.New("not a regular file")
	case fi.Mode()&(os.ModeDevice|os.ModeSocket) != 0:
		return nil, errors.New("not a regular file")
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxConfigSize+1))
	if err != nil {
		return nil, err
	}
	if len(data) > maxConfigSize {
		return nil, fmt.Errorf("larger than %dMB", maxConfigSize>>20)
	}
	return data, nil
}

func decodeProblems(path string, err error, ps *positions) Problems {
	var strict *toml.StrictMissingError
	if errors.As(err, &strict) {
		var out Problems
		for _, e := range strict.Errors {
			row, _ := e.Position()
			key := fullKey(ps, row, e.Key())
			msg := unknownKeyMsg(key)
			out = append(out, Problem{Position{path, row}, msg})
		}
		return out
	}
	var de *toml.DecodeError
	if errors.As(err, &de) {
		row, _ := de.Position()
		msg := friendlyMismatch(strings.TrimPrefix(de.Error(), "toml: "))
		if k := de.Key(); len(k) > 0 {
			msg = fmt.Sprintf("%s: %s", strings.Join(k, "."), msg)
		}
		return Problems{{Position{path, row}, msg}}
	}
	return Problems{{Position{File: path}, err.Error()}}
}

func unwrapPathError(err error) string {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err.Error()
	}
	return err.Error()
}

func isLogKeyword(s string) bool { return s == "off" || s == "stdout" || s == "stderr" }

func resolve(dir, p string) string {
	if p == "" || filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(dir, p)
}

// resolveSites makes every path in the sites absolute, relative to dir.
func resolveSites(sites []Site, dir string, ps *positions, _ int) {
	for i := range sites {
		s := &sites[i]
		if s.TLS != nil {
			s.TLS.Cert = resolve(dir, s.TLS.Cert)
			s.TLS.Key = resolve(dir, s.TLS.Key)
		}
		if s.BasicAuth != nil {
			s.BasicAuth.Htpasswd = resolve(dir, s.BasicAuth.Htpasswd)
		}
		for j := range s.Routes {
			r := &s.Routes[j]
			if r.BasicAuth != nil {
				r.BasicAuth.Htpasswd = resolve(dir, r.BasicAuth.Htpasswd)
			}
			if r.Static != nil {
				r.Static.Root = resolve(dir, r.Static.Root)
			}
			if r.CGI != nil {
				r.CGI.Root = resolve(dir, r.CGI.Root)
			}
			if r.WSGI != nil {
				if r.WSGI.Dir == "" {
					r.WSGI.Dir = dir
				} else {
					r.WSGI.Dir = resolve(dir, r.WSGI.Dir)
				}
			}
			if r.Proxy != nil {
				for k, u := range r.Proxy.Upstreams {
					r.Proxy.Upstreams[k] = resolveUpstream(dir, u)
				}
			}
			if r.FastCGI != nil {
				r.FastCGI.Root = resolve(dir, r.FastCGI.Root)
				r.FastCGI.Upstream = resolveUpstream(dir, r.FastCGI.Upstream)
			}
		}
	}
}
