package app_test

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/consentry/consentry/internal/app"
	"github.com/consentry/consentry/internal/audit"
	"github.com/consentry/consentry/internal/auth"
	"github.com/consentry/consentry/internal/config"
	"github.com/consentry/consentry/internal/store"
	"github.com/consentry/consentry/internal/store/storetest"
	"github.com/consentry/consentry/internal/vault"
)

// The values the tests store in sensitive fields: none may be found in the
// clear in the database.
var secrets = []string{"198501011234", "4111111111111111", "199006155678"}

// withSensitive defines two sensitive fields and three contacts with values.
func withSensitive(e *env) []string {
	e.api("POST", "/api/v1/fields", `{"name":"national_id","type":"text","sensitive":true}`, 201, nil)
	e.api("POST", "/api/v1/fields", `{"name":"card_number","type":"text","sensitive":true,"mask":"last:4"}`, 201, nil)
	var ids []string
	for i, body := range []string{
		`{"email":"a@example.com","fields":{"national_id":"198501011234","card_number":"4111111111111111"}}`,
		`{"email":"b@example.com","fields":{"national_id":"199006155678"}}`,
		`{"email":"c@example.com"}`,
	} {
		var c struct {
			ID     string
			Fields map[string]any
		}
		e.api("POST", "/api/v1/contacts", body, 201, &c)
		if i == 0 && (c.Fields["national_id"] != "••••••••1234" || c.Fields["card_number"] != "••••••••••••1111") {
			e.t.Fatalf("created contact shows %v", c.Fields)
		}
		ids = append(ids, c.ID)
	}
	return ids
}

// dump returns everything a copy of the database would hold: the SQLite
// files' bytes, or pg_dump's output for the test's schema.
func dump(t testing.TB, db *store.DB, e *env) []byte {
	if db.Dialect == store.Postgres {
		out, err := exec.Command("pg_dump", "--schema="+db.Schema(), storetest.PostgresURL()).Output()
		if err != nil {
			t.Fatalf("pg_dump: %v", err)
		}
		return out
	}
	var all []byte
	var path string
	db.Read.QueryRow(`SELECT file FROM pragma_database_list WHERE name = 'main'`).Scan(&path)
	for _, suffix := range []string{"", "-wal", "-shm"} {
		b, _ := os.ReadFile(path + suffix)
		all = append(all, b...)
	}
	if len(all) == 0 {
		t.Fatal("no database bytes read")
	}
	return all
}

func TestCopiesHoldNoClearSensitiveValue(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		e := start(t, db)
		withSensitive(e)
		b := dump(t, db, e)
		if !bytes.Contains(b, []byte("a@example.com")) {
			t.Fatal("the copy does not hold the contacts at all")
		}
		for _, s := range secrets {
			if bytes.Contains(b, []byte(s)) {
				t.Fatalf("a copy of the database holds %s in the clear", s)
			}
		}
	})
}

// revealer is a client with a token that may reveal.
func (e *env) revealer() *env {
	secret, _, err := e.a.Tokens.Create(context.Background(), audit.Actor{Kind: "user"}, "billing", nil, auth.ScopeReveal)
	if err != nil {
		e.t.Fatal(err)
	}
	cp := *e
	cp.token = secret
	return &cp
}

// accessEntries counts access-log entries, read with a token that may.
func accessEntries(e *env, query string) int {
	var page struct{ Items []any }
	e.revealer().api("GET", "/api/v1/access-log?"+query, "", 200, &page)
	return len(page.Items)
}

