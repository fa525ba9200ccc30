package store_test

import (
	"context"
	"testing"
	"time"

	"github.com/consentry/consentry/internal/store"
	"github.com/consentry/consentry/internal/store/storetest"
)

// TestFencedWriteStopsWhatHasNotBegun: a fenced write for a contact whose
// message a hand-over has not begun commits at once, though a message to
// another contact is being handed over, and that message then does not
// begin; a hand-over opened after a fenced commit reads it.
func TestFencedWriteStopsWhatHasNotBegun(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		ctx := context.Background()
		write := probe(t, db)
		ho := startHandOver(t, db, "anna", "bo")
		if !ho.Begin("anna") {
			t.Fatal("anna's message may not begin")
		}
		if err := write("bo", 1); err != nil { // while anna's message is in flight
			t.Fatal(err)
		}
		if ho.Begin("bo") {
			t.Fatal("bo's message began after a change for bo committed")
		}
		if ho.Begin("cleo") {
			t.Fatal("a message to a contact the hand-over did not read began")
		}
		ho.End("anna")
		if err := ho.Close(); err != nil {
			t.Fatal(err)
		}
		var n int
		next, err := db.StartHandOver(ctx, []string{"bo"}, func(q store.Querier) error {
			return q.QueryRowContext(ctx, `SELECT count(*) FROM fence_probe WHERE contact = 'bo'`).Scan(&n)
		})
		if err != nil {
			t.Fatal(err)
		}
		defer next.Close()
		if n != 1 || !next.Begin("bo") {
			t.Fatalf("a hand-over after the change read %d rows, or may not begin", n)
		}
		next.End("bo")
	})
}

// TestFencedWriteWaitsForItsContactsMessageOnly: a fenced write for a
// contact whose message is being handed over commits only once that
// message has ended, and waits outside the writer: meanwhile other writes
// commit, a fenced write for another contact among them.
func TestFencedWriteWaitsForItsContactsMessageOnly(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		ctx := context.Background()
		write := probe(t, db)
		ho := startHandOver(t, db, "anna", "bo")
		defer ho.Close()
		if !ho.Begin("anna") {
			t.Fatal("anna's message may not begin")
		}
		committed := make(chan error, 1)
		go func() { committed <- write("anna", 1) }()
		waitFor(t, func() bool { return store.HandOverWaits(db) == 1 })
		if err := write("bo", 2); err != nil {
			t.Fatal(err)
		}
		if err := db.Write(ctx, func(tx *store.Tx) error {
			_, err := tx.Exec(`INSERT INTO fence_probe (contact, n) VALUES ('cleo', 3)`)
			return err
		}); err != nil {
			t.Fatal(err)
		}
		select {
		case err := <-committed:
			t.Fatalf("the change for anna returned while her message was in flight: %v", err)
		default:
		}
		if n := probed(t, db, "anna"); n != 0 {
			t.Fatalf("the change for anna committed while her message was in flight: %d rows", n)
		}
		ho.End("anna")
		if err := <-committed; err != nil {
			t.Fatal(err)
		}
		if n := probed(t, db, "anna"); n != 1 {
			t.Fatalf("%d rows for anna once her message ended, want 1", n)
		}
	})
}

// TestFencedWriteWaitsForOtherInstances: on PostgreSQL, a fenced write
// made through one instance while another instance has a hand-over open
// commits once that hand-over is closed.
func TestFencedWriteWaitsForOtherInstances(t *testing.T) {
	first, second := storetest.OpenPostgresTwice(t)
	write := probe(t, first)
	ho := startHandOver(t, second, "anna")
	if !ho.Begin("anna") {
		t.Fatal("anna's message may not begin")
	}
	committed := make(chan error, 1)
	go func() { committed <- write("anna", 1) }()
	waitFor(t, func() bool {
		var waiting bool
		if err := first.Read.QueryRow(`SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND objsubid = 2 AND NOT granted
			AND classid::int4 = $1)`, store.HandOverClass(first)).Scan(&waiting); err != nil {
			t.Fatal(err)
		}
		return waiting
	})
	if n := probed(t, first, "anna"); n != 0 {
		t.Fatalf("the change committed while another instance handed anna's message over: %d rows", n)
	}
	ho.End("anna")
	if err := ho.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-committed; err != nil {
		t.Fatal(err)
	}
	if n := probed(t, first, "anna"); n != 1 {
		t.Fatalf("%d rows once the hand-over closed, want 1", n)
	}
}

// startHandOver opens a hand-over for contacts that reads nothing.
func startHandOver(t testing.TB, db *store.DB, contacts ...string) *store.HandOver {
	t.Helper()
	ho, err := db.StartHandOver(context.Background(), contacts, func(store.Querier) error { return nil })
	if err != nil {
		t.Fatal(err)
	}
	return ho
}

func probed(t testing.TB, db *store.DB, contact string) int {
	t.Helper()
	var n int
	if err := db.Read.QueryRow(`SELECT count(*) FROM fence_probe WHERE contact = $1`, contact).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// waitFor returns once cond holds, failing the test if that takes longer
// than a generous limit; it polls the condition, it does not time work.
func waitFor(t testing.TB, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached in 30s")
		}
		time.Sleep(time.Millisecond)
	}
}

// probe creates the table fence_probe and returns a function that inserts
// a row into it for a contact in a write fenced for that contact.
func probe(t testing.TB, db *store.DB) func(contact string, n int) error {
	t.Helper()
	ctx := context.Background()
	if err := db.Write(ctx, func(tx *store.Tx) error {
		_, err := tx.Exec(`CREATE TABLE fence_probe (contact text NOT NULL, n integer NOT NULL)`)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	return func(contact string, n int) error {
		return db.Write(ctx, func(tx *store.Tx) error {
			tx.Fence(contact)
			_, err := tx.Exec(`INSERT INTO fence_probe (contact, n) VALUES ($1, $2)`, contact, n)
			return err
		})
	}
}

// TestShortTransactionsRunWithoutJIT: on PostgreSQL, write transactions
// and a hand-over's read run with JIT compilation off, which would add
// its compile time to a statement the planner overestimates; other reads
// keep the server's setting.
func TestShortTransactionsRunWithoutJIT(t *testing.T) {
	db := storetest.OpenPostgres(t)
	ctx := context.Background()
	jit := func(q store.Querier) string {
		t.Helper()
		var v string
		if err := q.QueryRowContext(ctx, `SELECT current_setting('jit')`).Scan(&v); err != nil {
			t.Fatal(err)
		}
		return v
	}
	var inWrite, inFence string
	if err := db.Write(ctx, func(tx *store.Tx) error { inWrite = jit(tx); return nil }); err != nil {
		t.Fatal(err)
	}
	ho, err := db.StartHandOver(ctx, nil, func(q store.Querier) error { inFence = jit(q); return nil })
	if err != nil {
		t.Fatal(err)
	}
	ho.Close()
	var server string
	if err := db.Read.QueryRowContext(ctx, `SELECT reset_val FROM pg_settings WHERE name = 'jit'`).Scan(&server); err != nil {
		t.Fatal(err)
	}
	if inWrite != "off" || inFence != "off" {
		t.Errorf("jit in a write %q, in a hand-over's read %q; want off", inWrite, inFence)
	}
	if got := jit(db.Read); got != server {
		t.Errorf("jit outside them %q, want the server's %q", got, server)
	}
}
