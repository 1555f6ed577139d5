package config

import (
	"errors"
	"fmt"
)

// CacheKey says which parts of a request make a cache's primary key
// (cache.key): the one reading of that list, used by Validate and by the
// cache itself.
type CacheKey struct{ Method, Scheme, Host, Path, Query bool }

// ParseCacheKey reads a cache key list: each part one of method, scheme,
// host, path, query, listed once, and path among them (without it one
// response would answer every URL).
func ParseCacheKey(parts []string) (CacheKey, error) {
	var k CacheKey
	if len(parts) == 0 {
		return k, errors.New("cache key: empty (unset: Cache.SetDefaults fills it)")
	}
	seen := map[string]bool{}
	for _, p := range parts {
		if seen[p] {
			return k, fmt.Errorf("cache key part %q is listed twice", p)
		}
		seen[p] = true
		switch p {
		case "method":
			k.Method = true
		case "scheme":
			k.Scheme = true
		case "host":
			k.Host = true
		case "path":
			k.Path = true
		case "query":
			k.Query = true
		default:
			return k, fmt.Errorf("cache key part %q: want method, scheme, host, path or query", p)
		}
	}
	if !k.Path {
		return k, errors.New(`cache key must include "path" (else one response would answer every URL)`)
	}
	return k, nil
}
