package imports_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/consentry/consentry/internal/consent"
	"github.com/consentry/consentry/internal/contact"
	"github.com/consentry/consentry/internal/events"
	"github.com/consentry/consentry/internal/events/eventstest"
	"github.com/consentry/consentry/internal/imports"
	"github.com/consentry/consentry/internal/ledger"
	"github.com/consentry/consentry/internal/store"
	"github.com/consentry/consentry/internal/store/storetest"
	"github.com/consentry/consentry/internal/suppression"
)

// importOf is the import_id (and method, source, reason) of an event's
// data, whatever its type.
type importOf struct {
	ImportID string `json:"import_id"`
	Method   string `json:"method"`
	Source   string `json:"source"`
	Reason   string `json:"reason"`
}

// Every event an import writes names the import (import_id), for a new
// contact and a known one alike, consent events with the method import;
// a change made beside it names none. The opt-in history keeps the
// import's id too, under the ledger's commitment.
func TestImportEventsNameTheImport(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		w := newWorld(t, db)
		ctx := context.Background()
		known, err := w.people.Create(ctx, contact.NewContact{Input: contact.Input{Email: ptr("known@example.com"), FirstName: ptr("Old")},
			Actor: user, Evidence: consent.Evidence{Method: consent.MethodEnteredByUser}})
		if err != nil {
			t.Fatal(err)
		}
		imp := w.upload("fair.csv", csvFile(',',
			[]string{"email", "first", "status", "marketing", "date"},
			[]string{"new@example.com", "New", "single_opt_in_user", "yes", "2026-11-20"},
			[]string{"known@example.com", "Changed", "opt-out", "no", "2026-11-20"},
		))
		d := imports.Definition{Source: "Trade fair 2026", Duplicates: contact.DuplicateOverwrite,
			Columns: []imports.Column{{Column: "email", Field: "email"}, {Column: "first", Field: "first_name"}},
			OptIn:   &imports.OptIn{Column: "status"},
			Consents: []imports.Consent{{Purpose: "E-marketing", Column: "marketing", LegalBasis: consent.BasisConsent,
				CollectedAtColumn: "date", TextVersion: 1}},
			Lists: []imports.List{{List: "Newsletter", Column: "marketing"}}}
		read := eventstest.From(t, db)
		if got := w.run(imp.ID, d, false); got.Created != 1 || got.Updated != 1 {
			t.Fatalf("import: %+v", got)
		}
		seen := map[string]int{}
		for _, e := range read.Next(t) {
			seen[e.Type]++
			d := eventstest.Data[importOf](t, e)
			if d.ImportID != imp.ID {
				t.Errorf("%s names import %q, want %s: %s", e.Type, d.ImportID, imp.ID, e.Data)
			}
			switch e.Type {
			case events.ContactCreated, events.ConsentGranted, events.ConsentWithdrawn, events.OptInChanged:
				if d.Method != consent.MethodImport {
					t.Errorf("%s has the method %q: %s", e.Type, d.Method, e.Data)
				}
			case events.ListSubscribed:
				if d.Source != "import" {
					t.Errorf("%s has the source %q", e.Type, d.Source)
				}
			}
		}
		for _, typ := range []string{events.ContactCreated, events.ContactUpdated, events.ConsentGranted, events.ConsentWithdrawn,
			events.OptInChanged, events.ListSubscribed} {
			if seen[typ] == 0 {
				t.Errorf("the import wrote no %s: %v", typ, seen)
			}
		}
		// The opt-in changes it made keep its id, as its consent records do.
		fresh := w.contact("new@example.com")
		for _, id := range []string{fresh.ID, known.ID} {
			h, err := w.consent.OptInHistory(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			last := h[len(h)-1]
			if last.Evidence.Method != consent.MethodImport || last.Evidence.ImportID != imp.ID {
				t.Errorf("the opt-in change of %s: %+v", id, last)
			}
		}
		// A change made beside the import names none.
		if _, err := w.consent.Record(ctx, fresh.ID, consent.RecordInput{Purpose: "Share with partners", State: consent.StateGranted,
			Source: "Trade fair 2026", Actor: user, Evidence: consent.Evidence{Method: consent.MethodEnteredByUser}}); err != nil {
			t.Fatal(err)
		}
		if _, err := w.people.Update(ctx, known.ID, contact.Input{FirstName: ptr("By hand")}); err != nil {
			t.Fatal(err)
		}
		for _, e := range read.Next(t) {
			if d := eventstest.Data[importOf](t, e); d.ImportID != "" {
				t.Errorf("%s written beside the import names it: %s", e.Type, e.Data)
			}
		}
		w.verify()
		// The import's id is under the ledger's commitment: changed, it
		// shows.
		if err := db.Write(ctx, func(tx *store.Tx) error {
			_, err := tx.Exec(`UPDATE opt_in_changes SET import_id = 'another' WHERE contact_id = $1 AND import_id = $2`, fresh.ID, imp.ID)
			return err
		}); err != nil {
			t.Fatal(err)
		}
		rep, err := w.consent.VerifyLedger(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if rep.OK || rep.Problem.Code != ledger.ProblemEvidence {
			t.Fatalf("an opt-in change given another import verifies: %+v", rep.Problem)
		}
	})
}

