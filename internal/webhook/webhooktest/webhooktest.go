// Package webhooktest is a webhook receiver for tests: a real HTTP server
// on this machine that keeps every delivery it gets.
package webhooktest

import (
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
)

// Receiver answers every delivery with 200 and a short body with markup
// in it (Answer), and keeps the bodies and headers it got, in order.
type Receiver struct {
	*httptest.Server
	mu      sync.Mutex
	bodies  [][]byte
	headers []http.Header
}

// Answer is the body the receiver answers with.
const Answer = "thanks <b>received</b>"

// NewReceiver starts a receiver, closed when the test ends.
func NewReceiver(t testing.TB) *Receiver {
	rc := &Receiver{}
	rc.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		rc.mu.Lock()
		rc.bodies, rc.headers = append(rc.bodies, body), append(rc.headers, r.Header.Clone())
		rc.mu.Unlock()
		io.WriteString(w, Answer)
	}))
	t.Cleanup(rc.Close)
	return rc
}

// All returns every delivery's body and headers, in the order they came.
func (rc *Receiver) All() ([][]byte, []http.Header) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([][]byte(nil), rc.bodies...), append([]http.Header(nil), rc.headers...)
}

// Last returns how many deliveries came, and the last one's body and
// headers (nil when none came).
func (rc *Receiver) Last() (int, []byte, http.Header) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if len(rc.bodies) == 0 {
		return 0, nil, nil
	}
	return len(rc.bodies), rc.bodies[len(rc.bodies)-1], rc.headers[len(rc.headers)-1]
}
