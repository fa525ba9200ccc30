package main

import (
	"strings"
	"testing"
	"time"

	"github.com/consentry/consentry/internal/imports"
	"github.com/consentry/consentry/internal/imports/importstest"
	"github.com/consentry/consentry/internal/store"
)

// importKillRows is the size of the file TestImportSurvivesKill9 imports:
// large enough that the import is still running when the test has seen
// its first rows written.
const importKillRows = 30000

// TestImportSurvivesKill9 kills `consentry serve` with SIGKILL while it
// runs an import, as soon as the import has written rows, and starts it
// again. The import resumes by itself, at the first row not written, and
// ends done with every row's contact created exactly once. On SQLite the
// restarted process takes the job up at once; on PostgreSQL, where it
// cannot tell that the killed instance is gone, once the job's lease has
// run out unrenewed (jobs.DefaultLease).
func TestImportSurvivesKill9(t *testing.T) {
	eachKillRun(t, "kills it during an import", func(t *testing.T, bin string, db *store.DB, env []string) {
		importWorld(t, db)
		code, secret, stderr := runBinary(t, bin, env, "token", "create", "--name", "import kill")
		if code != 0 {
			t.Fatalf("token create: %d %s", code, stderr)
		}
		c := startChild(t, bin, env)
		api := &apiClient{t: t, token: strings.TrimSpace(secret), base: "http://" + c.addr}
		imp := uploadStream(t, api, importstest.File(importKillRows))
		api.do("POST", "/api/v1/imports/"+imp.ID+"/start", importstest.Definition(), nil)

		var got imports.Import
		poll := time.NewTicker(20 * time.Millisecond)
		defer poll.Stop()
		for got.Created == 0 {
			<-poll.C
			api.do("GET", "/api/v1/imports/"+imp.ID, nil, &got)
		}
		c.kill(t)
		if got.Status != imports.StatusRunning || got.Created >= importKillRows {
			t.Fatalf("the import was %s with %d rows created when the service was killed; the test needs it running", got.Status, got.Created)
		}
		t.Logf("killed with %d of %d rows created", got.Created, importKillRows)

		killed := time.Now()
		c = startChild(t, bin, env)
		api.base = "http://" + c.addr
		deadline := killed.Add(3 * time.Minute)
		for got.Status == imports.StatusQueued || got.Status == imports.StatusRunning {
			if time.Now().After(deadline) {
				t.Fatalf("the import did not end within 3 minutes of the restart: %+v", got)
			}
			<-poll.C
			api.do("GET", "/api/v1/imports/"+imp.ID, nil, &got)
		}
		t.Logf("ended %s after the restart", time.Since(killed).Round(time.Second))
		if got.Status != imports.StatusDone || got.Created != importKillRows || got.Failed != 0 || got.Skipped != 0 {
			t.Fatalf("after the restart the import ended %s: created %d of %d, failed %d, skipped %d, error %q",
				got.Status, got.Created, importKillRows, got.Failed, got.Skipped, got.Error)
		}
		var contacts, distinct int
		if err := db.Read.QueryRow(`SELECT count(*), count(DISTINCT email_key) FROM contacts WHERE email_key LIKE 'person%@example.com'`).
			Scan(&contacts, &distinct); err != nil {
			t.Fatal(err)
		}
		if contacts != importKillRows || distinct != importKillRows {
			t.Fatalf("%d contacts (%d addresses) from the file, want %d each", contacts, distinct, importKillRows)
		}
		c.stop(t)
	})
}
