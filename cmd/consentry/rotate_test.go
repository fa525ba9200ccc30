package main

import (
	"context"
	"encoding/json"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/mod/sumdb/note"

	"github.com/consentry/consentry/internal/app"
	"github.com/consentry/consentry/internal/config"
	"github.com/consentry/consentry/internal/consent"
	"github.com/consentry/consentry/internal/contact"
	"github.com/consentry/consentry/internal/store"
)

// TestLedgerRotateKey: `consentry ledger rotate-key` prints a new verifier
// key each time; the next checkpoint is signed by the newest key and by no
// older one; the checkpoint signed before does not open with the new key,
// and `ledger verify`, which checks every checkpoint against every key the
// installation had, passes.
func TestLedgerRotateKey(t *testing.T) {
	path := filepath.Join(t.TempDir(), "data", "consentry.db")
	ctx := context.Background()
	consentTo := func(email string) {
		t.Helper()
		db, err := store.Open(ctx, path, store.Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		if _, err := db.Migrate(ctx); err != nil {
			t.Fatal(err)
		}
		a, err := app.New(&config.Config{BaseURL: "https://consent.example.com", MailFrom: "Acme <privacy@acme.example>", SMTPConnections: 1},
			slog.New(slog.DiscardHandler), db)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := a.Contacts.Create(ctx, contact.NewContact{Input: contact.Input{Email: &email},
			Consents: []consent.RecordInput{{Purpose: "E-marketing", State: consent.StateGranted, Source: "API",
				Actor: consent.Actor{Kind: consent.ActorAPIToken}, Evidence: consent.Evidence{Method: consent.MethodAPI}}},
			Actor: consent.Actor{Kind: consent.ActorAPIToken}, Evidence: consent.Evidence{Method: consent.MethodAPI}}); err != nil {
			t.Fatal(err)
		}
	}
	opens := func(checkpoint, vkey string) bool {
		v, err := note.NewVerifier(vkey)
		if err != nil {
			t.Fatalf("verifier key %q: %v", vkey, err)
		}
		_, err = note.Open([]byte(checkpoint), note.VerifierList(v))
		return err == nil
	}

	consentTo("first@example.com")
	code, before, stderr := runCmd(t, path, "ledger", "checkpoint")
	if code != 0 {
		t.Fatalf("ledger checkpoint: %d %s", code, stderr)
	}
	code, oldKey, stderr := runCmd(t, path, "ledger", "rotate-key")
	if code != 0 {
		t.Fatalf("first ledger rotate-key: %d %s", code, stderr)
	}
	code, newKey, stderr := runCmd(t, path, "ledger", "rotate-key")
	oldKey, newKey = strings.TrimSpace(oldKey), strings.TrimSpace(newKey)
	if code != 0 || newKey == oldKey || !strings.Contains(stderr, "still verifies") {
		t.Fatalf("ledger rotate-key: %d %q (before it %q) %s", code, newKey, oldKey, stderr)
	}
	consentTo("second@example.com")
	code, after, stderr := runCmd(t, path, "ledger", "checkpoint")
	if code != 0 {
		t.Fatalf("ledger checkpoint after the rotation: %d %s", code, stderr)
	}
	if !opens(after, newKey) || opens(after, oldKey) {
		t.Fatalf("the checkpoint after the rotation is not signed by the new key alone:\n%s", after)
	}
	if opens(before, newKey) {
		t.Fatal("the checkpoint from before the rotation opens with the new key")
	}
	code, out, _ := runCmd(t, path, "ledger", "verify")
	var rep struct{ OK bool }
	if code != 0 || json.Unmarshal([]byte(out), &rep) != nil || !rep.OK {
		t.Fatalf("ledger verify after rotations: %d %s", code, out)
	}
}
