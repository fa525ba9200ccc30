package app_test

import (
	"context"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/consentry/consentry/internal/consent"
	"github.com/consentry/consentry/internal/contactstate"
	"github.com/consentry/consentry/internal/store"
	"github.com/consentry/consentry/internal/store/storetest"
)

var webformConfirmRE = regexp.MustCompile(`/f/confirm/[A-Za-z0-9_-]{43}`)

// signupForm defines, through the API, a form with first name, the
// marketing box, a consent box for "Share with partners" and the list
// "Newsletter", and returns its id; redirect, when set, is where a post
// leads.
func signupForm(e *env, redirect string) string {
	e.api("POST", "/api/v1/lists", `{"name":"Newsletter"}`, 201, nil)
	e.api("POST", "/api/v1/purposes", `{"name":"Share with partners","legal_basis":"consent","text":"Share my details with partners"}`, 201, nil)
	body := `{"name":"signup","title":"Sign up","fields":[{"name":"email"},{"name":"first_name"}],
		"lists":[{"list":"Newsletter"}],"consents":[{"purpose":"Share with partners"}],"marketing":{},
		"privacy_policy_url":"https://acme.example/privacy"`
	if redirect != "" {
		body += `,"redirect_url":"` + redirect + `"`
	}
	var form struct{ ID string }
	e.api("POST", "/api/v1/webforms", body+"}", 201, &form)
	return form.ID
}

// everything is a post that fills in and checks everything.
func everything(email, firstName string) url.Values {
	return url.Values{"email": {email}, "first_name": {firstName}, "marketing.checked": {"yes"}, "marketing.version": {"1"},
		"consents[0].checked": {"yes"}, "consents[0].version": {"1"}, "lists[0].checked": {"yes"}}
}

// answer is what a browser on another site gets back from a webform post,
// redirects not followed.
type answer struct {
	status int
	header http.Header
	body   string
}

