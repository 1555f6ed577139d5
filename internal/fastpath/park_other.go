//go:build !linux

package fastpath

import "errors"

// Parking idle connections (park.go) needs epoll: elsewhere an idle
// connection keeps its goroutine.

type parker struct{}

var errParked = errors.New("fastpath: connection parked")

func newParker(*Listener) *parker      { return nil }
func (c *conn) mayPark() int64         { return 0 }
func (c *conn) parkAtOnce(int64) bool  { return false }
func (c *conn) park(bool) bool         { return false }
func (p *parker) takeAll() []*link     { return nil }
func (p *parker) stop()                {}
func (p *parker) closeParked(lk *link) { lk.nc.Close() }
func (l *Listener) resume(*conn)       {} // nothing parks, nothing resumes
