package app_test

import (
	"strings"
	"testing"

	"github.com/consentry/consentry/internal/store"
	"github.com/consentry/consentry/internal/store/storetest"
)

// TestListTotals: the requests, outbox and access log pages say how many
// entries match their search on every page, as the contact list does.
func TestListTotals(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		e := start(t, db)
		admin := e.firstAdmin()
		var a, b struct{ ID string }
		e.api("POST", "/api/v1/contacts", `{"email":"ola@example.com"}`, 201, &a)
		e.api("POST", "/api/v1/contacts", `{"email":"per@example.com"}`, 201, &b)
		e.api("POST", "/api/v1/requests", `{"kind":"access","contact_id":"`+a.ID+`"}`, 201, nil)
		e.api("POST", "/api/v1/requests", `{"kind":"erasure","contact_id":"`+b.ID+`"}`, 201, nil)
		e.api("POST", "/api/v1/double-opt-in", `{"contact_ids":["`+a.ID+`","`+b.ID+`"]}`, 200, nil)
		e.smtp.Wait(t, 2)

		for _, tc := range []struct{ page, want string }{
			{"/admin/requests", `<p id="requests-total"><strong>2</strong> requests match; all shown.</p>`},
			{"/admin/requests?kind=erasure", `<p id="requests-total"><strong>1</strong> request matches; all shown.</p>`},
			{"/admin/outbox", `<p id="outbox-total"><strong>2</strong> emails match; all shown.</p>`},
			{"/admin/outbox?status=failed", `<p id="outbox-total"><strong>0</strong> emails match.</p>`},
			{"/admin/access-log", `<p id="access-total"><strong>0</strong> entries match.</p>`},
			{"/admin/contacts", `<p id="contacts-total"><strong>2</strong> contacts match; all shown.</p>`},
		} {
			if code, body := admin.get(e.srv.URL + tc.page); code != 200 || !strings.Contains(body, tc.want) {
				t.Errorf("%s: %d, lacks %s", tc.page, code, tc.want)
			}
		}
	})
}
