package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/consentry/consentry/internal/store"
)

// TestBackupUnderLoad backs up the database of a running `consentry
// serve` process while eight writers record contacts, sensitive values
// and consents through its API, restores the backup into a fresh data
// directory with the keyset beside it, and checks the copy: `ledger
// verify` passes on it, the keyset opens its encrypted fields, and every
// write acknowledged before the backup started is in it.
func TestBackupUnderLoad(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and runs it under load; skipped with -short")
	}
	bin := buildBinary(t)
	dir := t.TempDir()
	keyset := filepath.Join(dir, "keys", "keyset.json")
	os.MkdirAll(filepath.Dir(keyset), 0o700)
	code, master, stderr := runBinary(t, bin, nil, "keys", "create", "--file", keyset)
	if code != 0 {
		t.Fatalf("keys create: %d %s", code, stderr)
	}
	keys := []string{"CONSENTRY_KEYSET_FILE=" + keyset, "CONSENTRY_MASTER_KEY=" + strings.TrimSpace(master), "CONSENTRY_LOG_LEVEL=warn"}
	// No rate limit on the writers' token (loadEnv says why): a backup
	// that takes longer lets them use up its burst.
	env := append([]string{"CONSENTRY_DATABASE_URL=" + filepath.Join(dir, "data", "consentry.db"), "CONSENTRY_RATE_API=1000000:1000000"}, keys...)
	code, secret, stderr := runBinary(t, bin, env, "token", "create", "--name", "backup test")
	if code != 0 {
		t.Fatalf("token create: %d %s", code, stderr)
	}
	srv := startChild(t, bin, env)
	api := &apiClient{t: t, base: "http://" + srv.addr, token: strings.TrimSpace(secret)}
	api.do("POST", "/api/v1/fields", map[string]any{"name": "national_id", "type": "text", "sensitive": true}, nil)

	w := &writes{more: make(chan struct{}, 1)}
	ctx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	failed := make(chan error, 8)
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ctx.Err() == nil; i++ {
				if err := w.write(ctx, api, fmt.Sprintf("w%d-%d@example.com", g, i)); err != nil {
					if ctx.Err() == nil {
						failed <- err
					}
					return
				}
			}
		}()
	}
	defer func() { stop(); wg.Wait() }()
	for w.count() < 200 {
		select {
		case <-w.more:
		case err := <-failed:
			t.Fatal(err)
		case <-srv.exited:
			t.Fatalf("serve exited:\n%s", srv.output())
		}
	}

	before := w.snapshot()
	file := filepath.Join(dir, "backups", "consentry.db")
	os.MkdirAll(filepath.Dir(file), 0o700)
	code, out, stderr := runBinary(t, bin, env, "backup", file)
	during := w.count() - len(before.contacts)
	stop()
	wg.Wait()
	select {
	case err := <-failed:
		t.Fatalf("a writer failed: %v", err)
	default:
	}
	if code != 0 {
		t.Fatalf("backup: %d %s %s", code, out, stderr)
	}
	if !strings.Contains(out, "MASTER KEY IS NOT IN THIS BACKUP") || strings.Contains(out+stderr, strings.TrimSpace(master)) {
		t.Errorf("the backup's output does not warn of the master key, or shows it:\n%s", out)
	}
	t.Logf("%d contacts with their consents acknowledged before the backup began, %d more while it ran", len(before.contacts), during)
	srv.stop(t)

	restoredKeyset := filepath.Join(dir, "restored-keys", "keyset.json")
	restoredDB := filepath.Join(dir, "restored", "consentry.db")
	env2 := append([]string{"CONSENTRY_DATABASE_URL=" + restoredDB, "CONSENTRY_KEYSET_FILE=" + restoredKeyset}, keys[1:]...)
	if code, out, stderr := runBinary(t, bin, env2, "restore", file); code != 0 {
		t.Fatalf("restore: %d %s %s", code, out, stderr)
	}
	if a, b := readFile(t, keyset), readFile(t, restoredKeyset); !bytes.Equal(a, b) {
		t.Fatal("the restored keyset is not the one in use")
	}
	code, out, stderr = runBinary(t, bin, env2, "ledger", "verify")
	var rep struct {
		OK     bool
		Events int
	}
	if code != 0 || json.Unmarshal([]byte(out), &rep) != nil || !rep.OK {
		t.Fatalf("ledger verify on the restored copy: %d %s %s", code, out, stderr)
	}
	if rep.Events < 2*len(before.contacts) {
		t.Errorf("the restored ledger has %d events, fewer than the %d consents acknowledged before the backup", rep.Events, 2*len(before.contacts))
	}

	db, err := store.Open(context.Background(), restoredDB, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	missing := func(table string, ids []string) {
		for _, id := range ids {
			var n int
			if err := db.Read.QueryRow(`SELECT count(*) FROM `+table+` WHERE id = $1`, id).Scan(&n); err != nil {
				t.Fatal(err)
			}
			if n != 1 {
				t.Errorf("%s %s, acknowledged before the backup began, is not in it", table, id)
			}
		}
	}
	missing("contacts", before.contacts)
	missing("consent_records", before.records)
	var sensitive int
	db.Read.QueryRow(`SELECT count(*) FROM sensitive_values`).Scan(&sensitive)
	if sensitive < len(before.contacts) {
		t.Errorf("%d sensitive values restored, want at least %d", sensitive, len(before.contacts))
	}
}

