package api_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/consentry/consentry/internal/imports"
	"github.com/consentry/consentry/internal/store"
	"github.com/consentry/consentry/internal/store/storetest"
)

// What an import wrote says so through the API: the opt-in history entry
// has the method import and the import's id in its evidence, as the
// consent history has, and every event of the import's contact names the
// import, as an integrator reads them.
func TestImportIsInTheOptInHistoryAndTheEvents(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		e := newEnv(t, db)
		r := e.upload(t, "/api/v1/imports?name=leads.csv", "text/csv", strings.NewReader("E-mail,Nieuwsbrief\nanna@example.com,ja\n"))
		if r.status != 201 {
			t.Fatalf("upload: %d %s", r.status, r.body)
		}
		imp := decodeAs[imports.Import](t, r.body)
		def := `{"source":"API","columns":[{"column":"E-mail","field":"email"}],"opt_in_status":{"value":"single_opt_in_user"},
			"consents":[{"purpose":"E-marketing","column":"Nieuwsbrief","legal_basis":"consent","collected_at":"2026-11-01","text_version":1}]}`
		if r := e.do(t, "POST", "/api/v1/imports/"+imp.ID+"/start", def, ""); r.status != 202 {
			t.Fatalf("start: %d %s", r.status, r.body)
		}
		runJobs(t, e)
		var found struct{ Items []struct{ ID string } }
		if err := json.Unmarshal(e.get(t, "/api/v1/contacts?email=anna@example.com"), &found); err != nil || len(found.Items) != 1 {
			t.Fatalf("the imported contact: %+v %v", found, err)
		}
		id := found.Items[0].ID
		var optIn struct {
			History []struct {
				To       string
				Evidence struct {
					Method   string `json:"method"`
					ImportID string `json:"import_id"`
				}
			}
		}
		if err := json.Unmarshal(e.get(t, "/api/v1/contacts/"+id+"/opt-in"), &optIn); err != nil || len(optIn.History) != 1 ||
			optIn.History[0].To != "single_opt_in_user" || optIn.History[0].Evidence.Method != "import" ||
			optIn.History[0].Evidence.ImportID != imp.ID {
			t.Fatalf("the opt-in history: %+v %v", optIn, err)
		}
		var evs struct {
			Items []struct {
				Type string
				Data map[string]any
			}
		}
		if err := json.Unmarshal(e.get(t, "/api/v1/events?contact="+id), &evs); err != nil || len(evs.Items) < 3 {
			t.Fatalf("the contact's events: %+v %v", evs, err)
		}
		for _, ev := range evs.Items {
			if ev.Data["import_id"] != imp.ID {
				t.Errorf("%s does not name the import: %v", ev.Type, ev.Data)
			}
		}
	})
}
