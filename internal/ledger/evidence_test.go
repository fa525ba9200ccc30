package ledger_test

import (
	"context"
	"database/sql"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/consentry/consentry/internal/consent"
	"github.com/consentry/consentry/internal/contactstate"
	"github.com/consentry/consentry/internal/ledger"
	"github.com/consentry/consentry/internal/store"
	"github.com/consentry/consentry/internal/store/storetest"
)

// TestEvidenceEncodingIsStable pins the evidence commitment and the hash of
// an event that carries one, as docs/ledger.md describes them, so that
// neither changes by accident.
func TestEvidenceEncodingIsStable(t *testing.T) {
	key := make([]byte, 32)
	for i := range key {
		key[i] = byte(i)
	}
	e := &ledger.Event{Seq: 7, RecordedAt: time.Date(2026, 5, 25, 12, 0, 0, 123456000, time.UTC).UnixMicro(), Kind: ledger.KindConsent,
		ContactRef: "0123456789abcdef0123456789abcdef", PurposeID: "p1", Value: "granted", LegalBasis: "consent",
		SourceID: "s1", TextVersion: 2, ExpiresAt: 1800000000000000, ActorKind: "contact", ActorID: "", Method: "webform", RecordID: "r1",
		Details: &ledger.Details{IP: "192.0.2.1", UserAgent: "Mozilla/5.0", TokenID: "t1", TextLanguage: "sv"}}
	const wantEvidence = "fdd0f1e867d60bf8584bf85d72da3b3b96eb5f6e754afc12c8312a81fe968ae3"
	if got := ledger.CommitEvidence(key, e); got != wantEvidence {
		t.Fatalf("commitment of the reference evidence changed: got %s, want %s", got, wantEvidence)
	}
	e.Evidence = wantEvidence
	const wantHash = "b4f2082a0323fa26491cec6657c07059682c5bda82433ee6bb2734d129216f1a"
	got, err := ledger.ComputeHash(ledger.GenesisHash, e)
	if err != nil {
		t.Fatal(err)
	}
	if got != wantHash {
		t.Fatalf("hash of the reference event with evidence changed: got %s, want %s", got, wantHash)
	}
	// Each field of the evidence counts, and so does the key.
	for name, change := range map[string]func(e *ledger.Event){
		"ip": func(e *ledger.Event) { e.Details.IP = "192.0.2.2" }, "user agent": func(e *ledger.Event) { e.Details.UserAgent = "" },
		"token": func(e *ledger.Event) { e.Details.TokenID = "t2" }, "language": func(e *ledger.Event) { e.Details.TextLanguage = "en" },
		"method": func(e *ledger.Event) { e.Method = "api" }, "text version": func(e *ledger.Event) { e.TextVersion = 1 },
		"actor kind": func(e *ledger.Event) { e.ActorKind = "user" }, "actor id": func(e *ledger.Event) { e.ActorID = "u1" },
		"record": func(e *ledger.Event) { e.RecordID = "r2" }, "kind": func(e *ledger.Event) { e.Kind = ledger.KindOptIn },
	} {
		c := *e
		d := *e.Details
		c.Details = &d
		change(&c)
		if ledger.CommitEvidence(key, &c) == wantEvidence {
			t.Errorf("changing the %s left the commitment as it was", name)
		}
	}
	if ledger.CommitEvidence(make([]byte, 32), e) == wantEvidence {
		t.Error("another key gave the same commitment")
	}
	// Without its commitment, the event hashes as a v1 event would.
	e.Evidence = ""
	if v1, _ := ledger.ComputeHash(ledger.GenesisHash, e); v1 == wantHash {
		t.Fatal("blanking the commitment left the hash as it was")
	}
}

// TestLedgerHoldsNoEvidenceInClear: no column of any event holds the IP
// address or user agent of the evidence, while every consent and opt-in
// event commits to it.
func TestLedgerHoldsNoEvidenceInClear(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		setUp(t, db)
		rows, err := db.Read.Query(`SELECT * FROM ledger_events`)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		cols, _ := rows.Columns()
		n := 0
		for rows.Next() {
			vals := make([]sql.NullString, len(cols))
			ptrs := make([]any, len(cols))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			if err := rows.Scan(ptrs...); err != nil {
				t.Fatal(err)
			}
			n++
			for i, v := range vals {
				for _, secret := range []string{"192.0.2.7", "192.0.2.8", fixtureUA, "Mozilla"} {
					if strings.Contains(v.String, secret) {
						t.Fatalf("ledger column %s holds %q: %q", cols[i], secret, v.String)
					}
				}
				if cols[i] == "evidence" && len(v.String) != 64 {
					t.Fatalf("event %d has no evidence commitment: %q", n, v.String)
				}
			}
		}
		if err := rows.Err(); err != nil || n != 6 {
			t.Fatalf("read %d events: %v", n, err)
		}
	})
}