// writes are the acknowledged writes of the writers: contacts created,
// and the consent records they and a later withdrawal made.
type writes struct {
	mu       sync.Mutex
	contacts []string
	records  []string
	more     chan struct{}
}

// write creates a contact with a sensitive value and a granted consent,
// then withdraws the consent, and records both once both are answered.
func (w *writes) write(ctx context.Context, api *apiClient, email string) error {
	var c struct{ ID string }
	if err := api.call(ctx, "POST", "/api/v1/contacts", map[string]any{"email": email, "fields": map[string]any{"national_id": "19850101" + email[:4]},
		"consents": []map[string]string{{"purpose": "E-marketing", "state": "granted", "source": "API"}}}, &c); err != nil {
		return err
	}
	var granted struct{ History []struct{ ID string } }
	if err := api.call(ctx, "GET", "/api/v1/contacts/"+c.ID+"/consents", nil, &granted); err != nil {
		return err
	}
	var r struct{ ID string }
	if err := api.call(ctx, "POST", "/api/v1/contacts/"+c.ID+"/consents", map[string]string{"purpose": "E-marketing", "state": "withdrawn", "source": "Phone"}, &r); err != nil {
		return err
	}
	if len(granted.History) != 1 || r.ID == "" {
		return fmt.Errorf("contact %s: history %+v, withdrawal %q", c.ID, granted.History, r.ID)
	}
	w.mu.Lock()
	w.contacts = append(w.contacts, c.ID)
	w.records = append(w.records, granted.History[0].ID, r.ID)
	w.mu.Unlock()
	select {
	case w.more <- struct{}{}:
	default:
	}
	return nil
}

func (w *writes) count() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.contacts)
}

// snapshot copies the writes acknowledged so far.
func (w *writes) snapshot() (s struct{ contacts, records []string }) {
	w.mu.Lock()
	defer w.mu.Unlock()
	s.contacts = append(s.contacts, w.contacts...)
	s.records = append(s.records, w.records...)
	return s
}

// call is do for goroutines other than the test's: it returns what went
// wrong rather than failing the test.
func (a *apiClient) call(ctx context.Context, method, path string, body, out any) error {
	var r io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		r = bytes.NewReader(b)
	}
	req, _ := http.NewRequestWithContext(ctx, method, a.base+path, r)
	req.Header.Set("Authorization", "Bearer "+a.token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := apiHTTP.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("%s %s: %d %s", method, path, resp.StatusCode, b)
	}
	if out != nil {
		return json.Unmarshal(b, out)
	}
	return nil
}

