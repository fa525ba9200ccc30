package consent_test

import (
	"context"
	"testing"

	"github.com/consentry/consentry/internal/audit"
	"github.com/consentry/consentry/internal/consent"
	"github.com/consentry/consentry/internal/contact"
	"github.com/consentry/consentry/internal/errs"
	"github.com/consentry/consentry/internal/store"
	"github.com/consentry/consentry/internal/store/storetest"
)

// TestRecordOfAndItsText: a record is read only under its own contact, and
// its text comes back as shown, in the language shown; a version is read
// with its translations.
func TestRecordOfAndItsText(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		ctx := context.Background()
		cs, people := services(db)
		var ids []string
		for _, email := range []string{"a@example.com", "b@example.com"} {
			c, err := people.Create(ctx, contact.NewContact{Input: contact.Input{Email: ptr(email)}, Actor: apiActor, Evidence: apiEvidence})
			if err != nil {
				t.Fatal(err)
			}
			ids = append(ids, c.ID)
		}
		v2, err := cs.SetTranslation(ctx, audit.Actor{Kind: "user"}, "E-marketing", 1, "sv", "Ja, jag vill ha nyhetsbrev.")
		if err != nil {
			t.Fatal(err)
		}
		rec, err := cs.Record(ctx, ids[0], consent.RecordInput{Purpose: "E-marketing", State: consent.StateGranted, Source: "API",
			TextVersion: v2.Version, TextLanguage: "sv", Actor: apiActor, Evidence: apiEvidence})
		if err != nil {
			t.Fatal(err)
		}
		got, err := cs.RecordOf(ctx, ids[0], rec.ID)
		if err != nil || got.ID != rec.ID || got.LedgerSeq != rec.LedgerSeq || got.TextLanguage != "sv" || got.PurposeName != "E-marketing" {
			t.Fatalf("RecordOf: %v %+v", err, got)
		}
		for _, c := range [][2]string{{ids[1], rec.ID}, {ids[0], "no-such-record"}} {
			if _, err := cs.RecordOf(ctx, c[0], c[1]); !errs.Is(err, errs.KindNotFound) {
				t.Fatalf("RecordOf(%s, %s): %v", c[0], c[1], err)
			}
		}
		shown, err := cs.ShownTextOf(ctx, got)
		if err != nil || shown.Version != v2.Version || shown.Language != "sv" || shown.Text != "Ja, jag vill ha nyhetsbrev." {
			t.Fatalf("text shown: %v %+v", err, shown)
		}
		p, text, err := cs.PurposeText(ctx, got.PurposeID, v2.Version)
		if err != nil || p.Name != "E-marketing" || text.Version != v2.Version || text.Translations["sv"] != "Ja, jag vill ha nyhetsbrev." || text.Language != "en" {
			t.Fatalf("PurposeText: %v %+v", err, text)
		}
		if _, _, err := cs.PurposeText(ctx, got.PurposeID, 99); !errs.Is(err, errs.KindNotFound) {
			t.Fatalf("a missing version: %v", err)
		}
		if _, _, err := cs.PurposeText(ctx, "no-such-purpose", 1); !errs.Is(err, errs.KindNotFound) {
			t.Fatalf("a missing purpose: %v", err)
		}
	})
}