// rewriteWithoutEvidence turns the ledger into one written before events
// committed to evidence: no commitments, every hash recomputed the old way.
func rewriteWithoutEvidence(t testing.TB, db *store.DB) {
	rewriteEvidence(t, db, func(int64) bool { return true })
}

// rewriteEvidence drops the evidence commitment of the events drop picks
// and chains every event anew, as someone rewriting the ledger would.
func rewriteEvidence(t testing.TB, db *store.DB, drop func(seq int64) bool) {
	t.Helper()
	err := db.Write(context.Background(), func(tx *store.Tx) error {
		events, err := store.QueryAll(context.Background(), tx, func(row store.Scanner) (ledger.Event, error) {
			var e ledger.Event
			err := row.Scan(&e.Seq, &e.RecordedAt, &e.Kind, &e.ContactRef, &e.PurposeID, &e.Value, &e.LegalBasis, &e.SourceID,
				&e.TextVersion, &e.ExpiresAt, &e.ActorKind, &e.ActorID, &e.Method, &e.RecordID, &e.Evidence)
			return e, err
		}, `SELECT seq, recorded_at, kind, contact_ref, purpose_id, value, legal_basis, source_id, text_version, expires_at,
			actor_kind, actor_id, method, record_id, evidence FROM ledger_events ORDER BY seq`)
		if err != nil {
			return err
		}
		prev := ledger.GenesisHash
		for _, e := range events {
			if drop(e.Seq) {
				e.Evidence = ""
			}
			h, err := ledger.ComputeHash(prev, &e)
			if err != nil {
				return err
			}
			if _, err := tx.Exec(`UPDATE ledger_events SET evidence = $2, prev_hash = $3, hash = $4 WHERE seq = $1`, e.Seq, e.Evidence, prev, h); err != nil {
				return err
			}
			prev = h
		}
		_, err = tx.Exec(`UPDATE ledger_head SET hash = $1`, prev)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestNoDowngradeToEventsWithoutEvidence: an event without a commitment
// after one with a commitment is found, even when the chain was rewritten
// around it, so evidence cannot be freed from the ledger by turning its
// events back into the old format.
func TestNoDowngradeToEventsWithoutEvidence(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		f := setUp(t, db)
		rewriteEvidence(t, db, func(seq int64) bool { return seq == 4 })
		if rep := f.verify(t); rep.OK || rep.Problem.Code != ledger.ProblemEvidence || rep.Problem.Seq != 4 {
			t.Fatalf("event 4 turned old-format: %+v %+v", rep, rep.Problem)
		}
	})
}

// TestEventsWithoutEvidenceStillVerify: a ledger written before events
// committed to evidence verifies as it did, new events with commitments
// extend it, and its old rows are still checked against what their events
// hold in clear.
func TestEventsWithoutEvidenceStillVerify(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		f := setUp(t, db)
		rewriteWithoutEvidence(t, db)
		if rep := f.verify(t); !rep.OK || rep.Events != 6 {
			t.Fatalf("a ledger without commitments: %+v %+v", rep, rep.Problem)
		}
		if _, err := f.consent.Record(context.Background(), f.ids[1], consent.RecordInput{Purpose: "E-marketing", State: consent.StateGranted,
			Source: "API", Actor: actor, Evidence: consent.Evidence{Method: consent.MethodAPI, IP: "192.0.2.9"}}); err != nil {
			t.Fatal(err)
		}
		if rep := f.verify(t); !rep.OK || rep.Events != 7 {
			t.Fatalf("old events followed by one with a commitment: %+v %+v", rep, rep.Problem)
		}
		var evidence string
		db.Read.QueryRow(`SELECT evidence FROM ledger_events WHERE seq = 7`).Scan(&evidence)
		if len(evidence) != 64 {
			t.Fatalf("the new event's commitment is %q", evidence)
		}
		exec := tamperer(t, db)
		exec(`UPDATE consent_records SET method = 'import' WHERE ledger_seq = 3`)
		if rep := f.verify(t); rep.OK || rep.Problem.Code != ledger.ProblemRowMismatch || rep.Problem.Seq != 3 {
			t.Fatalf("an old row's method changed: %+v %+v", rep, rep.Problem)
		}
		exec(`UPDATE consent_records SET method = 'api' WHERE ledger_seq = 3`)
		exec(`UPDATE consent_records SET ip = '' WHERE ledger_seq = 7`)
		if rep := f.verify(t); rep.OK || rep.Problem.Code != ledger.ProblemEvidence || rep.Problem.Seq != 7 {
			t.Fatalf("the new row's IP address blanked: %+v %+v", rep, rep.Problem)
		}
	})
}