func postForm(e *env, formID string, form url.Values) answer {
	e.t.Helper()
	req, _ := http.NewRequest("POST", e.srv.URL+"/f/"+formID, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", "https://acme.example")
	req.Header.Set("Sec-Fetch-Site", "cross-site")
	req.Header.Set("User-Agent", "Mozilla/5.0 (someone)")
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	res, err := client.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer res.Body.Close()
	if loc := res.Header.Get("Location"); res.StatusCode == http.StatusSeeOther && strings.HasPrefix(loc, "/f/sent?") {
		// The thanks is a page of its own (post/redirect/get): the
		// answer is the page the redirect leads to.
		res.Body.Close()
		if res, err = client.Get(e.srv.URL + loc); err != nil {
			e.t.Fatal(err)
		}
		defer res.Body.Close()
	}
	b, _ := io.ReadAll(res.Body)
	res.Header.Del("Date")
	return answer{res.StatusCode, res.Header, string(b)}
}

// contactState is what a post could change about a contact, as the API
// shows it.
type contactState struct {
	FirstName   string
	OptIn       string
	Consents    []string // purpose/state/method
	Lists       []string // list/status
	Invitations int
	OptInSteps  int
}

func stateOf(e *env, id string) contactState {
	e.t.Helper()
	var c struct {
		FirstName   string `json:"first_name"`
		OptInStatus string `json:"opt_in_status"`
	}
	e.api("GET", "/api/v1/contacts/"+id, "", 200, &c)
	var consents struct {
		History []struct {
			Purpose, State string
			Evidence       struct{ Method string }
		}
	}
	e.api("GET", "/api/v1/contacts/"+id+"/consents", "", 200, &consents)
	var subs []struct{ List, State string }
	e.api("GET", "/api/v1/contacts/"+id+"/lists", "", 200, &subs)
	var invs []struct{ Status string }
	e.api("GET", "/api/v1/contacts/"+id+"/double-opt-in", "", 200, &invs)
	var optIn struct{ History []struct{ To string } }
	e.api("GET", "/api/v1/contacts/"+id+"/opt-in", "", 200, &optIn)
	st := contactState{FirstName: c.FirstName, OptIn: c.OptInStatus, Invitations: len(invs), OptInSteps: len(optIn.History)}
	for _, h := range consents.History {
		st.Consents = append(st.Consents, h.Purpose+"/"+h.State+"/"+h.Evidence.Method)
	}
	for _, s := range subs {
		st.Lists = append(st.Lists, s.List+"/"+s.State)
	}
	return st
}

func same(a, b contactState) bool {
	return a.FirstName == b.FirstName && a.OptIn == b.OptIn && strings.Join(a.Consents, " ") == strings.Join(b.Consents, " ") &&
		strings.Join(a.Lists, " ") == strings.Join(b.Lists, " ") && a.Invitations == b.Invitations && a.OptInSteps == b.OptInSteps
}

// TestKnownAddressPostWaitsForItsOwner: a post naming a known address with
// another first name and every box checked changes nothing of the contact
// (name, opt-in status, consents, lists, invitations); the address gets
// the double opt-in email over SMTP, whose link shows the post and changes
// nothing until its button is pressed, which applies exactly the post,
// once, with the click's evidence.
func TestKnownAddressPostWaitsForItsOwner(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		e := start(t, db)
		form := signupForm(e, "")
		var kim struct{ ID string }
		e.api("POST", "/api/v1/contacts", `{"email":"kim@example.com","first_name":"Kim"}`, 201, &kim)
		before := stateOf(e, kim.ID)

		if a := postForm(e, form, everything("KIM@example.com", "Mallory")); a.status != 200 || !strings.Contains(a.body, "Thank you") {
			t.Fatalf("post: %d %s", a.status, a.body)
		}
		if after := stateOf(e, kim.ID); !same(before, after) {
			t.Fatalf("the post changed the contact:\n%+v\nwas\n%+v", after, before)
		}
		msg := e.smtp.Wait(t, 1)[0]
		link := webformConfirmRE.FindString(msg.Text)
		if msg.To[0] != "kim@example.com" || msg.Subject != "Please confirm your subscription" || link == "" ||
			!strings.Contains(msg.Text, "Hello Kim,") || strings.Contains(msg.Text, "Mallory") || !strings.Contains(msg.Text, "Subscribe to “Newsletter”") {
			t.Fatalf("email to %v, %q:\n%s", msg.To, msg.Subject, msg.Text)
		}
		var held []struct{ Status string }
		e.api("GET", "/api/v1/contacts/"+kim.ID+"/webform-posts", "", 200, &held)
		if len(held) != 1 || held[0].Status != "pending" {
			t.Fatalf("held posts: %+v", held)
		}

		// Opening the link shows the post and changes nothing.
		code, page := e.page("GET", e.srv.URL+link, "")
		if code != 200 || !strings.Contains(page, "First name: Mallory") || !strings.Contains(page, "Agree to “Share with partners”") {
			t.Fatalf("confirmation page: %d %s", code, page)
		}
		if after := stateOf(e, kim.ID); !same(before, after) {
			t.Fatalf("opening the link changed the contact: %+v", after)
		}

		v := e.visitor()
		code, page = v.post(e.srv.URL+link, url.Values{})
		if code != 200 || !strings.Contains(page, "This is now in effect") || !strings.Contains(page, `<a href="/p" id="back">Back to your preferences</a>`) {
			t.Fatalf("confirming: %d %s", code, page)
		}
		// The done page is a page of its own (post/redirect/get): a
		// reload shows it again and applies nothing more.
		applied := stateOf(e, kim.ID)
		if again, page2 := v.get(e.srv.URL + "/p/form-confirmed"); again != 200 || page2 != page {
			t.Fatalf("the reloaded done page: %d %s", again, page2)
		}
		if now := stateOf(e, kim.ID); !same(applied, now) {
			t.Fatalf("a reload changed the contact: %+v, was %+v", now, applied)
		}
		if code, page := v.get(e.srv.URL + "/p"); code != 200 || !strings.Contains(page, "kim@example.com") {
			t.Fatalf("back from the done page: %d %s", code, page)
		}
		after := stateOf(e, kim.ID)
		want := contactState{FirstName: "Mallory", OptIn: contactstate.DoubleOptIn, Lists: []string{"Newsletter/subscribed"}, OptInSteps: 2,
			Consents: []string{"E-marketing/granted/webform_confirmed", "Share with partners/granted/webform_confirmed"}}
		if !same(after, want) {
			t.Fatalf("after confirming:\n%+v\nwant\n%+v", after, want)
		}
		var consents struct {
			History []struct {
				Source      string
				TextVersion int `json:"text_version"`
				Actor       struct{ Kind string }
				Evidence    struct {
					IP                  string
					UserAgent           string `json:"user_agent"`
					ConfirmationTokenID string `json:"confirmation_token_id"`
				}
			}
		}
		e.api("GET", "/api/v1/contacts/"+kim.ID+"/consents", "", 200, &consents)
		for _, h := range consents.History {
			if h.Source != "Web form" || h.TextVersion != 1 || h.Actor.Kind != "contact" || h.Evidence.IP != "127.0.0.1" ||
				h.Evidence.UserAgent != "Mozilla/5.0 (visitor)" || h.Evidence.ConfirmationTokenID == "" {
				t.Fatalf("consent record: %+v", h)
			}
		}
		var optIn struct {
			History []struct {
				From, To string
				Evidence struct{ Method string }
			}
		}
		e.api("GET", "/api/v1/contacts/"+kim.ID+"/opt-in", "", 200, &optIn)
		if h := optIn.History; h[0].From != "none" || h[0].To != "single_opt_in_webform" || h[1].To != "double_opt_in" ||
			h[0].Evidence.Method != "webform_confirmed" || h[1].Evidence.Method != "webform_confirmed" {
			t.Fatalf("opt-in history: %+v", h)
		}

		// Once only.
		if _, page := e.page("POST", e.srv.URL+link, ""); !strings.Contains(page, "This link cannot be used") {
			t.Fatalf("the link worked twice: %s", page)
		}
		if again := stateOf(e, kim.ID); !same(again, after) {
			t.Fatalf("the second click changed something: %+v", again)
		}
		e.ledgerVerifies()
	})
}