func TestRevealNeedsTheScopeAndIsLogged(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		e := start(t, db)
		ids := withSensitive(e)
		e.api("POST", "/api/v1/contacts/"+ids[0]+"/fields/national_id/reveal", "", 403, nil)
		if n := accessEntries(e, ""); n != 0 {
			t.Fatalf("a refused reveal wrote %d entries", n)
		}
		billing := e.revealer()
		var r struct{ Value string }
		billing.api("POST", "/api/v1/contacts/"+ids[0]+"/fields/national_id/reveal", "", 200, &r)
		if r.Value != "198501011234" {
			t.Fatalf("revealed %q", r.Value)
		}
		billing.api("POST", "/api/v1/contacts/"+ids[2]+"/fields/national_id/reveal", "", 404, nil) // no value
		if n := accessEntries(e, "contact="+ids[0]+"&field=national_id"); n != 1 {
			t.Fatalf("one reveal wrote %d entries", n)
		}
		if n := accessEntries(e, "field=card_number"); n != 0 {
			t.Fatalf("access log filter by field: %d", n)
		}
		e.api("GET", "/api/v1/access-log", "", 403, nil) // reading the log needs the scope too
		// Look-up by the exact value, through the blind index, for a token
		// that may reveal; others cannot use it to guess values.
		var page struct{ Items []struct{ ID string } }
		billing.api("GET", "/api/v1/contacts?field.national_id=199006155678", "", 200, &page)
		if len(page.Items) != 1 || page.Items[0].ID != ids[1] {
			t.Fatalf("look-up by value: %+v", page.Items)
		}
		if n := accessEntries(e, "field=national_id"); n != 2 { // the reveal and the look-up
			t.Fatalf("a value look-up was not logged: %d entries", n)
		}
		e.api("GET", "/api/v1/contacts?field.national_id=199006155678", "", 400, nil)
		e.api("POST", "/api/v1/contacts/count", `{"filter":"national_id == \"199006155678\""}`, 400, nil)
		billing.api("POST", "/api/v1/contacts/count", `{"filter":"national_id in [\"199006155678\", \"198501011234\"]"}`, 400, nil)
		billing.api("POST", "/api/v1/contacts/count", `{"filter":"national_id != \"199006155678\""}`, 400, nil)
		e.api("GET", "/api/v1/contacts?filter="+strings.ReplaceAll(`national_id endsWith "5678"`, " ", "%20"), "", 200, &page)
		if len(page.Items) != 1 {
			t.Fatalf("search on the visible characters: %+v", page.Items)
		}
		e.api("GET", "/api/v1/contacts?filter="+strings.ReplaceAll(`national_id contains "0061"`, " ", "%20"), "", 200, &page)
		if len(page.Items) != 0 {
			t.Fatal("a search matched hidden characters")
		}
	})
}

// TestRevealReasonOverTheAPI: an API reveal may give a reason in its
// body, which the access log and the contact's export keep; without a
// body it still works (a CRM that syncs values does not break). A bad
// reason is refused, naming the field, and reveals and logs nothing.
func TestRevealReasonOverTheAPI(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		e := start(t, db)
		ids := withSensitive(e)
		billing := e.revealer()
		reveal := "/api/v1/contacts/" + ids[0] + "/fields/national_id/reveal"
		for _, c := range []struct{ name, body, code string }{
			{"too long", `{"reason":"` + strings.Repeat("x", 201) + `"}`, "invalid"},
			{"a line break", `{"reason":"first line\nsecond line"}`, "line_break"},
			{"a control character", `{"reason":"bell \u0007"}`, "invalid"},
			{"not text", `{"reason":42}`, "invalid"},
			{"an unknown field", `{"why":"support ticket"}`, "unknown_field"},
		} {
			res, b := billing.call("POST", reveal, c.body)
			var body struct {
				Error struct{ Code, Field, Message string }
			}
			json.Unmarshal(b, &body)
			wantField := "reason"
			if c.code == "unknown_field" {
				wantField = "why"
			}
			if res.StatusCode != 400 || body.Error.Code != c.code || body.Error.Field != wantField || strings.Contains(string(b), "198501011234") {
				t.Errorf("a reason with %s: %d %s", c.name, res.StatusCode, b)
			}
		}
		if n := accessEntries(e, ""); n != 0 {
			t.Fatalf("refused reveals wrote %d entries", n)
		}
		var r struct{ Value string }
		billing.api("POST", reveal, `{"reason":"  Invoice dispute, ticket 4711  "}`, 200, &r)
		billing.api("POST", reveal, "", 200, &r)
		billing.api("POST", reveal, `{"reason":"   "}`, 200, &r)
		billing.api("POST", reveal, `{}`, 200, &r)
		if r.Value != "198501011234" {
			t.Fatalf("revealed %q", r.Value)
		}
		var page struct{ Items []struct{ Reason string } }
		billing.api("GET", "/api/v1/access-log?contact="+ids[0], "", 200, &page)
		var reasons []string
		for _, it := range page.Items {
			reasons = append(reasons, it.Reason)
		}
		if got := strings.Join(reasons, "|"); got != "|||Invoice dispute, ticket 4711" { // newest first
			t.Fatalf("reasons in the access log: %q", got)
		}
		var x struct {
			AccessLog []struct{ Field, What, Reason string } `json:"access_log"`
		}
		if err := json.Unmarshal(billing.download("/api/v1/contacts/"+ids[0]+"/export", "application/json"), &x); err != nil {
			t.Fatal(err)
		}
		if len(x.AccessLog) < 1 || x.AccessLog[0].What != "Revealed national_id" || x.AccessLog[0].Reason != "Invoice dispute, ticket 4711" {
			t.Fatalf("the export's access log: %+v", x.AccessLog)
		}
	})
}

