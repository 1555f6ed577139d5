package wsgi

import (
	"fmt"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"syscall"
)

// credential resolves the user the workers run as (cfg.User, when portico
// runs as root): its uid, primary gid and supplementary groups.
func credential(name string) (*syscall.Credential, error) {
	u, err := user.Lookup(name)
	if err != nil {
		return nil, fmt.Errorf("user %q: %w", name, err)
	}
	uid, err := strconv.ParseUint(u.Uid, 10, 32)
	if err != nil {
		return nil, fmt.Errorf("user %q: uid %q: %w", name, u.Uid, err)
	}
	gid, err := strconv.ParseUint(u.Gid, 10, 32)
	if err != nil {
		return nil, fmt.Errorf("user %q: gid %q: %w", name, u.Gid, err)
	}
	c := &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), Groups: []uint32{}}
	if ids, err := u.GroupIds(); err == nil {
		for _, id := range ids {
			if g, err := strconv.ParseUint(id, 10, 32); err == nil && uint32(g) != c.Gid {
				c.Groups = append(c.Groups, uint32(g))
			}
		}
	}
	return c, nil
}

// unreachableBy returns the first folder from / down to dir that the user
// of cred may not enter (by its mode bits; ACLs are not read), or "". It
// names the culprit when a worker cannot start as that user.
func unreachableBy(dir string, cred *syscall.Credential) string {
	var chain []string
	for p := filepath.Clean(dir); ; p = filepath.Dir(p) {
		chain = append(chain, p)
		if p == "/" || p == "." {
			break
		}
	}
	for i := len(chain) - 1; i >= 0; i-- {
		var st syscall.Stat_t
		if syscall.Stat(chain[i], &st) != nil {
			continue
		}
		var bit uint32 = 0o001
		switch {
		case st.Uid == cred.Uid:
			bit = 0o100
		case st.Gid == cred.Gid || slices.Contains(cred.Groups, st.Gid):
			bit = 0o010
		}
		if uint32(st.Mode)&bit == 0 { // uint16 on some systems
			return chain[i]
		}
	}
	return ""
}