// TestForgedPostCannotLiftAnOptOut: posts with the marketing box about a
// contact who opted out themselves and one a user opted out change
// neither; each address is emailed a link (the only way back in, R1).
// Only the contact who follows theirs is opted back in.
func TestForgedPostCannotLiftAnOptOut(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		e := start(t, db)
		form := signupForm(e, "")
		var own, byUser struct{ ID string }
		e.api("POST", "/api/v1/contacts", `{"email":"own@example.com"}`, 201, &own)
		e.api("POST", "/api/v1/contacts", `{"email":"user@example.com"}`, 201, &byUser)
		if _, err := e.a.Consent.SetOptIn(context.Background(), own.ID, consent.OptInInput{Status: contactstate.OptOutContact, Channel: consent.ChannelContact,
			Actor: consent.Actor{Kind: consent.ActorContact}, Evidence: consent.Evidence{Method: consent.MethodUnsubscribeLink}}); err != nil {
			t.Fatal(err)
		}
		e.api("POST", "/api/v1/contacts/"+byUser.ID+"/opt-in", `{"status":"opt_out_user"}`, 200, nil)
		ownBefore, userBefore := stateOf(e, own.ID), stateOf(e, byUser.ID)

		for _, email := range []string{"own@example.com", "user@example.com"} {
			if a := postForm(e, form, everything(email, "Forged")); a.status != 200 {
				t.Fatalf("post for %s: %d", email, a.status)
			}
		}
		if !same(stateOf(e, own.ID), ownBefore) || !same(stateOf(e, byUser.ID), userBefore) {
			t.Fatalf("a post changed an opted-out contact: %+v, %+v", stateOf(e, own.ID), stateOf(e, byUser.ID))
		}
		msgs := e.smtp.Wait(t, 2)
		links := map[string]string{}
		for _, m := range msgs {
			links[m.To[0]] = webformConfirmRE.FindString(m.Text)
		}
		if links["own@example.com"] == "" || links["user@example.com"] == "" {
			t.Fatalf("links: %v", links)
		}

		if code, page := e.page("POST", e.srv.URL+links["own@example.com"], ""); code != 200 {
			t.Fatalf("confirming: %d %s", code, page)
		}
		if st := stateOf(e, own.ID); st.OptIn != contactstate.DoubleOptIn || st.FirstName != "Forged" {
			t.Fatalf("the contact who followed their link: %+v", st)
		}
		if st := stateOf(e, byUser.ID); !same(st, userBefore) {
			t.Fatalf("the contact who did not: %+v", st)
		}
	})
}

