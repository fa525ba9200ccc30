package ledger_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/consentry/consentry/internal/consent"
	"github.com/consentry/consentry/internal/contact"
	"github.com/consentry/consentry/internal/contactstate"
	"github.com/consentry/consentry/internal/ledger"
	"github.com/consentry/consentry/internal/store"
	"github.com/consentry/consentry/internal/store/storetest"
)

// TestHashEncodingIsStable pins the canonical encoding: a change to it would
// make every existing ledger fail verification.
func TestHashEncodingIsStable(t *testing.T) {
	e := &ledger.Event{Seq: 7, RecordedAt: time.Date(2026, 5, 25, 12, 0, 0, 123456000, time.UTC).UnixMicro(), Kind: ledger.KindConsent,
		ContactRef: "0123456789abcdef0123456789abcdef", PurposeID: "p1", Value: "granted", LegalBasis: "consent",
		SourceID: "s1", TextVersion: 2, ExpiresAt: 1800000000000000, ActorKind: "api_token", ActorID: "t1", Method: "api", RecordID: "r1"}
	got, err := ledger.ComputeHash(ledger.GenesisHash, e)
	if err != nil {
		t.Fatal(err)
	}
	const want = "2d562ffe9185ff52ecdeb3ba6aa7bda41ead054e22d988a0c9eacbb43c067188"
	if got != want {
		t.Fatalf("hash of the reference event changed: got %s, want %s", got, want)
	}
	e.SourceID = "s2"
	if other, _ := ledger.ComputeHash(ledger.GenesisHash, e); other == got {
		t.Fatal("changing a field did not change the hash")
	}
	if _, err := ledger.ComputeHash("zz", e); err == nil {
		t.Fatal("a malformed previous hash was accepted")
	}
}

// TestEventJSONShowsWhatIsHashed: an event's JSON (as a receipt carries
// it) shows recorded_at as the integer of microseconds its hash covers,
// and reads back to the same event; the RFC 3339 text that receipts
// signed before carried reads back to the same microsecond, so that they
// still check.
func TestEventJSONShowsWhatIsHashed(t *testing.T) {
	e := &ledger.Event{Seq: 7, RecordedAt: time.Date(2026, 5, 25, 12, 0, 0, 123456000, time.UTC).UnixMicro(), Kind: ledger.KindConsent,
		ContactRef: "0123456789abcdef0123456789abcdef", PurposeID: "p1", Value: "granted", LegalBasis: "consent",
		SourceID: "s1", TextVersion: 2, ExpiresAt: 1800000000000000, ActorKind: "api_token", ActorID: "t1", Method: "api", RecordID: "r1"}
	const want = "2d562ffe9185ff52ecdeb3ba6aa7bda41ead054e22d988a0c9eacbb43c067188" // TestHashEncodingIsStable's
	b, err := json.Marshal(e)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), `"recorded_at":1779710400123456,`) {
		t.Fatalf("recorded_at is not shown as the microseconds hashed: %s", b)
	}
	for _, doc := range []string{string(b), strings.Replace(string(b), `1779710400123456`, `"2026-05-25T12:00:00.123456Z"`, 1),
		strings.Replace(string(b), `1779710400123456`, `"2026-05-25T14:00:00.123456+02:00"`, 1)} {
		var back ledger.Event
		if err := json.Unmarshal([]byte(doc), &back); err != nil {
			t.Fatalf("%s: %v", doc, err)
		}
		again, _ := json.Marshal(&back)
		if h, err := ledger.ComputeHash(ledger.GenesisHash, &back); err != nil || h != want || string(again) != string(b) {
			t.Errorf("%s reads back as %+v, hashing to %s (%v)", doc, back, h, err)
		}
	}
	var bad ledger.Event
	if err := json.Unmarshal([]byte(`{"recorded_at":"yesterday"}`), &bad); err == nil {
		t.Error("a recorded_at that is no time was read")
	}
}

type fixture struct {
	db       *store.DB
	consent  *consent.Service
	contacts *contact.Service
	ids      []string
}

var actor = consent.Actor{Kind: consent.ActorAPIToken, ID: "tok"}

// fixtureUA is the user agent of the fixture's evidence.
const fixtureUA = "Mozilla/5.0 (fixture)"

