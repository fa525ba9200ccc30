package app_test

import (
	"context"
	"net/url"
	"strings"
	"testing"

	"github.com/consentry/consentry/internal/audit"
	"github.com/consentry/consentry/internal/consent"
	"github.com/consentry/consentry/internal/lists"
	"github.com/consentry/consentry/internal/store"
	"github.com/consentry/consentry/internal/store/storetest"
)

// TestListBoundToAPurpose: a list bound to a purpose (through the API) is
// its consent's channel: unsubscribing from it, by a campaign's one-click
// link or through the API, writes a withdrawn consent record for that
// purpose, with the actor and evidence of the unsubscribe, and leaves the
// other purposes; a list bound to none changes no consent. An unknown
// purpose is refused naming the field, and nothing changes.
func TestListBoundToAPurpose(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		e := start(t, db)
		ctx := context.Background()
		e.campaignToken()
		if _, err := e.a.Consent.CreatePurpose(ctx, audit.Actor{Kind: "user"}, consent.PurposeInput{Name: ptr("Member news"), LegalBasis: ptr("consent"),
			Text: ptr("We send members our monthly news.")}); err != nil {
			t.Fatal(err)
		}
		var news, plain lists.List
		e.api("POST", "/api/v1/lists", `{"name":"Members","purpose":"member NEWS"}`, 201, &news)
		e.api("POST", "/api/v1/lists", `{"name":"Events"}`, 201, &plain)
		if news.Purpose != "Member news" || plain.Purpose != "" {
			t.Fatalf("purposes: %q %q", news.Purpose, plain.Purpose)
		}
		var bad struct{ Error struct{ Field string } }
		e.api("PATCH", "/api/v1/lists/"+plain.ID, `{"name":"Renamed","purpose":"No such purpose"}`, 400, &bad)
		if bad.Error.Field != "purpose" {
			t.Fatalf("an unknown purpose: %+v", bad)
		}
		if l, err := e.a.Lists.Get(ctx, plain.ID); err != nil || l.Name != "Events" || l.Purpose != "" {
			t.Fatalf("after a refused change: %+v %v", l, err)
		}

		state := func(contactID, purpose string) consent.Record {
			t.Helper()
			h, err := e.a.Consent.History(ctx, contactID)
			if err != nil {
				t.Fatal(err)
			}
			var last consent.Record
			for _, r := range h {
				if r.PurposeName == purpose {
					last = r
				}
			}
			return last
		}
		anna := campaignPerson(t, e, "anna@example.com", "E-marketing", "Member news")
		bo := campaignPerson(t, e, "bo@example.com", "E-marketing", "Member news")
		for _, id := range []string{anna, bo} {
			for _, l := range []string{"Members", "Events"} {
				if _, err := e.a.Lists.Set(ctx, id, l, lists.Subscribed, lists.SourceAPI, nil); err != nil {
					t.Fatal(err)
				}
			}
		}

		// A list bound to none: its unsubscribe changes no consent.
		e.api("PUT", "/api/v1/contacts/"+bo+"/lists/Events", `{"state":"unsubscribed"}`, 200, nil)
		if r := state(bo, "Member news"); r.State != consent.StateGranted {
			t.Fatalf("after leaving a list bound to none: %+v", r)
		}
		// Through the API: withdrawn, as the API client's doing.
		e.api("PUT", "/api/v1/contacts/"+bo+"/lists/Members", `{"state":"unsubscribed"}`, 200, nil)
		r := state(bo, "Member news")
		if r.State != consent.StateWithdrawn || r.Source != "API" || r.Actor.Kind != consent.ActorAPIToken || r.Evidence.Method != consent.MethodAPI {
			t.Fatalf("after leaving Members through the API: %+v", r)
		}
		if r := state(bo, "E-marketing"); r.State != consent.StateGranted {
			t.Fatalf("E-marketing after leaving Members: %+v", r)
		}

		// By a campaign's one-click link: withdrawn, as the contact's doing.
		m := sendCampaign(t, e, "Spring", []string{"Members"}, "", 1)[0]
		if !strings.Contains(strings.Join(m.To, ","), "anna@example.com") {
			t.Fatalf("sent to %v", m.To)
		}
		if got := oneClick(t, unsubscribeLink(m)); got != 200 {
			t.Fatalf("one-click: %d", got)
		}
		r = state(anna, "Member news")
		if r.State != consent.StateWithdrawn || r.Actor.Kind != consent.ActorContact || r.Actor.ID != anna || r.Evidence.Method != consent.MethodUnsubscribeLink {
			t.Fatalf("after the one-click unsubscribe: %+v", r)
		}
	})
}

// TestBoundListLeftOnThePreferencesPage: unsubscribing on the preferences
// page from a list bound to a purpose withdraws that consent once the
// change is confirmed, as the contact's doing with the page's evidence.
func TestBoundListLeftOnThePreferencesPage(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		e := start(t, db)
		id, link := pageSetUp(e)
		e.api("POST", "/api/v1/contacts/"+id+"/consents", `{"purpose":"E-marketing","state":"granted","source":"Web form"}`, 201, nil)
		e.api("PATCH", "/api/v1/lists/Newsletter", `{"purpose":"E-marketing"}`, 200, nil)
		v := e.visitor()
		v.get(link)
		if code, body := v.post(e.srv.URL+"/p", url.Values{"action": {"save"}, "shown": {listID(e, "Newsletter")}}); code != 200 || !strings.Contains(body, "Please check your email") {
			t.Fatalf("saving: %d %s", code, body)
		}
		msg := e.smtp.Wait(t, 1)[0]
		e.page("POST", e.srv.URL+confirmLinkRE.FindString(msg.Text), "en")
		h, err := e.a.Consent.History(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		last := h[len(h)-1]
		if last.PurposeName != "E-marketing" || last.State != consent.StateWithdrawn || last.Actor.Kind != consent.ActorContact ||
			last.Source != "Preferences page" || last.Evidence.Method != consent.MethodPreferencesPage {
			t.Fatalf("last consent record: %+v", last)
		}
		e.ledgerVerifies()
	})
}
