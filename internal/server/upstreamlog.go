package server

import "portico/internal/accessinfo"

// appendUpstreamCLF appends, after the combined fields (and request_id),
// what a cache or proxy reported, as nginx's
// "$upstream_cache_status" "$upstream_addr" "$upstream_response_time"
// ("-" for each one unknown). Requests no cache or proxy handled keep the
// plain combined line.
func appendUpstreamCLF(b []byte, up *accessinfo.Record) []byte {
	if up == nil || !up.Reported() {
		return b
	}
	b = append(b, ` "`...)
	b = appendCLFOrDash(b, up.CacheStatus())
	b = append(b, `" "`...)
	b = appendCLFOrDash(b, string(up.UpstreamAddrs()))
	b = append(b, `" "`...)
	b = appendCLFOrDash(b, string(up.UpstreamTimes()))
	return append(b, '"')
}

// appendUpstreamJSON appends the same as JSON fields, each only when known.
func appendUpstreamJSON(b []byte, up *accessinfo.Record) []byte {
	if up == nil {
		return b
	}
	if s := up.CacheStatus(); s != "" {
		b = append(b, `,"cache_status":`...)
		b = appendJSONString(b, s)
	}
	if a := up.UpstreamAddrs(); len(a) > 0 {
		b = append(b, `,"upstream_addr":`...)
		b = appendJSONString(b, string(a))
		b = append(b, `,"upstream_response_time":`...)
		b = appendJSONString(b, string(up.UpstreamTimes()))
	}
	return b
}
