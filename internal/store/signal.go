package store

import "sync"

// signals lets writers wake in-process workers after a commit, so that work
// enqueued in a transaction starts at once instead of at the next poll.
// Wake-ups are coalesced: a worker that is busy sees one, not one per write.
// Other instances on the same database find the work by polling.
type signals struct {
	mu   sync.Mutex
	ch   map[string]chan struct{}
	subs map[string][]chan struct{}
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

// Wake signals the workers waiting on topic: the one that reads Wakes, and
// every one that subscribed.
func (db *DB) Wake(topic string) {
	notify(db.signals.get(topic))
	db.signals.mu.Lock()
	subs := db.signals.subs[topic]
	db.signals.mu.Unlock()
	for _, c := range subs {
		notify(c)
	}
}

func notify(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default: // a wake-up is already pending
	}
}

// Wakes returns the channel on which topic's wake-ups arrive: one channel
// per topic, for a topic that one worker waits on (each wake-up reaches
// one reader).
func (db *DB) Wakes(topic string) <-chan struct{} { return db.signals.get(topic) }

// Subscribe returns a channel of its own on which every wake-up of topic
// arrives, for a topic that several workers wait on (every consumer of
// events). Each call adds a subscriber for the life of the DB: call it
// once per worker.
func (db *DB) Subscribe(topic string) <-chan struct{} {
	c := make(chan struct{}, 1)
	db.signals.mu.Lock()
	defer db.signals.mu.Unlock()
	if db.signals.subs == nil {
		db.signals.subs = map[string][]chan struct{}{}
	}
	db.signals.subs[topic] = append(db.signals.subs[topic], c)
	return c
}

// WakeAfterCommit wakes topic once tx has committed.
func (t *Tx) WakeAfterCommit(topic string) { t.AfterCommit(func() { t.db.Wake(topic) }) }