func TestSwappedCiphertextsDoNotDecrypt(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		e := start(t, db)
		ids := withSensitive(e)
		exec := func(q string, args ...any) {
			if err := db.Write(context.Background(), func(tx *store.Tx) error { _, err := tx.Exec(q, args...); return err }); err != nil {
				t.Fatal(err)
			}
		}
		// The second contact's value copied onto the first, and the card
		// number's ciphertext copied into the national id.
		exec(`UPDATE sensitive_values SET ciphertext = (SELECT ciphertext FROM sensitive_values WHERE contact_id = $2 AND field = 'national_id')
			WHERE contact_id = $1 AND field = 'national_id'`, ids[0], ids[1])
		exec(`INSERT INTO sensitive_values (contact_id, field, ciphertext, blind_index, masked, updated_at)
			SELECT contact_id, 'national_id', ciphertext, blind_index, masked, updated_at FROM sensitive_values
			WHERE contact_id = $1 AND field = 'card_number'
			ON CONFLICT (contact_id, field) DO NOTHING`, ids[1])
		exec(`UPDATE sensitive_values SET ciphertext = (SELECT ciphertext FROM sensitive_values WHERE contact_id = $1 AND field = 'card_number')
			WHERE contact_id = $1 AND field = 'national_id' AND $2 = $2`, ids[0], ids[1])
		billing := e.revealer()
		billing.api("POST", "/api/v1/contacts/"+ids[0]+"/fields/national_id/reveal", "", 500, nil)
		exec(`UPDATE sensitive_values SET ciphertext = (SELECT ciphertext FROM sensitive_values WHERE contact_id = $2 AND field = 'national_id')
			WHERE contact_id = $1 AND field = 'national_id'`, ids[0], ids[1])
		billing.api("POST", "/api/v1/contacts/"+ids[0]+"/fields/national_id/reveal", "", 500, nil)
		if n := accessEntries(e, ""); n != 0 {
			t.Fatalf("failed reveals wrote %d entries", n)
		}
	})
}

func TestRotationLeavesNothingUnderTheOldKey(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		e := start(t, db)
		ids := withSensitive(e)
		var before []int64
		rows, _ := db.Read.Query(`SELECT DISTINCT key_id FROM contact_keys`)
		for rows.Next() {
			var id int64
			rows.Scan(&id)
			before = append(before, id)
		}
		rows.Close()
		n, err := e.a.Contacts.RotateKeys(context.Background())
		if err != nil || n != 2 {
			t.Fatalf("rotate: %d, %v", n, err)
		}
		if len(e.a.Contacts.Vault.KeyIDs()) != 2 {
			t.Fatal("rotation destroyed the old key before retire")
		}
		if err := e.a.Contacts.RetireKeys(context.Background()); err != nil {
			t.Fatal(err)
		}
		var old int
		db.Read.QueryRow(`SELECT count(*) FROM contact_keys WHERE key_id = $1`, before[0]).Scan(&old)
		if old != 0 || len(e.a.Contacts.Vault.KeyIDs()) != 1 || int64(e.a.Contacts.Vault.PrimaryKeyID()) == before[0] {
			t.Fatalf("after rotation: %d keys under the old key, keyset %v", old, e.a.Contacts.Vault.KeyIDs())
		}
		billing := e.revealer()
		for i, want := range map[int]string{0: "198501011234", 1: "199006155678"} {
			var r struct{ Value string }
			billing.api("POST", "/api/v1/contacts/"+ids[i]+"/fields/national_id/reveal", "", 200, &r)
			if r.Value != want {
				t.Fatalf("after rotation %s reads %q", ids[i], r.Value)
			}
		}
	})
}