// appendErasure records, as erasing a contact's evidence will, that the
// contact's evidence so far was erased.
func appendErasure(t testing.TB, db *store.DB, contactID string) {
	t.Helper()
	err := db.Write(context.Background(), func(tx *store.Tx) error {
		var ref string
		if err := tx.QueryRow(`SELECT ref FROM contacts WHERE id = $1`, contactID).Scan(&ref); err != nil {
			return err
		}
		_, err := ledger.Append(tx, &ledger.Event{RecordedAt: time.Now().UnixMicro(), Kind: ledger.KindEvidenceErased, ContactRef: ref,
			ActorKind: consent.ActorSystem})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestErasedEvidenceVerifies: after an evidence_erased event for a contact,
// that contact's earlier rows verify with their IP address and user agent
// blanked; another contact's, or a later row's, do not.
func TestErasedEvidenceVerifies(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		f := setUp(t, db)
		exec := tamperer(t, db)
		appendErasure(t, db, f.ids[0])
		exec(`UPDATE consent_records SET ip = '', user_agent = '' WHERE contact_id = $1`, f.ids[0])
		exec(`UPDATE opt_in_changes SET ip = '', user_agent = '' WHERE contact_id = $1`, f.ids[0])
		if rep := f.verify(t); !rep.OK || rep.Events != 7 {
			t.Fatalf("erased evidence: %+v %+v", rep, rep.Problem)
		}
		// What the event holds in clear is still checked.
		exec(`UPDATE consent_records SET method = 'import' WHERE contact_id = $1`, f.ids[0])
		if rep := f.verify(t); rep.OK || rep.Problem.Code != ledger.ProblemRowMismatch || rep.Problem.Seq != 1 {
			t.Fatalf("an erased row's method changed: %+v %+v", rep, rep.Problem)
		}
		exec(`UPDATE consent_records SET method = 'api' WHERE contact_id = $1`, f.ids[0])
		// Another contact's evidence was not erased.
		exec(`UPDATE consent_records SET ip = '', user_agent = '' WHERE ledger_seq = 3`)
		if rep := f.verify(t); rep.OK || rep.Problem.Code != ledger.ProblemEvidence || rep.Problem.Seq != 3 {
			t.Fatalf("another contact's evidence blanked: %+v %+v", rep, rep.Problem)
		}
	})
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		// A row written after the erasure is covered again.
		f := setUp(t, db)
		appendErasure(t, db, f.ids[0])
		if _, err := f.consent.Record(context.Background(), f.ids[0], consent.RecordInput{Purpose: "E-marketing", State: consent.StateWithdrawn,
			Source: "API", Actor: actor, Evidence: consent.Evidence{Method: consent.MethodAPI, IP: "192.0.2.10", UserAgent: fixtureUA}}); err != nil {
			t.Fatal(err)
		}
		tamperer(t, db)(`UPDATE consent_records SET ip = '', user_agent = '' WHERE ledger_seq = 8`)
		if rep := f.verify(t); rep.OK || rep.Problem.Code != ledger.ProblemEvidence || rep.Problem.Seq != 8 {
			t.Fatalf("a row after the erasure blanked: %+v %+v", rep, rep.Problem)
		}
	})
}

// TestEvidenceKeyOfARolledBackWriteIsNeverUsed: the first write to need the
// evidence key creates it; when that write fails, the key goes with it, and
// the next write makes, stores and keeps another.
func TestEvidenceKeyOfARolledBackWriteIsNeverUsed(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		failed := errors.New("fail after appending")
		err := db.Write(context.Background(), func(tx *store.Tx) error {
			if _, err := ledger.Append(tx, &ledger.Event{RecordedAt: time.Now().UnixMicro(), Kind: ledger.KindOptIn, ContactRef: "x",
				Value: contactstate.OptOutUser, Details: &ledger.Details{IP: "192.0.2.1"}}); err != nil {
				return err
			}
			return failed
		})
		if !errors.Is(err, failed) {
			t.Fatalf("the failing write returned %v", err)
		}
		f := setUp(t, db)
		if rep := f.verify(t); !rep.OK || rep.Events != 6 {
			t.Fatalf("after a rolled-back first use of the key: %+v %+v", rep, rep.Problem)
		}
		var keys int
		if err := db.Read.QueryRow(`SELECT count(*) FROM ledger_keys`).Scan(&keys); err != nil || keys != 1 {
			t.Fatalf("%d evidence keys stored (%v)", keys, err)
		}
	})
}