// TestPostAnswersAlikeForKnownAndNewAddresses: the answer to a post is the
// same (status, headers, body) whether the address is new, known, or
// known and opted out, for the thank-you page and for a redirect.
func TestPostAnswersAlikeForKnownAndNewAddresses(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		e := start(t, db)
		form := signupForm(e, "")
		e.api("POST", "/api/v1/contacts", `{"email":"known@example.com","first_name":"Kim"}`, 201, nil)
		var out struct{ ID string }
		e.api("POST", "/api/v1/contacts", `{"email":"out@example.com"}`, 201, &out)
		e.api("POST", "/api/v1/contacts/"+out.ID+"/opt-in", `{"status":"opt_out_user"}`, 200, nil)
		check := func(what string) {
			t.Helper()
			want := postForm(e, form, everything("new-"+what+"@example.com", "Ann"))
			for _, email := range []string{"known@example.com", "out@example.com"} {
				got := postForm(e, form, everything(email, "Ann"))
				if got.status != want.status || got.body != want.body || len(got.header) != len(want.header) {
					t.Fatalf("%s, %s: %d %v\n%s\nwant %d %v\n%s", what, email, got.status, got.header, got.body, want.status, want.header, want.body)
				}
				for k := range want.header {
					if k == "X-Request-Id" {
						continue // each request's own, whoever posts
					}
					if got.header.Get(k) != want.header.Get(k) {
						t.Fatalf("%s, %s: %s is %q, want %q", what, email, k, got.header.Get(k), want.header.Get(k))
					}
				}
			}
		}
		check("page")
		e.api("PATCH", "/api/v1/webforms/"+form, `{"redirect_url":"https://acme.example/thanks"}`, 200, nil)
		check("redirect")
	})
}

// TestNewerPostSupersedesTheHeldOne: a second post about a known address
// (here without the marketing box: the email asks to confirm the changes)
// replaces the first: the first link stops working, the second applies
// the second post only.
func TestNewerPostSupersedesTheHeldOne(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		e := start(t, db)
		form := signupForm(e, "")
		var kim struct{ ID string }
		e.api("POST", "/api/v1/contacts", `{"email":"kim@example.com","first_name":"Kim","language":"sv"}`, 201, &kim)
		postForm(e, form, url.Values{"email": {"kim@example.com"}, "first_name": {"First"}, "lists[0].checked": {"yes"}})
		if st := stateOf(e, kim.ID); st.FirstName != "Kim" || len(st.Lists) != 0 {
			t.Fatalf("after the first post: %+v", st)
		}
		first := e.smtp.Wait(t, 1)[0]
		postForm(e, form, url.Values{"email": {"kim@example.com"}, "first_name": {"Second"}})
		second := e.smtp.Wait(t, 2)[1]
		if first.Subject != "Bekräfta uppgifterna du skickade till oss" || !strings.Contains(first.Text, "Prenumerera på ”Newsletter”") ||
			!strings.Contains(second.Text, "Uppdatera dina uppgifter: Förnamn") || strings.Contains(second.Text, "Newsletter") {
			t.Fatalf("emails:\n%s\n%s", first.Text, second.Text)
		}
		firstLink, secondLink := webformConfirmRE.FindString(first.Text), webformConfirmRE.FindString(second.Text)
		for _, method := range []string{"GET", "POST"} {
			if _, page := e.page(method, e.srv.URL+firstLink, ""); !strings.Contains(page, "This link cannot be used") {
				t.Fatalf("%s of the superseded link: %s", method, page)
			}
		}
		if st := stateOf(e, kim.ID); st.FirstName != "Kim" || len(st.Lists) != 0 {
			t.Fatalf("before confirming: %+v", st)
		}
		if code, page := e.visitor().post(e.srv.URL+secondLink, url.Values{}); code != 200 || !strings.Contains(page, "Förnamn: Second") {
			t.Fatalf("confirming the second: %d %s", code, page)
		}
		if st := stateOf(e, kim.ID); st.FirstName != "Second" || len(st.Lists) != 0 || st.OptIn != contactstate.OptInNone || len(st.Consents) != 0 {
			t.Fatalf("after confirming the second: %+v", st)
		}
		var held []struct{ Status string }
		e.api("GET", "/api/v1/contacts/"+kim.ID+"/webform-posts", "", 200, &held)
		if len(held) != 2 || held[0].Status != "confirmed" || held[1].Status != "superseded" {
			t.Fatalf("held posts: %+v", held)
		}
	})
}
