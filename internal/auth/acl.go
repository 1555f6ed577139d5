package auth

import (
	"fmt"
	"net/netip"

	"portico/internal/config"
	"portico/internal/layer"
)

// ACL is the allow/deny gate: a client address in deny, or (when allow
// is not empty) in none of allow, gets 403. The address is the one
// clientip decides (X-Forwarded-For only through trusted proxies).
type ACL struct {
	layer.NoHeaderEdits
	allow, deny []netip.Prefix
	opts        Options
}

var _ layer.Gate = (*ACL)(nil)

var forbidden = &layer.Answer{Status: 403, Body: "Forbidden: your address may not use this resource.\n"}

// NewACL builds the gate from allow and deny lists (addresses or CIDRs,
// validated by config); nil when both are empty.
func NewACL(allow, deny []string, opts Options) (*ACL, error) {
	if len(allow) == 0 && len(deny) == 0 {
		return nil, nil
	}
	opts.fill()
	a := &ACL{opts: opts}
	for _, list := range []struct {
		in  []string
		out *[]netip.Prefix
	}{{allow, &a.allow}, {deny, &a.deny}} {
		for _, s := range list.in {
			p, err := config.ParsePrefix(s)
			if err != nil {
				return nil, fmt.Errorf("allow/deny: %w", err)
			}
			*list.out = append(*list.out, p)
		}
	}
	return a, nil
}

// Check answers 403 to addresses the lists keep out. A request whose
// client address is unknown (a unix socket peer) passes only when there
// is no allow list.
func (a *ACL) Check(r layer.GateRequest) *layer.Answer {
	c := r.Client(a.opts.Clients)
	if a.permits(c) {
		return nil
	}
	a.opts.Counters.Denied.Add(1)
	return forbidden
}

func (a *ACL) permits(c netip.Addr) bool {
	if c.IsValid() {
		for _, p := range a.deny {
			if p.Contains(c) {
				return false
			}
		}
	}
	if len(a.allow) == 0 {
		return true
	}
	if !c.IsValid() {
		return false
	}
	for _, p := range a.allow {
		if p.Contains(c) {
			return true
		}
	}
	return false
}