// Undoing an import writes, for each contact it removes, contact.deleted
// with the reason import_undone and the import's id (and so says the
// erasure log), then one import.undone; a contact deleted as such says
// neither.
func TestUndoSaysWhatItUndoes(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		w := newWorld(t, db)
		ctx := context.Background()
		records, d := peopleFile(3)
		imp := w.run(w.upload("people.csv", csvFile(',', records...)).ID, d, false)
		if imp.Created != 3 {
			t.Fatalf("import: %+v", imp)
		}
		by := map[string]string{}
		for _, email := range []string{"p00@example.com", "p01@example.com", "p02@example.com"} {
			by[email] = w.contact(email).ID
		}
		w.now = w.now.Add(time.Hour)
		if err := w.people.Delete(ctx, by["p02@example.com"], user); err != nil { // deleted as such, before the undo
			t.Fatal(err)
		}
		read := eventstest.From(t, db)
		if _, err := w.imports.Undo(ctx, imp.ID, user); err != nil {
			t.Fatal(err)
		}
		w.drain()
		list := read.Next(t)
		if got := eventstest.Types(list); len(got) != 3 || got[0] != events.ContactDeleted || got[1] != events.ContactDeleted ||
			got[2] != events.ImportUndone {
			t.Fatalf("the undo wrote %v", got)
		}
		removed := map[string]bool{}
		for _, e := range list[:2] {
			data := eventstest.Data[events.ContactDeletedData](t, e)
			if data.Reason != contact.RemovedByUndo || data.ImportID != imp.ID || data.ActorKind != consent.ActorUser {
				t.Errorf("a removal by the undo: %s", e.Data)
			}
			removed[data.ContactID] = true
			log, err := suppression.Log(ctx, db.Read, data.ContactID)
			if err != nil {
				t.Fatal(err)
			}
			if len(log) != 1 || log[0].Rule != contact.RemovedByUndo || log[0].ImportID != imp.ID || log[0].Action != suppression.Deleted {
				t.Errorf("the erasure log of a removal by the undo: %+v", log)
			}
		}
		if !removed[by["p00@example.com"]] || !removed[by["p01@example.com"]] {
			t.Errorf("the undo removed %v", removed)
		}
		if done := eventstest.Data[events.ImportUndoneData](t, list[2]); done.ImportID != imp.ID || done.Removed != 2 ||
			done.ActorKind != consent.ActorUser || list[2].ContactID != "" {
			t.Errorf("import.undone: %+v (contact %q)", done, list[2].ContactID)
		}
		// The contact deleted as such: no reason, no import, no rule.
		deleted, _, err := events.List(ctx, db.Read, events.Query{Type: events.ContactDeleted, ContactID: by["p02@example.com"], Limit: 10})
		if err != nil || len(deleted) != 1 {
			t.Fatalf("the deletion's events: %v %v", deleted, err)
		}
		var raw map[string]any
		if err := json.Unmarshal(deleted[0].Data, &raw); err != nil {
			t.Fatal(err)
		}
		if _, ok := raw["reason"]; ok {
			t.Errorf("a deletion as such has a reason: %s", deleted[0].Data)
		}
		if _, ok := raw["import_id"]; ok {
			t.Errorf("a deletion as such names an import: %s", deleted[0].Data)
		}
		if log, err := suppression.Log(ctx, db.Read, by["p02@example.com"]); err != nil || len(log) != 1 || log[0].Rule != "" || log[0].ImportID != "" {
			t.Errorf("the erasure log of a deletion as such: %+v %v", log, err)
		}
		w.verify()
	})
}
