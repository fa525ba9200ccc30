package main

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/consentry/consentry/internal/app"
	"github.com/consentry/consentry/internal/audit"
	"github.com/consentry/consentry/internal/config"
	"github.com/consentry/consentry/internal/consent"
	"github.com/consentry/consentry/internal/contact"
	"github.com/consentry/consentry/internal/store"
	"github.com/consentry/consentry/internal/store/storetest"
	"github.com/consentry/consentry/internal/vault"
)

// TestKeysChangeMasterKey: with an instance running on a keyset and a
// sensitive value stored, `consentry keys change-master-key` refuses a
// wrong master key and a missing keyset, changing nothing; then prints a
// new master key and says what to do. The running instance keeps storing
// and revealing values; the database is not touched; an instance started
// with the old master key is refused, naming CONSENTRY_MASTER_KEY; one
// started with the new key reveals every value, from before and after.
func TestKeysChangeMasterKey(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		ctx := context.Background()
		dir := t.TempDir()
		keyset := filepath.Join(dir, "keys", "keyset.json")
		os.MkdirAll(filepath.Dir(keyset), 0o700)
		keys := func(env map[string]string, args ...string) (int, string, string) {
			t.Helper()
			t.Setenv("CONSENTRY_DATABASE_URL", filepath.Join(dir, "data", "consentry.db")) // the command must not need it
			for _, name := range []string{"CONSENTRY_KEYSET_FILE", "CONSENTRY_MASTER_KEY"} {
				t.Setenv(name, env[name])
			}
			var out, errOut bytes.Buffer
			code := run(ctx, append([]string{"keys"}, args...), &out, &errOut)
			return code, out.String(), errOut.String()
		}
		code, oldKey, stderr := keys(nil, "create", "--file", keyset)
		if code != 0 {
			t.Fatalf("keys create: %d %s", code, stderr)
		}
		oldKey = strings.TrimSpace(oldKey)
		open := func(key string) (*app.App, error) {
			return app.New(&config.Config{BaseURL: "https://consent.example.com", MailFrom: "Acme <privacy@acme.example>", SMTPConnections: 1,
				KeysetFile: keyset, MasterKey: key}, slog.New(slog.DiscardHandler), db)
		}
		running, err := open(oldKey)
		if err != nil {
			t.Fatal(err)
		}
		yes, text, field := true, "text", "national_id"
		if _, err := running.Contacts.CreateField(ctx, audit.Actor{Kind: "user"}, contact.FieldInput{Name: &field, Type: &text, Sensitive: &yes}); err != nil {
			t.Fatal(err)
		}
		values := map[string]string{}
		add := func(a *app.App, email, value string) {
			t.Helper()
			c, err := a.Contacts.Create(ctx, contact.NewContact{Input: contact.Input{Email: &email, Fields: map[string]any{field: value}},
				Actor: consent.Actor{Kind: consent.ActorAPIToken}, Evidence: consent.Evidence{Method: consent.MethodAPI}})
			if err != nil {
				t.Fatalf("store a sensitive value: %v", err)
			}
			values[c.ID] = value
		}
		reveal := func(a *app.App, when string) {
			t.Helper()
			for id, want := range values {
				if got, err := a.Contacts.Reveal(ctx, id, field, consent.Actor{Kind: consent.ActorSystem}, ""); err != nil || got != want {
					t.Fatalf("%s: contact %s reveals %q, %v; want %q", when, id, got, err, want)
				}
			}
		}
		add(running, "before@example.com", "198501011234")
		dataKeys := func() map[string]string {
			t.Helper()
			rows, err := store.QueryAll(ctx, db.Read, func(row store.Scanner) ([2]string, error) {
				var r [2]string
				return r, row.Scan(&r[0], &r[1])
			}, `SELECT contact_id, wrapped FROM contact_keys`)
			if err != nil {
				t.Fatal(err)
			}
			out := map[string]string{}
			for _, r := range rows {
				out[r[0]] = r[1]
			}
			return out
		}
		wrapped := dataKeys()
		file := func() []byte {
			t.Helper()
			b, err := os.ReadFile(keyset)
			if err != nil {
				t.Fatal(err)
			}
			return b
		}
		before := file()

		// Refusals change nothing and print no key.
		code, out, stderr := keys(map[string]string{"CONSENTRY_KEYSET_FILE": keyset, "CONSENTRY_MASTER_KEY": vault.NewMasterKey()}, "change-master-key")
		if code != 1 || out != "" || !strings.Contains(stderr, "CONSENTRY_MASTER_KEY") || !strings.Contains(stderr, "nothing was changed") {
			t.Fatalf("change-master-key with a wrong master key: %d %q %s", code, out, stderr)
		}
		code, out, stderr = keys(nil, "change-master-key")
		if code != 1 || out != "" || !strings.Contains(stderr, "no keyset is configured") {
			t.Fatalf("change-master-key without a keyset: %d %q %s", code, out, stderr)
		}
		if !bytes.Equal(file(), before) {
			t.Fatal("a refused change-master-key changed the keyset file")
		}

		code, newKey, stderr := keys(map[string]string{"CONSENTRY_KEYSET_FILE": keyset, "CONSENTRY_MASTER_KEY": oldKey}, "change-master-key")
		newKey = strings.TrimSpace(newKey)
		if code != 0 || newKey == oldKey || strings.Count(newKey, "\n") != 0 || strings.Contains(stderr, newKey) || strings.Contains(stderr, oldKey) {
			t.Fatalf("change-master-key: %d %q %s", code, newKey, stderr)
		}
		for _, want := range []string{"CONSENTRY_MASTER_KEY", "every instance", "FILE.keyset", "keys rotate"} {
			if !strings.Contains(stderr, want) {
				t.Errorf("change-master-key's guidance lacks %q:\n%s", want, stderr)
			}
		}
		if _, err := os.Stat(filepath.Join(dir, "data")); err == nil {
			t.Error("change-master-key made a database")
		}

		// The running instance keeps working with the keys it holds.
		add(running, "after@example.com", "199006155678")
		reveal(running, "the running instance after the change")

		// The data keys stored before are as they were.
		now := dataKeys()
		for id, w := range wrapped {
			if now[id] != w {
				t.Errorf("the data key of %s changed", id)
			}
		}

		if _, err := open(oldKey); err == nil || !strings.Contains(err.Error(), "CONSENTRY_MASTER_KEY") {
			t.Fatalf("an instance started with the old master key: %v", err)
		}
		restarted, err := open(newKey)
		if err != nil {
			t.Fatalf("an instance started with the new master key: %v", err)
		}
		reveal(restarted, "an instance started with the new master key")
	})
}