// setUp makes three contacts and six ledger events:
// 1 granted(c0) 2 opt-out(c0) 3 granted(c1) 4 withdrawn(c1) 5 granted(c2) 6 granted(c2, sales)
func setUp(t testing.TB, db *store.DB) *fixture {
	ctx := context.Background()
	f := &fixture{db: db, consent: consent.NewService(db)}
	f.contacts = contact.NewService(db, f.consent)
	for _, email := range []string{"a@example.com", "b@example.com", "c@example.com"} {
		c, err := f.contacts.Create(ctx, contact.NewContact{Input: contact.Input{Email: &email}, Actor: actor,
			Evidence: consent.Evidence{Method: consent.MethodAPI}})
		if err != nil {
			t.Fatal(err)
		}
		f.ids = append(f.ids, c.ID)
	}
	rec := func(i int, purpose, state string) {
		t.Helper()
		if _, err := f.consent.Record(ctx, f.ids[i], consent.RecordInput{Purpose: purpose, State: state, Source: "API",
			TextLanguage: "en", Actor: actor, Evidence: consent.Evidence{Method: consent.MethodAPI, IP: "192.0.2.7", UserAgent: fixtureUA}}); err != nil {
			t.Fatal(err)
		}
	}
	rec(0, "E-marketing", consent.StateGranted)
	if _, err := f.consent.SetOptIn(ctx, f.ids[0], consent.OptInInput{Status: contactstate.OptOutUser, Channel: consent.ChannelUser,
		Actor: actor, Evidence: consent.Evidence{Method: consent.MethodAPI, IP: "192.0.2.8", UserAgent: fixtureUA}}); err != nil {
		t.Fatal(err)
	}
	rec(1, "E-marketing", consent.StateGranted)
	rec(1, "E-marketing", consent.StateWithdrawn)
	rec(2, "E-marketing", consent.StateGranted)
	rec(2, "Sales and service", consent.StateGranted)
	return f
}

