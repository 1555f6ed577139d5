package cgi

import (
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
)

// unreachableBy returns the first folder from / to dir that the user of
// cred may not enter (by its mode bits; ACLs are not read), or "".
func unreachableBy(dir string, cred *syscall.Credential) string {
	for p := dir; ; p = filepath.Dir(p) {
		var st syscall.Stat_t
		if syscall.Stat(p, &st) == nil {
			var bit uint32 = 0o001
			switch {
			case st.Uid == cred.Uid:
				bit = 0o100
			case st.Gid == cred.Gid:
				bit = 0o010
			}
			if uint32(st.Mode)&bit == 0 { // uint16 on some systems
				return p
			}
		}
		if p == "/" || p == "." {
			return ""
		}
	}
}

var closeInheritedOnce sync.Once

// closeInheritedOnExec marks every descriptor above stderr close-on-exec.
// Go opens all its files that way, but descriptors portico inherited from
// whatever started it (a shell's pipe, a supervisor's socket) are not, and
// every script would inherit them in turn. Done once, the first time a CGI
// handler is built; explicit passing (exec.Cmd.ExtraFiles) is unaffected.
func closeInheritedOnExec() {
	d, err := os.Open("/proc/self/fd")
	if err != nil {
		return
	}
	names, _ := d.Readdirnames(-1)
	self := int(d.Fd())
	for _, name := range names {
		fd, err := strconv.Atoi(name)
		if err == nil && fd > 2 && fd != self {
			syscall.CloseOnExec(fd)
		}
	}
	d.Close()
}

// credential returns the uid/gid scripts run as, or nil for root.
func credential(name string) (*syscall.Credential, error) {
	u, err := user.Lookup(name)
	if err != nil {
		if _, nerr := strconv.Atoi(name); nerr == nil {
			u, err = user.LookupId(name)
		}
		if err != nil {
			return nil, fmt.Errorf("cgi user %q: %w", name, err)
		}
	}
	uid, err1 := strconv.ParseUint(u.Uid, 10, 32)
	gid, err2 := strconv.ParseUint(u.Gid, 10, 32)
	if err1 != nil || err2 != nil {
		return nil, fmt.Errorf("cgi user %q: non-numeric uid/gid", name)
	}
	if uid == 0 {
		return nil, nil
	}
	// Groups set explicitly: root's supplementary groups are dropped.
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), Groups: []uint32{uint32(gid)}}, nil
}

// lookPath finds prog in path (the scripts' PATH, not portico's).
func lookPath(prog, path string) (string, error) {
	if strings.Contains(prog, "/") {
		abs, err := filepath.Abs(prog)
		if err != nil {
			return "", err
		}
		if fi, err := os.Stat(abs); err != nil || !fi.Mode().IsRegular() || fi.Mode()&0o111 == 0 {
			return "", fmt.Errorf("%s is not an executable file", abs)
		}
		return abs, nil
	}
	for dir := range strings.SplitSeq(path, ":") {
		if dir == "" || !filepath.IsAbs(dir) {
			continue
		}
		f := filepath.Join(dir, prog)
		if fi, err := os.Stat(f); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			return f, nil
		}
	}
	return "", fmt.Errorf("not found in PATH %s", path)
}
