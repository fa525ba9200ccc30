package store

import "sync"

// signals lets writers wake in-process workers after a commit, so that work
// enqueued in a transaction starts at once instead of at the next poll.
// Wake-ups are coalesced: a worker that is busy sees one, not one per write.
// Other instances on the same database find the work by polling.
type signals struct {
	mu sync.Mutex
	ch map[string]chan struct{}
}

func (s *signals) get(topic string) chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ch == nil {
		s.ch = map[string]chan struct{}{}
	}
	c := s.ch[topic]
	if c == nil {
		c = make(chan struct{}, 1)
		s.ch[topic] = c
	}
	return c
}

// Wake signals the workers waiting on topic.
func (db *DB) Wake(topic string) {
	select {
	case db.signals.get(topic) <- struct{}{}:
	default: // a wake-up is already pending
	}
}

// Wakes returns the channel on which topic's wake-ups arrive.
func (db *DB) Wakes(topic string) <-chan struct{} { return db.signals.get(topic) }

// WakeAfterCommit wakes topic once tx has committed.
func (t *Tx) WakeAfterCommit(topic string) { t.AfterCommit(func() { t.db.Wake(topic) }) }
