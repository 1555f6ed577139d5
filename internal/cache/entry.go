package cache

import (
	"encoding/binary"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// entry is a stored response: plain data, independent of the connection it
// came from, served by copying its header slices and writing its body.
//
// Header is the header as served: hop-by-hop fields, Set-Cookie, Age and
// Cache-Status removed, Content-Length set to len(Body). Its value slices
// are clipped (len == cap) so a caller that appends to a served header
// never writes into the stored array.
//
// A "marker" entry (Status == 0) stands at the primary key of a response
// that has Vary: it names the request fields that select a variant and an
// ID; variants are stored at primary + "\x00" + ID + "\x00" + secondary.
type entry struct {
	Status       int
	Header       http.Header
	Body         []byte
	RequestTime  time.Time     // when the request that fetched it was sent
	ResponseTime time.Time     // when its response arrived
	InitialAge   time.Duration // corrected_initial_age, RFC 9111 section 4.2.3
	Expires      time.Time     // when the store may drop it
	URL          string        // scheme://host/path?query, for logs and purge
	VaryNames    []string      // canonical names from Vary (sorted)
	VaryKey      string        // variants: the secondary key they answer
	MarkerID     string        // markers: the ID in their variants' keys
	Tags         []string      // the upstream's tags (tag_header), for purge by tag

	// Derived by prepare from the fields above; never stored.
	lifetime       time.Duration
	noCache        bool // always revalidate
	mustRevalidate bool // no stale serving (must-revalidate, proxy-revalidate, s-maxage)
	statesMaxAge   bool // a valid max-age (and no invalid s-maxage): the lifetime needs no Date
	swr, sie       time.Duration
	etag, lastMod  string
	lastModTime    time.Time
	imsTime        time.Time // what If-Modified-Since is compared with (RFC 9111 4.3.2)
	hitHdr         atomic.Pointer[hitHeader]
}

// hitHeader caches the per-second header values of hits (Age and
// Cache-Status), so that a hit allocates nothing for them most of the time.
type hitHeader struct {
	sec         int64
	age, status []string
}

func (e *entry) isMarker() bool { return e.Status == 0 }

// heuristicStatus lists the status codes that are cacheable by default
// (RFC 9110 section 15.1), less 206 which portico never stores.
func heuristicStatus(code int) bool {
	switch code {
	case 200, 203, 204, 300, 301, 308, 404, 405, 410, 414, 501:
		return true
	}
	return false
}

// storableStatus lists the final statuses a cache may store at all: any
// but 206 (portico never stores partial content) and 304 (it updates a
// stored response, RFC 9111 section 4.3.4). A status not cacheable by
// default needs explicit freshness or public (section 3).
func storableStatus(code int) bool {
	return code >= 200 && code <= 999 && code != http.StatusPartialContent && code != http.StatusNotModified
}

// understoodStatus lists the statuses whose caching rules portico
// implements, for must-understand (RFC 9111 section 5.2.2.3): the final
// statuses RFC 9110 defines, less 206.
func understoodStatus(code int) bool {
	switch code {
	case 200, 201, 202, 203, 204, 205, 300, 301, 302, 303, 307, 308,
		400, 401, 402, 403, 404, 405, 406, 407, 408, 409, 410, 411, 412, 413, 414, 415, 416, 417, 421, 422, 426,
		500, 501, 502, 503, 504, 505:
		return true
	}
	return false
}

// heuristicAllowed reports whether a response may get heuristic freshness
// (RFC 9111 section 4.2.2): a status cacheable by default, or public.
func heuristicAllowed(code int, cc cacheControl) bool {
	return heuristicStatus(code) || cc.public
}

// maxHeuristic caps heuristic freshness (RFC 9111 section 4.2.2 allows any
// value; a day keeps a forgotten Last-Modified from pinning a page).
const maxHeuristic = 24 * time.Hour

// prepare derives the freshness data of an entry from its header. It runs
// once when an entry is stored or decoded, never per hit.
func (e *entry) prepare() {
	if e.isMarker() {
		return
	}
	cc := parseCacheControl(responseDirectives(e.Header))
	e.lifetime = freshnessLifetime(cc, e.Header, e.ResponseTime, heuristicAllowed(e.Status, cc))
	e.noCache = cc.noCache
	e.statesMaxAge = cc.maxAge >= 0 && !cc.maxAgeInvalid && !cc.sMaxAgeInvalid
	e.mustRevalidate = cc.mustRevalidate || cc.proxyRevalidate || cc.sMaxAge >= 0 || cc.sMaxAgeInvalid
	if cc.staleWhileReval > 0 {
		e.swr = time.Duration(cc.staleWhileReval) * time.Second
	}
	if cc.staleIfError > 0 {
		e.sie = time.Duration(cc.staleIfError) * time.Second
	}
	e.etag = e.Header.Get("Etag")
	e.lastMod = e.Header.Get("Last-Modified")
	if t, err := http.ParseTime(e.lastMod); err == nil {
		e.lastModTime = t
	}
	// RFC 9111 section 4.3.2: without Last-Modified, a cache evaluates
	// If-Modified-Since against the stored response's Date, else the time
	// it was received.
	e.imsTime = e.lastModTime
	if e.imsTime.IsZero() {
		e.imsTime = dateOf(e.Header, e.ResponseTime)
	}
}

// freshnessLifetime implements RFC 9111 section 4.2.1 for a shared cache:
// s-maxage, then max-age, then Expires - Date, then the heuristic of
// section 4.2.2 (10% of Date - Last-Modified, at most maxHeuristic) when
// heuristic (see heuristicAllowed). An invalid value means stale (0).
func freshnessLifetime(cc cacheControl, h http.Header, respTime time.Time, heuristic bool) time.Duration {
	if cc.sMaxAgeInvalid {
		return 0
	}
	if cc.sMaxAge >= 0 {
		return time.Duration(cc.sMaxAge) * time.Second
	}
	if cc.maxAgeInvalid {
		return 0
	}
	if cc.maxAge >= 0 {
		return time.Duration(cc.maxAge) * time.Second
	}
	date := dateOf(h, respTime)
	if exp, ok := h["Expires"]; ok {
		if len(exp) != 1 {
			return 0
		}
		t, ok := parseHTTPDate(exp[0])
		if !ok {
			return 0 // "Expires: 0" and friends: already expired
		}
		if d := t.Sub(date); d > 0 {
			return d
		}
		return 0
	}
	if !heuristic {
		return 0
	}
	return heuristicLifetime(h, date)
}

func heuristicLifetime(h http.Header, date time.Time) time.Duration {
	lm, err := http.ParseTime(h.Get("Last-Modified"))
	if err != nil || !lm.Before(date) {
		return 0
	}
	d := date.Sub(lm) / 10
	return min(d, maxHeuristic)
}

// hasExplicitFreshness reports whether the response states its freshness.
func hasExplicitFreshness(cc cacheControl, h http.Header) bool {
	return cc.sMaxAge >= 0 || cc.sMaxAgeInvalid || cc.maxAge >= 0 || cc.maxAgeInvalid || len(h["Expires"]) > 0
}

func dateOf(h http.Header, fallback time.Time) time.Time {
	if d := h["Date"]; len(d) == 1 {
		if t, err := http.ParseTime(d[0]); err == nil {
			return t
		}
	}
	return fallback
}

// initialAge computes corrected_initial_age (RFC 9111 section 4.2.3).
func initialAge(h http.Header, reqTime, respTime time.Time) time.Duration {
	var ageValue time.Duration
	if a := h["Age"]; len(a) > 0 {
		// A list ("7200, 0") counts by its first member (RFC 9111
		// section 5.1: a recipient uses the first value).
		first, _, _ := strings.Cut(a[0], ",")
		if n, ok := parseDelta(strings.TrimSpace(first)); ok {
			ageValue = time.Duration(n) * time.Second
		}
	}
	apparent := max(0, respTime.Sub(dateOf(h, respTime)))
	delay := max(0, respTime.Sub(reqTime))
	return max(apparent, ageValue+delay)
}

// age is current_age (RFC 9111 section 4.2.3).
func (e *entry) age(now time.Time) time.Duration {
	return e.InitialAge + max(0, now.Sub(e.ResponseTime))
}

// hasValidator reports whether the entry can be revalidated.
func (e *entry) hasValidator() bool { return e.etag != "" || e.lastMod != "" }

// size approximates the memory an entry holds, for max_size.
func (e *entry) size() int64 {
	n := int64(len(e.Body)) + int64(len(e.URL)+len(e.VaryKey)+len(e.MarkerID)) + 256
	for k, vs := range e.Header {
		n += int64(len(k)) + 16
		for _, v := range vs {
			n += int64(len(v)) + 16
		}
	}
	for _, v := range e.VaryNames {
		n += int64(len(v)) + 16
	}
	for _, v := range e.Tags {
		n += int64(len(v)) + 16
	}
	return n
}

// hitHeaders returns the Age and Cache-Status values for a hit now,
// rebuilt at most once per second per entry.
func (e *entry) hitHeaders(now time.Time) *hitHeader {
	sec := now.Unix()
	if hh := e.hitHdr.Load(); hh != nil && hh.sec == sec {
		return hh
	}
	age := e.age(now)
	ageSec := int64(age / time.Second)
	ttl := int64((e.lifetime - age) / time.Second)
	hh := &hitHeader{
		sec:    sec,
		age:    []string{strconv.FormatInt(ageSec, 10)},
		status: []string{cacheStatus{hit: true, ttl: ttl}.String()},
	}
	e.hitHdr.Store(hh)
	return hh
}

// Binary encoding of an entry (the Redis store's value):
//
//	"PC1" kind(byte) status(uvarint) reqTime respTime expires (varint unix ns)
//	initialAge(varint ns) URL VaryKey MarkerID (string) nVary(uvarint) names...
//	nHeader(uvarint) { name nValues values... } body
//
// where string = uvarint length + bytes.
const encMagic = "PC1"

var errBadEntry = errors.New("cache: malformed stored entry")

func (e *entry) encode() []byte {
	n := len(encMagic) + 64 + len(e.Body) + len(e.URL) + len(e.VaryKey) + len(e.MarkerID)
	for k, vs := range e.Header {
		n += len(k) + 4
		for _, v := range vs {
			n += len(v) + 4
		}
	}
	b := make([]byte, 0, n)
	b = append(b, encMagic...)
	b = binary.AppendUvarint(b, uint64(e.Status))
	b = binary.AppendVarint(b, e.RequestTime.UnixNano())
	b = binary.AppendVarint(b, e.ResponseTime.UnixNano())
	b = binary.AppendVarint(b, e.Expires.UnixNano())
	b = binary.AppendVarint(b, int64(e.InitialAge))
	b = appendString(b, e.URL)
	b = appendString(b, e.VaryKey)
	b = appendString(b, e.MarkerID)
	b = binary.AppendUvarint(b, uint64(len(e.VaryNames)))
	for _, v := range e.VaryNames {
		b = appendString(b, v)
	}
	b = binary.AppendUvarint(b, uint64(len(e.Header)))
	for k, vs := range e.Header {
		b = appendString(b, k)
		b = binary.AppendUvarint(b, uint64(len(vs)))
		for _, v := range vs {
			b = appendString(b, v)
		}
	}
	b = appendString(b, string(e.Body))
	// Tags last: an entry stored before tags existed decodes with none.
	if len(e.Tags) > 0 {
		b = binary.AppendUvarint(b, uint64(len(e.Tags)))
		for _, t := range e.Tags {
			b = appendString(b, t)
		}
	}
	return b
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

type decoder struct {
	b   []byte
	err bool
}

func (d *decoder) uvarint() uint64 {
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.err = true
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) varint() int64 {
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.err = true
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) bytes() []byte {
	n := d.uvarint()
	if d.err || n > uint64(len(d.b)) {
		d.err = true
		return nil
	}
	s := d.b[:n:n]
	d.b = d.b[n:]
	return s
}

func (d *decoder) string() string { return string(d.bytes()) }

// count reads a length that must fit in what is left (each item >= 1 byte).
func (d *decoder) count() int {
	n := d.uvarint()
	if d.err || n > uint64(len(d.b)) {
		d.err = true
		return 0
	}
	return int(n)
}

func decodeEntry(b []byte) (*entry, error) {
	if len(b) < len(encMagic) || string(b[:len(encMagic)]) != encMagic {
		return nil, errBadEntry
	}
	d := &decoder{b: b[len(encMagic):]}
	e := &entry{}
	st := d.uvarint()
	if st > 999 {
		return nil, errBadEntry
	}
	e.Status = int(st)
	e.RequestTime = time.Unix(0, d.varint())
	e.ResponseTime = time.Unix(0, d.varint())
	e.Expires = time.Unix(0, d.varint())
	e.InitialAge = time.Duration(d.varint())
	e.URL = d.string()
	e.VaryKey = d.string()
	e.MarkerID = d.string()
	if nv := d.count(); nv > 0 {
		e.VaryNames = make([]string, nv)
		for i := range e.VaryNames {
			e.VaryNames[i] = d.string()
		}
	}
	nh := d.count()
	e.Header = make(http.Header, nh)
	for i := 0; i < nh && !d.err; i++ {
		k := d.string()
		nvals := d.count()
		vs := make([]string, nvals)
		for j := range vs {
			vs[j] = d.string()
		}
		e.Header[k] = vs
	}
	body := d.bytes()
	if len(d.b) > 0 && !d.err {
		nt := d.count()
		if nt == 0 {
			d.err = true // encode writes tags only when there are some
		}
		e.Tags = make([]string, nt)
		for i := range e.Tags {
			e.Tags[i] = d.string()
		}
	}
	if d.err || len(d.b) != 0 {
		return nil, errBadEntry
	}
	e.Body = append([]byte(nil), body...)
	e.prepare()
	return e, nil
}