func TestEncryptingExistingValues(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		e := start(t, db)
		e.api("POST", "/api/v1/fields", `{"name":"passport","type":"text"}`, 201, nil)
		var c struct{ ID string }
		e.api("POST", "/api/v1/contacts", `{"email":"p@example.com","fields":{"passport":"X1234567"}}`, 201, &c)
		e.api("PATCH", "/api/v1/fields/passport", `{"sensitive":true}`, 200, nil)
		var got struct{ Fields map[string]any }
		e.api("GET", "/api/v1/contacts/"+c.ID, "", 200, &got)
		if got.Fields["passport"] != "••••4567" {
			t.Fatalf("before the job ran: %v", got.Fields)
		}
		// The job runs in the background; drive the runner too until the
		// field is marked done, so the test waits on the outcome.
		deadline := time.Now().Add(20 * time.Second)
		for {
			var done sql.NullInt64
			db.Read.QueryRow(`SELECT encrypted_at FROM field_definitions WHERE name = 'passport'`).Scan(&done)
			if done.Valid {
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("the encryption job did not finish")
			}
			if _, err := e.a.Jobs.RunDue(context.Background()); err != nil {
				t.Fatal(err)
			}
		}
		if db.Dialect == store.SQLite && bytes.Contains(dump(t, db, e), []byte("X1234567")) {
			t.Fatal("the database files still hold the value in the clear after the job")
		}
		var clear int
		db.Read.QueryRow(`SELECT count(*) FROM contacts WHERE fields LIKE '%X1234567%'`).Scan(&clear)
		if db.Dialect == store.Postgres {
			db.Read.QueryRow(`SELECT count(*) FROM contacts WHERE fields::text LIKE '%X1234567%'`).Scan(&clear)
		}
		if clear != 0 {
			t.Fatal("the clear value is still in the contact")
		}
		e.api("GET", "/api/v1/contacts/"+c.ID, "", 200, &got)
		var r struct{ Value string }
		e.revealer().api("POST", "/api/v1/contacts/"+c.ID+"/fields/passport/reveal", "", 200, &r)
		if got.Fields["passport"] != "••••4567" || r.Value != "X1234567" {
			t.Fatalf("after the job: %v, revealed %q", got.Fields, r.Value)
		}
		e.api("PATCH", "/api/v1/fields/passport", `{"sensitive":false}`, 422, nil)
	})
}

// cardContact is a contact as the API returns it.
type cardContact struct {
	ID     string
	Fields map[string]any
}

// cardOnFile defines a sensitive card number tied to a "Card on file"
// purpose, and creates a contact with a card number and that consent in
// the given state, in one request.
func cardOnFile(e *env, email, state string) *cardContact {
	e.api("POST", "/api/v1/purposes", `{"name":"Card on file","legal_basis":"consent","text":"Keep my card number"}`, 201, nil)
	e.api("POST", "/api/v1/fields", `{"name":"card_number","type":"text","sensitive":true,"storage_purpose":"Card on file"}`, 201, nil)
	c := &cardContact{}
	e.api("POST", "/api/v1/contacts", `{"email":"`+email+`","fields":{"card_number":"4111111111111111"},
		"consents":[{"purpose":"Card on file","state":"`+state+`","source":"Web form"}]}`, 201, c)
	return c
}

func TestWithdrawnStorageConsentErasesAndLocks(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		e := start(t, db)
		c := cardOnFile(e, "k@example.com", "granted")
		e.api("POST", "/api/v1/contacts/"+c.ID+"/consents", `{"purpose":"Card on file","state":"withdrawn","source":"Email"}`, 201, nil)
		c.Fields = nil
		e.api("GET", "/api/v1/contacts/"+c.ID, "", 200, &c)
		if _, has := c.Fields["card_number"]; has {
			t.Fatalf("withdrawing storage consent kept the value: %v", c.Fields)
		}
		e.api("PATCH", "/api/v1/contacts/"+c.ID, `{"fields":{"card_number":"5500000000000004"}}`, 423, nil)
		e.api("POST", "/api/v1/contacts/"+c.ID+"/consents", `{"purpose":"Card on file","state":"granted","source":"Email"}`, 201, nil)
		e.api("PATCH", "/api/v1/contacts/"+c.ID, `{"fields":{"card_number":"5500000000000004"}}`, 200, nil)
	})
}

