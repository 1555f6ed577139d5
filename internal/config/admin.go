package config

import (
	"net"
	"net/netip"
	"strings"
)

// minAdminToken is the shortest admin_token accepted.
const minAdminToken = 16

// checkAdmin refuses an admin address that anyone but this machine could
// reach, unless the file says so explicitly and sets a token: the admin
// endpoints reload the config and purge caches.
func checkAdmin(add func(*positions, string, string, ...any), ps *positions, srv Server) {
	if srv.AdminToken != "" && len(srv.AdminToken) < minAdminToken {
		add(ps, "server.admin_token", "admin_token must be at least %d characters", minAdminToken)
	}
	if hasCtl(srv.AdminToken) || strings.ContainsAny(srv.AdminToken, " \t") {
		add(ps, "server.admin_token", "admin_token must not hold spaces or control characters")
	}
	if srv.Admin == "" {
		if srv.AdminAllowRemote || srv.AdminToken != "" {
			add(ps, "server.admin", "admin_allow_remote and admin_token need an admin address")
		}
		return
	}
	host, _, err := net.SplitHostPort(srv.Admin)
	if err != nil {
		return // reported with the address
	}
	if adminLoopback(host) {
		return
	}
	switch {
	case !srv.AdminAllowRemote:
		add(ps, "server.admin", "admin %q is reachable from other machines: bind it to 127.0.0.1 or [::1], or set admin_allow_remote = true and an admin_token", srv.Admin)
	case srv.AdminToken == "":
		add(ps, "server.admin_allow_remote", "admin_allow_remote needs an admin_token (sent as Authorization: Bearer TOKEN)")
	}
}

// adminLoopback reports whether an admin host binds loopback only ("" and
// 0.0.0.0 bind every interface).
func adminLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	a, err := netip.ParseAddr(host)
	return err == nil && a.IsLoopback()
}
