package wsgi

import "portico/internal/status"

// Status reports the pool's workers by state, for the status page.
func (p *Pool) Status() status.WSGI {
	s := p.Stats()
	busy := s.Alive - s.Idle
	if busy < 0 {
		busy = 0
	}
	return status.WSGI{Workers: s.Workers, Alive: s.Alive, Idle: s.Idle, Busy: busy,
		Waiting: s.Waiting, Restarts: s.Restarts, Timeouts: s.Timeouts}
}