func (f *fixture) verify(t testing.TB) *ledger.Report {
	t.Helper()
	rep, err := f.consent.VerifyLedger(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

// The read pool of SQLite is query-only; tampering needs a writable handle.
func tamperer(t testing.TB, db *store.DB) func(string, ...any) {
	return func(query string, args ...any) {
		t.Helper()
		if err := db.Write(context.Background(), func(tx *store.Tx) error {
			_, err := tx.Exec(query, args...)
			return err
		}); err != nil {
			t.Fatalf("%s: %v", query, err)
		}
	}
}

func TestTamperingIsDetected(t *testing.T) {
	cases := []struct {
		name   string
		tamper func(f *fixture, exec func(string, ...any))
		code   string
		seq    int64
	}{
		{"edit a field", func(f *fixture, exec func(string, ...any)) {
			exec(`UPDATE ledger_events SET value = 'granted' WHERE seq = 4`)
		}, ledger.ProblemHash, 4},
		{"edit the time", func(f *fixture, exec func(string, ...any)) {
			exec(`UPDATE ledger_events SET recorded_at = recorded_at - 1000000 WHERE seq = 2`)
		}, ledger.ProblemHash, 2},
		{"delete an event", func(f *fixture, exec func(string, ...any)) {
			exec(`DELETE FROM ledger_events WHERE seq = 3`)
		}, ledger.ProblemSequence, 3},
		{"delete the last event", func(f *fixture, exec func(string, ...any)) {
			exec(`DELETE FROM ledger_events WHERE seq = 6`)
		}, ledger.ProblemHead, 6},
		{"reorder two events", func(f *fixture, exec func(string, ...any)) {
			exec(`UPDATE ledger_events SET seq = -1 WHERE seq = 3`)
			exec(`UPDATE ledger_events SET seq = 3 WHERE seq = 4`)
			exec(`UPDATE ledger_events SET seq = 4 WHERE seq = -1`)
		}, ledger.ProblemPrevHash, 3},
		{"insert an event in the middle", func(f *fixture, exec func(string, ...any)) {
			for seq := 6; seq >= 4; seq-- {
				exec(`UPDATE ledger_events SET seq = seq + 1 WHERE seq = $1`, seq)
			}
			exec(`INSERT INTO ledger_events (seq, recorded_at, kind, contact_ref, value, prev_hash, hash)
				SELECT 4, recorded_at, kind, contact_ref, value, hash, hash FROM ledger_events WHERE seq = 3`)
		}, ledger.ProblemHash, 4},
		{"append a well-formed event and move the head", func(f *fixture, exec func(string, ...any)) {
			// A forger who knows the encoding can extend the chain; the
			// replay then disagrees with the consent records.
			var ref, prev string
			f.db.Read.QueryRow(`SELECT ref FROM contacts WHERE id = $1`, f.ids[1]).Scan(&ref)
			f.db.Read.QueryRow(`SELECT hash FROM ledger_head`).Scan(&prev)
			// (An event without an evidence commitment would be caught
			// sooner: TestNoDowngradeToEventsWithoutEvidence.)
			e := &ledger.Event{Seq: 7, RecordedAt: time.Now().UnixMicro(), Kind: ledger.KindConsent, ContactRef: ref,
				PurposeID: "01930000-0000-7000-8000-000000000002", Value: "granted", PrevHash: prev, Evidence: strings.Repeat("ab", 32)}
			h, _ := ledger.ComputeHash(prev, e)
			exec(`INSERT INTO ledger_events (seq, recorded_at, kind, contact_ref, purpose_id, value, evidence, prev_hash, hash)
				VALUES (7, $1, $2, $3, $4, $5, $6, $7, $8)`, e.RecordedAt, e.Kind, ref, e.PurposeID, e.Value, e.Evidence, prev, h)
			exec(`UPDATE ledger_head SET seq = 7, hash = $1`, h)
		}, ledger.ProblemState, 7},
		{"change a current consent state", func(f *fixture, exec func(string, ...any)) {
			exec(`UPDATE consent_current SET state = 'granted' WHERE contact_id = $1`, f.ids[1])
		}, ledger.ProblemState, 4},
		{"change an opt-in status", func(f *fixture, exec func(string, ...any)) {
			// Through the state's owner, but without the opt-in rules and
			// the ledger event that consent.ApplyOptIn writes with it.
			if err := f.db.Write(context.Background(), func(tx *store.Tx) error {
				return contactstate.SetOptInTx(tx, f.ids[0], contactstate.DoubleOptIn, time.Now())
			}); err != nil {
				panic(err)
			}
		}, ledger.ProblemState, 2},
		{"delete a contact behind the ledger's back", func(f *fixture, exec func(string, ...any)) {
			exec(`DELETE FROM contacts WHERE id = $1`, f.ids[2])
		}, ledger.ProblemMissing, 6},
		{"change a record's legal basis", func(f *fixture, exec func(string, ...any)) {
			exec(`UPDATE consent_records SET legal_basis = 'legitimate_interests' WHERE ledger_seq = 5`)
		}, ledger.ProblemRowMismatch, 5},
		{"backdate a record", func(f *fixture, exec func(string, ...any)) {
			exec(`UPDATE consent_records SET recorded_at = recorded_at - 31536000000000 WHERE ledger_seq = 3`)
		}, ledger.ProblemRowMismatch, 3},
		{"change a record's source", func(f *fixture, exec func(string, ...any)) {
			exec(`UPDATE consent_records SET source_id = '01930000-0000-7000-8001-000000000002' WHERE ledger_seq = 1`)
		}, ledger.ProblemRowMismatch, 1},
		{"delete a history record", func(f *fixture, exec func(string, ...any)) {
			exec(`DELETE FROM consent_records WHERE ledger_seq = 3`)
		}, ledger.ProblemRowMissing, 3},
		{"delete the opt-in history", func(f *fixture, exec func(string, ...any)) {
			exec(`DELETE FROM opt_in_changes`)
		}, ledger.ProblemRowMissing, 2},
		{"point the current consent at another record", func(f *fixture, exec func(string, ...any)) {
			exec(`UPDATE consent_current SET record_id = (SELECT id FROM consent_records WHERE ledger_seq = 6)
				WHERE contact_id = $1 AND purpose_id = '01930000-0000-7000-8000-000000000002'`, f.ids[2])
		}, ledger.ProblemState, 6},
		{"forge a history record", func(f *fixture, exec func(string, ...any)) {
			exec(`INSERT INTO consent_records (id, contact_id, purpose_id, state, legal_basis, source_id, source, text_version,
				recorded_at, actor_kind, method, ledger_seq)
				SELECT 'forged', contact_id, purpose_id, 'granted', legal_basis, source_id, source, text_version, recorded_at,
				actor_kind, method, 2 FROM consent_records WHERE ledger_seq = 1`)
		}, ledger.ProblemRowExtra, 2},
		{"forge a record at a free position", func(f *fixture, exec func(string, ...any)) {
			exec(`INSERT INTO consent_records (id, contact_id, purpose_id, state, legal_basis, source_id, source, text_version,
				recorded_at, actor_kind, method, ledger_seq)
				SELECT 'forged', contact_id, purpose_id, 'granted', legal_basis, source_id, source, text_version, recorded_at,
				actor_kind, method, 99 FROM consent_records WHERE ledger_seq = 1`)
		}, ledger.ProblemRowExtra, 99},
		{"forge a record far beyond the head", func(f *fixture, exec func(string, ...any)) {
			exec(`UPDATE consent_records SET ledger_seq = 123456789 WHERE ledger_seq = 5`)
		}, ledger.ProblemRowExtra, 123456789},

		// The evidence, which the ledger holds only as a commitment.
		{"change a record's IP address", func(f *fixture, exec func(string, ...any)) {
			exec(`UPDATE consent_records SET ip = '198.51.100.9' WHERE ledger_seq = 1`)
		}, ledger.ProblemEvidence, 1},
		{"change a record's user agent", func(f *fixture, exec func(string, ...any)) {
			exec(`UPDATE consent_records SET user_agent = 'Mozilla/5.0 (forged)' WHERE ledger_seq = 3`)
		}, ledger.ProblemEvidence, 3},
		{"give a record a confirmation token", func(f *fixture, exec func(string, ...any)) {
			exec(`UPDATE consent_records SET token_id = '01930000-0000-7000-8000-00000000beef' WHERE ledger_seq = 4`)
		}, ledger.ProblemEvidence, 4},
		{"change a record's evidence method", func(f *fixture, exec func(string, ...any)) {
			exec(`UPDATE consent_records SET method = 'import' WHERE ledger_seq = 5`)
		}, ledger.ProblemEvidence, 5},
		{"change the language of a record's consent text", func(f *fixture, exec func(string, ...any)) {
			exec(`UPDATE consent_records SET text_language = 'sv' WHERE ledger_seq = 6`)
		}, ledger.ProblemEvidence, 6},
		{"change a record's consent text version", func(f *fixture, exec func(string, ...any)) {
			exec(`UPDATE consent_records SET text_version = 2 WHERE ledger_seq = 1`)
		}, ledger.ProblemEvidence, 1},
		{"change a record's actor", func(f *fixture, exec func(string, ...any)) {
			exec(`UPDATE consent_records SET actor_id = 'another-token' WHERE ledger_seq = 3`)
		}, ledger.ProblemEvidence, 3},
		{"change a record's actor kind", func(f *fixture, exec func(string, ...any)) {
			exec(`UPDATE consent_records SET actor_kind = 'user' WHERE ledger_seq = 4`)
		}, ledger.ProblemEvidence, 4},
		{"change an opt-in change's IP address", func(f *fixture, exec func(string, ...any)) {
			exec(`UPDATE opt_in_changes SET ip = '198.51.100.9'`)
		}, ledger.ProblemEvidence, 2},
		{"blank an opt-in change's user agent", func(f *fixture, exec func(string, ...any)) {
			exec(`UPDATE opt_in_changes SET user_agent = ''`)
		}, ledger.ProblemEvidence, 2},
		{"blank an event's evidence commitment", func(f *fixture, exec func(string, ...any)) {
			exec(`UPDATE ledger_events SET evidence = '' WHERE seq = 3`)
		}, ledger.ProblemHash, 3},
		{"replace the evidence key", func(f *fixture, exec func(string, ...any)) {
			exec(`UPDATE ledger_keys SET key = '00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff'`)
		}, ledger.ProblemEvidence, 1},
		{"delete the evidence key", func(f *fixture, exec func(string, ...any)) {
			exec(`DELETE FROM ledger_keys`)
		}, ledger.ProblemEvidence, 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			storetest.Each(t, func(t testing.TB, db *store.DB) {
				f := setUp(t, db)
				if rep := f.verify(t); !rep.OK || rep.Events != 6 || rep.ContactsChecked != 3 {
					t.Fatalf("untouched ledger: %+v %+v", rep, rep.Problem)
				}
				tc.tamper(f, tamperer(t, db))
				rep := f.verify(t)
				if rep.OK || rep.Problem == nil {
					t.Fatalf("tampering not detected: %+v", rep)
				}
				if rep.Problem.Code != tc.code || rep.Problem.Seq != tc.seq {
					t.Fatalf("problem = %s at %d (%s), want %s at %d", rep.Problem.Code, rep.Problem.Seq, rep.Problem.Message, tc.code, tc.seq)
				}
			})
		})
	}
}

func TestDeletionKeepsTheLedgerValid(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		f := setUp(t, db)
		if err := f.contacts.Delete(context.Background(), f.ids[1], actor); err != nil {
			t.Fatal(err)
		}
		rep := f.verify(t)
		if !rep.OK || rep.Events != 7 || rep.ContactsChecked != 2 {
			t.Fatalf("after deletion: %+v %+v", rep, rep.Problem)
		}
		var n int
		db.Read.QueryRow(`SELECT count(*) FROM ledger_events WHERE contact_ref NOT IN (SELECT ref FROM contacts) AND kind = 'contact_deleted'`).Scan(&n)
		if n != 1 {
			t.Fatalf("deletion events = %d, want 1", n)
		}
		// The ledger holds no personal data: neither the email nor the IP
		// address of the evidence appears in any column.
		var leaks int
		db.Read.QueryRow(`SELECT count(*) FROM ledger_events WHERE contact_ref LIKE '%@%' OR source LIKE '%192.0.2%'
			OR actor_id LIKE '%@%' OR record_id LIKE '%192.0.2%'`).Scan(&leaks)
		if leaks != 0 {
			t.Fatalf("%d ledger events hold personal data", leaks)
		}
	})
}