func readFile(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestBackupRefusals: backup and restore refuse, saying why and changing
// nothing, to replace a backup without --force, to restore over a
// database or a different keyset, to restore a damaged copy or one newer
// than the program, and to work on PostgreSQL. The default keyset comes
// back beside the database, and the master key is named as missing.
func TestBackupRefusals(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "data", "consentry.db")
	if code, _, stderr := runCmd(t, db, "migrate"); code != 0 {
		t.Fatalf("migrate: %d %s", code, stderr)
	}
	file := filepath.Join(dir, "backup.db")
	if code, out, stderr := runCmd(t, db, "backup", file); code != 0 || !strings.Contains(out, filepath.Join(dir, "data", "master.key")) {
		t.Fatalf("backup: %d %s %s", code, out, stderr)
	}
	if _, err := os.Stat(file + ".keyset"); err != nil {
		t.Fatalf("no keyset beside the backup: %v", err)
	}
	if code, _, stderr := runCmd(t, db, "backup", file); code != 1 || !strings.Contains(stderr, file+" exists") || !strings.Contains(stderr, "--force") {
		t.Fatalf("a second backup to the same file: %d %s", code, stderr)
	}
	if code, _, stderr := runCmd(t, db, "backup", "--force", file); code != 0 {
		t.Fatalf("backup --force: %d %s", code, stderr)
	}
	if code, _, stderr := runCmd(t, filepath.Join(dir, "nothing", "consentry.db"), "backup", filepath.Join(dir, "other.db")); code != 1 || !strings.Contains(stderr, "no database at") {
		t.Fatalf("a backup of no database: %d %s", code, stderr)
	}

	if code, _, stderr := runCmd(t, db, "restore", file); code != 1 || !strings.Contains(stderr, "already holds a database, "+db) {
		t.Fatalf("restore over a database: %d %s", code, stderr)
	}

	// A different keyset where the backup's would go.
	other := filepath.Join(dir, "other", "consentry.db")
	os.MkdirAll(filepath.Dir(other), 0o700)
	os.WriteFile(filepath.Join(dir, "other", "keyset.json"), []byte("{}"), 0o600)
	if code, _, stderr := runCmd(t, other, "restore", file); code != 1 || !strings.Contains(stderr, filepath.Join(dir, "other", "keyset.json")+" exists") {
		t.Fatalf("restore over another keyset: %d %s", code, stderr)
	}
	noDatabase(t, other)

	// A copy newer than this program, and a damaged one.
	newer := copyOf(t, file, filepath.Join(dir, "newer.db"))
	setLatest(t, newer)
	fresh := filepath.Join(dir, "fresh", "consentry.db")
	if code, _, stderr := runCmd(t, fresh, "restore", newer); code != 1 || !strings.Contains(stderr, "newer than this program's latest") {
		t.Fatalf("restore a newer copy: %d %s", code, stderr)
	}
	noDatabase(t, fresh)
	damaged := copyOf(t, file, filepath.Join(dir, "damaged.db"))
	b := readFile(t, damaged)
	os.WriteFile(damaged, b[:len(b)/2], 0o600)
	if code, _, stderr := runCmd(t, fresh, "restore", damaged); code != 1 || !strings.Contains(stderr, damaged) {
		t.Fatalf("restore a damaged copy: %d %s", code, stderr)
	}
	noDatabase(t, fresh)

	// The default keyset comes back; the master key does not.
	code, out, stderr := runCmd(t, fresh, "restore", file)
	masterFile := filepath.Join(dir, "fresh", "master.key")
	if code != 0 || !strings.Contains(out, "put it in "+masterFile) {
		t.Fatalf("restore: %d %s %s", code, out, stderr)
	}
	if code, _, stderr := runCmd(t, fresh, "ledger", "verify"); code != 1 || !strings.Contains(stderr, masterFile+" is missing") {
		t.Fatalf("a start without the master key: %d %s", code, stderr)
	}
	os.WriteFile(masterFile, readFile(t, filepath.Join(dir, "data", "master.key")), 0o600)
	if code, out, stderr := runCmd(t, fresh, "ledger", "verify"); code != 0 {
		t.Fatalf("ledger verify on the restored copy: %d %s %s", code, out, stderr)
	}

	pg := "postgres://consentry@127.0.0.1:5432/consentry"
	for _, cmd := range [][]string{{"backup", filepath.Join(dir, "pg.db")}, {"restore", file}} {
		if code, _, stderr := runCmd(t, pg, cmd...); code != 1 || !strings.Contains(stderr, "pg_dump") || !strings.Contains(stderr, "docs/operations.md") {
			t.Fatalf("%s on PostgreSQL: %d %s", cmd[0], code, stderr)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "pg.db")); err == nil {
		t.Fatal("a backup on PostgreSQL wrote a file")
	}
}

// noDatabase fails the test if a refused restore left a database at path.
func noDatabase(t *testing.T, path string) {
	t.Helper()
	if _, err := os.Stat(path); err == nil {
		t.Fatalf("a refused restore left %s", path)
	}
}

func copyOf(t *testing.T, src, dst string) string {
	t.Helper()
	if err := os.WriteFile(dst, readFile(t, src), 0o600); err != nil {
		t.Fatal(err)
	}
	return dst
}

// setLatest marks the SQLite file as migrated one step past this
// program's latest migration, as a newer version would leave it.
func setLatest(t *testing.T, file string) {
	t.Helper()
	latest, err := store.LatestMigration()
	if err != nil {
		t.Fatal(err)
	}
	db, err := store.Open(context.Background(), file, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.Write(context.Background(), func(tx *store.Tx) error {
		_, err := tx.Exec(`INSERT INTO goose_db_version (version_id, is_applied) VALUES ($1, true)`, latest+1)
		return err
	}); err != nil {
		t.Fatal(err)
	}
}
