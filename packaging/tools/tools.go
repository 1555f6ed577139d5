//go:build tools

// Package tools pins the packaging tools (nfpm) in their own module, so
// the server's go.mod carries none of their dependencies.
package tools

import _ "github.com/goreleaser/nfpm/v2/cmd/nfpm"
