package cache

import (
	"context"
	"fmt"
	"net/http"
	"strings"
)

// Bounds of the tags kept per response: an upstream cannot make one entry
// index itself under unbounded names.
const (
	maxTags   = 64
	maxTagLen = 256
)

// parseTags reads the upstream's tags from the tag field: comma- or
// space-separated (Cache-Tag uses commas, Surrogate-Key spaces), empty
// and duplicate names dropped, at most maxTags of at most maxTagLen bytes.
func parseTags(hdr http.Header, field string) []string {
	if field == "" {
		return nil
	}
	var tags []string
	for _, line := range hdr[field] {
		for _, t := range strings.FieldsFunc(line, func(r rune) bool { return r == ',' || r == ' ' || r == '\t' }) {
			if len(t) > maxTagLen || len(tags) >= maxTags || containsString(tags, t) {
				continue
			}
			tags = append(tags, t)
		}
	}
	return tags
}

func containsString(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// PurgeTag removes every entry the upstream tagged tag (tag_header). With
// a Redis store it reaches every instance sharing it. It returns how many
// entries were removed.
func (h *Handler) PurgeTag(ctx context.Context, tag string) (int, error) {
	if tag == "" || len(tag) > maxTagLen {
		return 0, fmt.Errorf("cache purge: tag must be 1 to %d bytes", maxTagLen)
	}
	h.inv.purge() // fetches in flight store nothing they got before the purge
	return h.store.PurgeTag(ctx, tag)
}
