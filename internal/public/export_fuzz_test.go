package public

import (
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/consentry/consentry/internal/auth"
)

// FuzzExportDownload posts arbitrary forms to the download address, with
// the contact's valid link or an arbitrary token: never a server error; a
// file only for a valid link and format, and then with its access-log
// entry; anything else writes nothing.
func FuzzExportDownload(f *testing.F) {
	fs := newFuzzSite(f)
	for _, seed := range []string{"format=json", "format=csv", "format=xlsx", "format=", "format=JSON", "format=xlsx&format=csv", "%zz",
		"format=" + strings.Repeat("x", 5000), ""} {
		f.Add(true, "", seed)
		f.Add(false, "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", seed)
	}
	count := func(t *testing.T) int {
		var n int
		if err := fs.db.Read.QueryRow(`SELECT count(*) FROM access_log`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	f.Fuzz(func(t *testing.T, valid bool, token, body string) {
		if valid {
			token = fs.links[auth.PurposeExport]
		}
		before := count(t)
		req := httptest.NewRequest("POST", "/", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.URL = &url.URL{Path: "/p/export/" + token}
		rec := fs.serve(req)
		if rec.Code >= 500 {
			t.Fatalf("POST %q: %d", body, rec.Code)
		}
		file := rec.Header().Get("Content-Disposition") != ""
		form, _ := url.ParseQuery(body)
		ok := valid && (form.Get("format") == "json" || form.Get("format") == "csv" || form.Get("format") == "xlsx") && len(body) <= 4<<10
		if file != ok || (count(t) > before) != ok {
			t.Fatalf("POST %q (valid link %v): file %v, %d access-log entries (was %d)", body, valid, file, count(t), before)
		}
	})
}