// TestStartRefusedWithoutTheRightKeyset: once encrypted data exists, the
// service does not start without its keyset, with another keyset, or with a
// wrong master key.
func TestStartRefusedWithoutTheRightKeyset(t *testing.T) {
	dir := t.TempDir()
	dbPath := filepath.Join(dir, "data", "consentry.db")
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	cfg := &config.Config{DatabaseURL: dbPath, BaseURL: "http://x", MailFrom: "a@b.example"}
	a, err := app.Open(context.Background(), cfg, log) // generates keys beside the database
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Contacts.CreateField(context.Background(), audit.Actor{Kind: "user"}, contactField()); err != nil {
		t.Fatal(err)
	}
	email := "s@example.com"
	if _, err := a.Contacts.Create(context.Background(), newContact(email)); err != nil {
		t.Fatal(err)
	}
	a.Close()

	other := filepath.Join(dir, "other.json")
	otherKey := vault.NewMasterKey()
	vault.Create(other, otherKey)
	for name, c := range map[string]*config.Config{
		"another keyset":   {DatabaseURL: dbPath, BaseURL: "http://x", MailFrom: "a@b.example", KeysetFile: other, MasterKey: otherKey},
		"wrong master key": {DatabaseURL: dbPath, BaseURL: "http://x", MailFrom: "a@b.example", KeysetFile: cfg.KeysetFile, MasterKey: vault.NewMasterKey()},
	} {
		if a, err := app.Open(context.Background(), c, log); err == nil {
			a.Close()
			t.Fatalf("%s: started", name)
		} else if !strings.Contains(err.Error(), "CONSENTRY_") {
			t.Fatalf("%s: the error does not name the setting: %v", name, err)
		}
	}
	os.Remove(filepath.Join(dir, "data", "master.key"))
	if a, err := app.Open(context.Background(), &config.Config{DatabaseURL: dbPath, BaseURL: "http://x", MailFrom: "a@b.example"}, log); err == nil {
		a.Close()
		t.Fatal("started without the master key")
	}
}

// TestStaleKeysetInstanceMakesNoDataKeys: after a rotation elsewhere, an
// instance whose keyset file is older refuses to wrap new data keys under
// a key about to be retired, and a keyset without a key the data uses is
// refused at start.
func TestStaleKeysetInstanceMakesNoDataKeys(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		e := start(t, db)
		withSensitive(e)
		// A second instance with its own copy of today's keyset file.
		stale := filepath.Join(t.TempDir(), "stale.json")
		b, _ := os.ReadFile(e.a.Config.KeysetFile)
		os.WriteFile(stale, b, 0o600)
		cfg := *e.a.Config
		cfg.KeysetFile = stale
		other, err := app.New(&cfg, slog.New(slog.DiscardHandler), db)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := e.a.Contacts.RotateKeys(context.Background()); err != nil {
			t.Fatal(err)
		}
		_, err = other.Contacts.Create(context.Background(), newContact("late@example.com"))
		if err == nil || !strings.Contains(err.Error(), "not the current one") {
			t.Fatalf("a stale instance wrapped a data key: %v", err)
		}
		if err := e.a.Contacts.RetireKeys(context.Background()); err != nil {
			t.Fatal(err)
		}
		if _, err := app.New(&cfg, slog.New(slog.DiscardHandler), db); err == nil || !strings.Contains(err.Error(), "CONSENTRY_KEYSET_FILE") {
			t.Fatalf("an instance started on a keyset without the current key: %v", err)
		}
	})
}

// TestCreateWithWithdrawnStorageConsentStoresNothing: a value and the
// withdrawal of the consent it needs, in one request: the value is erased.
func TestCreateWithWithdrawnStorageConsentStoresNothing(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		e := start(t, db)
		cardOnFile(e, "w@example.com", "withdrawn")
		var n int
		db.Read.QueryRow(`SELECT count(*) FROM sensitive_values`).Scan(&n)
		if n != 0 {
			t.Fatalf("%d values stored against a withdrawn consent", n)
		}
	})
}
