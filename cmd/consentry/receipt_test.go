package main

import (
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/consentry/consentry/internal/app"
	"github.com/consentry/consentry/internal/config"
	"github.com/consentry/consentry/internal/consent"
	"github.com/consentry/consentry/internal/contact"
	"github.com/consentry/consentry/internal/store"
	"github.com/consentry/consentry/internal/store/storetest"
)

// TestVerifyReceiptOffline: `consentry ledger verify-receipt` checks a
// receipt as downloaded with the checkpoint and key files alone (no
// configuration, no database), and fails, saying why, on a receipt with a
// changed byte, on another installation's key, and on a checkpoint the
// proof is not for.
func TestVerifyReceiptOffline(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		ctx := context.Background()
		a, err := app.New(&config.Config{BaseURL: "https://consent.example.com", MailFrom: "Acme <privacy@acme.example>", SMTPConnections: 1},
			slog.New(slog.DiscardHandler), db)
		if err != nil {
			t.Fatal(err)
		}
		email := "offline@example.com"
		c, err := a.Contacts.Create(ctx, contact.NewContact{Input: contact.Input{Email: &email}, Actor: consent.Actor{Kind: consent.ActorAPIToken},
			Evidence: consent.Evidence{Method: consent.MethodAPI}})
		if err != nil {
			t.Fatal(err)
		}
		rec, err := a.Consent.Record(ctx, c.ID, consent.RecordInput{Purpose: "E-marketing", State: consent.StateGranted, Source: "API",
			Actor: consent.Actor{Kind: consent.ActorAPIToken}, Evidence: consent.Evidence{Method: consent.MethodAPI}})
		if err != nil {
			t.Fatal(err)
		}
		issued, err := a.Receipts.Issue(ctx, rec.ID)
		if err != nil {
			t.Fatal(err)
		}
		keys, err := a.Signing.Public(ctx)
		if err != nil {
			t.Fatal(err)
		}
		dir := t.TempDir()
		write := func(name, content string) string {
			p := filepath.Join(dir, name)
			if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
				t.Fatal(err)
			}
			return p
		}
		doc, _ := json.Marshal(issued)
		receipt := write("receipt.json", string(doc))
		checkpoint := write("checkpoint.txt", issued.LedgerProof.Checkpoint)
		key := write("key.txt", keys[0].VerifierKey()+"\n")
		verify := func(args ...string) (int, string, string) {
			t.Helper()
			return runCmd(t.(*testing.T), filepath.Join(dir, "unused.db"), append([]string{"ledger", "verify-receipt"}, args...)...)
		}
		if code, out, errOut := verify(receipt, "--checkpoint", checkpoint, "--key", key); code != 0 || !strings.Contains(out, "receipt OK") ||
			!strings.Contains(out, rec.ID) {
			t.Fatalf("a good receipt: %d %q %q", code, out, errOut)
		}
		if _, err := os.Stat(filepath.Join(dir, "unused.db")); err == nil {
			t.Error("the offline check opened a database")
		}
		changed := write("changed.json", strings.Replace(string(doc), `"receipt":"ey`, `"receipt":"eX`, 1))
		other := write("other-key.txt", "consent.example.com/ledger+0a1b2c3d+AVdOcuJv8zGvZQ2w8RDx0yTkj0Bd2a7PCa1ykC9Vb3xk\n")
		for _, bad := range [][]string{
			{changed, "--checkpoint", checkpoint, "--key", key},
			{receipt, "--checkpoint", checkpoint, "--key", other},
			{receipt, "--checkpoint", receipt, "--key", key},
		} {
			if code, _, errOut := verify(bad...); code != 1 || !strings.Contains(errOut, "FAILED") {
				t.Errorf("%v: %d %q", bad, code, errOut)
			}
		}
		if code, _, _ := verify(receipt); code != 2 {
			t.Errorf("without --checkpoint and --key: %d, want 2", code)
		}
	})
}
