package app_test

import (
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/consentry/consentry/internal/store"
	"github.com/consentry/consentry/internal/store/storetest"
)

// TestSensitiveLookUpOnlyFromTheAdminUI: a contact-list filter that
// compares a sensitive value is a look-up written to the access log in the
// user's name, so it runs only for a request from the admin UI itself
// (Sec-Fetch-Site same-origin) or a client that sends no Sec-Fetch-Site.
// From another site, even one under the same domain, or from a link
// opened outside the browser, it is refused and nothing is logged.
func TestSensitiveLookUpOnlyFromTheAdminUI(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		e := start(t, db)
		admin := e.firstAdmin()
		withSensitive(e)
		list := e.srv.URL + "/admin/contacts?filter=" + url.QueryEscape(`national_id == "198501011234"`)
		get := func(site string) (int, string) {
			req, _ := http.NewRequest("GET", list, nil)
			if site != "" {
				req.Header.Set("Sec-Fetch-Site", site)
			}
			res, err := admin.client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer res.Body.Close()
			b, _ := io.ReadAll(res.Body)
			return res.StatusCode, string(b)
		}
		for _, site := range []string{"same-site", "cross-site", "none"} {
			code, body := get(site)
			if code == 200 || strings.Contains(body, "a@example.com") {
				t.Fatalf("%s: the look-up ran: %d", site, code)
			}
			if n := count(t, db, `SELECT count(*) FROM access_log`); n != 0 {
				t.Fatalf("%s: %d access-log entries", site, n)
			}
		}
		for i, site := range []string{"same-origin", ""} {
			code, body := get(site)
			if code != 200 || !strings.Contains(body, "a@example.com") || strings.Contains(body, "b@example.com") {
				t.Fatalf("%q: %d %s", site, code, body)
			}
			if n := count(t, db, `SELECT count(*) FROM access_log`); n != i+1 {
				t.Fatalf("%q: %d access-log entries", site, n)
			}
		}
	})
}

// TestSuccessfulSignInsDoNotCount: only failed sign-ins count against the
// limits, so thirty correct sign-ins in a row from one address all
// succeed; parallel wrong guesses are still cut off, since each counts
// before its password is checked.
func TestSuccessfulSignInsDoNotCount(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		e := start(t, db)
		e.firstAdmin()
		for i := range 30 {
			v := e.visitor()
			code, _ := v.post(e.srv.URL+"/admin/login", url.Values{"email": {"ada@acme.example"}, "password": {"correct horse battery"}})
			if code != 200 || v.last.Request.URL.Path != "/admin/" {
				t.Fatalf("correct sign-in %d: %d at %s", i+1, code, v.last.Request.URL)
			}
		}
		if refused := parallelWrongPasswords(e, "ada@acme.example"); refused < 20 {
			t.Fatalf("only %d of 30 parallel wrong passwords were refused", refused)
		}
	})
}
