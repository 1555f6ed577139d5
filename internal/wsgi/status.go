package wsgi

import "portico/internal/status"

// Stats is a snapshot of a pool, for metrics and the status page.
type Stats struct {
	Workers  int    // configured worker count
	Alive    int    // worker processes running now (all states)
	Starting int    // of those, importing the app (a warming replacement)
	Idle     int    // waiting for a request
	Busy     int    // serving a request
	Retiring int    // replaced: finishing their request, then leaving
	Waiting  int    // requests waiting for an idle worker (the queue)
	Restarts uint64 // processes started to replace another
	Timeouts uint64 // requests cut off by the timeout (worker killed)
	// Recycles counts replaced processes by cause: "max_requests",
	// "max_memory", "died", "frozen".
	Recycles map[string]uint64
}

// Stats reports the pool's current state.
func (p *Pool) Stats() Stats {
	s := Stats{
		Workers:  p.cfg.Workers,
		Waiting:  int(p.waiting.Load()),
		Restarts: p.restarts.Load(),
		Timeouts: p.timeouts.Load(),
		Recycles: make(map[string]uint64, len(recycleCauses)),
	}
	for i, c := range recycleCauses {
		s.Recycles[c] = p.recycles[i].Load()
	}
	serving := 0
	p.mu.Lock()
	for pr := range p.procs {
		if !pr.alive() {
			continue
		}
		s.Alive++
		switch pr.state.Load() {
		case stateStarting:
			s.Starting++
		case stateRetiring:
			s.Retiring++
		default:
			serving++
		}
	}
	p.mu.Unlock()
	s.Idle = min(len(p.idle), serving)
	s.Busy = serving - s.Idle
	return s
}

// Status reports the pool's workers by state, for the status page.
func (p *Pool) Status() status.WSGI {
	s := p.Stats()
	return status.WSGI{Workers: s.Workers, Alive: s.Alive, Idle: s.Idle, Busy: s.Busy,
		Starting: s.Starting, Retiring: s.Retiring, Waiting: s.Waiting,
		Restarts: s.Restarts, Timeouts: s.Timeouts, Recycles: s.Recycles}
}
