package app_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"reflect"
	"strings"
	"testing"

	"github.com/go-jose/go-jose/v4"

	"github.com/consentry/consentry/internal/mail/mailtest"
	"github.com/consentry/consentry/internal/store"
	"github.com/consentry/consentry/internal/store/storetest"
)

// fetchJWKS reads /.well-known/jwks.json as any verifier would, without a
// token, and checks it is served as a cacheable public key set.
func fetchJWKS(e *env) jose.JSONWebKeySet {
	e.t.Helper()
	res, err := http.Get(e.srv.URL + "/.well-known/jwks.json")
	if err != nil {
		e.t.Fatal(err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	if res.StatusCode != 200 || res.Header.Get("Content-Type") != "application/jwk-set+json" ||
		!strings.Contains(res.Header.Get("Cache-Control"), "max-age=") || res.Header.Get("X-Content-Type-Options") != "nosniff" ||
		!strings.Contains(res.Header.Get("Content-Security-Policy"), "default-src 'none'") {
		e.t.Fatalf("JWKS: %d %v %s", res.StatusCode, res.Header, body)
	}
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(body, &set); err != nil {
		e.t.Fatalf("JWKS: %v %s", err, body)
	}
	for _, k := range set.Keys {
		if k.Algorithm != "EdDSA" || k.Use != "sig" || k.KeyID == "" || !k.IsPublic() {
			e.t.Fatalf("JWKS key: %+v", k)
		}
		if !strings.Contains(string(body), `"kty":"OKP"`) || !strings.Contains(string(body), `"crv":"Ed25519"`) {
			e.t.Fatalf("JWKS is not of OKP Ed25519 keys: %s", body)
		}
	}
	return set
}

// verifyWithJWKS checks a compact JWS with go-jose and the served key set.
func verifyWithJWKS(t testing.TB, compact string, set jose.JSONWebKeySet) map[string]any {
	t.Helper()
	obj, err := jose.ParseSigned(compact, []jose.SignatureAlgorithm{jose.EdDSA})
	if err != nil {
		t.Fatal(err)
	}
	keys := set.Key(obj.Signatures[0].Header.KeyID)
	if len(keys) != 1 {
		t.Fatalf("no key %q in the JWKS", obj.Signatures[0].Header.KeyID)
	}
	payload, err := obj.Verify(keys[0])
	if err != nil {
		t.Fatalf("the receipt does not verify with the served JWKS: %v", err)
	}
	var p map[string]any
	if err := json.Unmarshal(payload, &p); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestReceiptOverHTTP: a consent record's receipt from the API and from
// the proof view's download verifies with the key set served at
// /.well-known/jwks.json, also after the key is rotated; an unknown record
// is a 404 that says so, and the receipt needs a token.
func TestReceiptOverHTTP(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		e := start(t, db)
		var anna struct{ ID string }
		e.api("POST", "/api/v1/contacts", `{"email":"anna.berg@example.com","first_name":"Anna","last_name":"Berg"}`, 201, &anna)
		var rec struct{ ID string }
		e.api("POST", "/api/v1/contacts/"+anna.ID+"/consents", `{"purpose":"E-marketing","state":"granted","source":"API"}`, 201, &rec)

		var got struct {
			Receipt string
			Payload map[string]any
		}
		e.api("GET", "/api/v1/consents/"+rec.ID+"/receipt", "", 200, &got)
		p := verifyWithJWKS(t, got.Receipt, fetchJWKS(e))
		if p["recordId"] != rec.ID || got.Payload["recordId"] != rec.ID || p["state"] != "granted" || p["jurisdiction"] != "EU" {
			t.Fatalf("receipt: %v; served payload %v", p, got.Payload)
		}
		for _, personal := range []string{"anna", "berg"} {
			if strings.Contains(strings.ToLower(got.Receipt+string(must(json.Marshal(got.Payload)))), personal) {
				t.Fatalf("the receipt names the contact (%q): %v", personal, got.Payload)
			}
		}

		res, body := e.call("GET", "/api/v1/consents/no-such-record/receipt", "")
		if res.StatusCode != 404 || !strings.Contains(string(body), "consent_record_not_found") {
			t.Fatalf("unknown record: %d %s", res.StatusCode, body)
		}
		noToken, err := http.Get(e.srv.URL + "/api/v1/consents/" + rec.ID + "/receipt")
		if err != nil {
			t.Fatal(err)
		}
		noToken.Body.Close()
		if noToken.StatusCode != 401 {
			t.Fatalf("without a token: %d", noToken.StatusCode)
		}

		// The proof view's download: the same JSON, as a file.
		admin := e.firstAdmin()
		proof := e.srv.URL + "/admin/contacts/" + anna.ID + "/consents/" + rec.ID
		if code, page := admin.get(proof); code != 200 || !strings.Contains(page, `id="proof-receipt"`) {
			t.Fatalf("proof view: %d", code)
		}
		dl, err := admin.client.Get(proof + "/receipt")
		if err != nil {
			t.Fatal(err)
		}
		file, _ := io.ReadAll(dl.Body)
		dl.Body.Close()
		if dl.StatusCode != 200 || dl.Header.Get("Content-Disposition") != `attachment; filename=receipt-`+rec.ID+`.json` {
			t.Fatalf("download: %d %v", dl.StatusCode, dl.Header)
		}
		var downloaded struct {
			Receipt string
			Payload map[string]any
		}
		if err := json.Unmarshal(file, &downloaded); err != nil {
			t.Fatalf("download: %v %s", err, file)
		}
		if q := verifyWithJWKS(t, downloaded.Receipt, fetchJWKS(e)); q["recordId"] != rec.ID || downloaded.Payload["consentReceiptID"] != "urn:uuid:"+rec.ID {
			t.Fatalf("downloaded receipt: %v", q)
		}
		var other struct{ ID string }
		e.api("POST", "/api/v1/contacts", `{"email":"other@example.com"}`, 201, &other)
		if code, _ := admin.get(e.srv.URL + "/admin/contacts/" + other.ID + "/consents/" + rec.ID + "/receipt"); code != 404 {
			t.Fatalf("another contact's record: %d", code)
		}

		// After a rotation, the old receipt still verifies with the set
		// served, which now holds both keys.
		if _, err := e.a.Signing.Rotate(t.Context()); err != nil {
			t.Fatal(err)
		}
		set := fetchJWKS(e)
		if len(set.Keys) != 2 {
			t.Fatalf("JWKS after a rotation: %d keys", len(set.Keys))
		}
		verifyWithJWKS(t, got.Receipt, set)
		var fresh struct{ Receipt string }
		e.api("GET", "/api/v1/consents/"+rec.ID+"/receipt", "", 200, &fresh)
		verifyWithJWKS(t, fresh.Receipt, set)
	})
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// TestReceiptEmailAfterDoubleOptIn: with email_receipts on, confirming a
// double opt-in sends a summary in the contact's language with the
// signed receipt of the consent record the confirmation wrote attached,
// and a link that downloads it again with its ledger proof; both verify
// with the served key set and name the same ledger event. Erasing the
// contact deletes the attachment the outbox kept. With the setting off
// (the default), no such email goes.
func TestReceiptEmailAfterDoubleOptIn(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		e := start(t, db)
		// confirm invites a new contact, waits for the invitation, the
		// seen'th message, and follows its link.
		confirm := func(email string, seen int) (contactID string) {
			var c struct{ ID string }
			e.api("POST", "/api/v1/contacts", `{"email":"`+email+`","kind":"lead","first_name":"Nils","language":"sv"}`, 201, &c)
			e.api("POST", "/api/v1/double-opt-in", `{"contact_ids":["`+c.ID+`"]}`, 200, nil)
			var link string
			for _, m := range e.smtp.Wait(t, seen) {
				if m.To[0] == email && strings.HasPrefix(m.Subject, "Bekräfta") {
					link = m.Links()[0]
				}
			}
			if to := e.visitor().redirectOf(link, url.Values{}); to != e.srv.URL+"/p/confirmed" {
				t.Fatalf("confirming redirects to %s", to)
			}
			return c.ID
		}

		// Off by default: the confirmation queues nothing more.
		off := confirm("off@example.com", 1)
		var emails []struct{ Kind string }
		e.api("GET", "/api/v1/contacts/"+off+"/emails", "", 200, &emails)
		if len(emails) != 1 || emails[0].Kind != "double_opt_in" {
			t.Fatalf("emails with email_receipts off: %+v", emails)
		}
		e.api("PATCH", "/api/v1/settings", `{"email_receipts":true,"receipt_jurisdiction":"se","privacy_policy_url":"https://acme.example/privacy"}`, 200, nil)
		on := confirm("nils@example.com", 2)
		var m *mailtest.Message
		for _, got := range e.smtp.Wait(t, 3) { // two invitations and one receipt
			if got.Subject == "Ditt samtyckeskvitto" {
				if m != nil || got.To[0] != "nils@example.com" {
					t.Fatalf("a second receipt email, to %v", got.To)
				}
				m = &got
			}
		}
		if m == nil {
			t.Fatal("no receipt email")
		}
		var hist struct{ History []apiRecord }
		e.api("GET", "/api/v1/contacts/"+on+"/consents", "", 200, &hist)
		rec := hist.History[0]
		if !strings.Contains(m.Text, "Ändamål: E-marketing") || !strings.Contains(m.Text, "Yes, I would like to receive") ||
			!strings.Contains(m.Text, "urn:uuid:"+rec.ID) || len(m.Links()) != 1 || !strings.HasPrefix(m.Links()[0], e.srv.URL+"/receipt/") {
			t.Fatalf("receipt email: %s %v", m.Text, m.Links())
		}
		if len(m.Attachments) != 1 || m.Attachments[0].Filename != "consent-receipt-"+rec.ID+".json" || m.Attachments[0].ContentType != "application/json" {
			t.Fatalf("receipt email's attachments: %+v", m.Attachments)
		}
		var attached struct {
			Receipt     string
			Payload     map[string]any
			LedgerProof json.RawMessage `json:"ledger_proof"`
		}
		if err := json.Unmarshal(m.Attachments[0].Data, &attached); err != nil {
			t.Fatalf("attached receipt: %v %s", err, m.Attachments[0].Data)
		}
		q := verifyWithJWKS(t, attached.Receipt, fetchJWKS(e))
		if q["recordId"] != rec.ID || q["collectionMethod"] != "double_opt_in_link" || q["jurisdiction"] != "SE" ||
			attached.Payload["recordId"] != rec.ID || attached.LedgerProof != nil {
			t.Fatalf("attached receipt: %v, ledger proof %s", q, attached.LedgerProof)
		}
		res, err := http.Get(m.Links()[0])
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != 200 || res.Header.Get("Content-Disposition") != "attachment; filename=receipt-"+rec.ID+".json" {
			t.Fatalf("receipt link: %d %v %s", res.StatusCode, res.Header, body)
		}
		var got struct {
			Receipt     string
			LedgerProof *struct{ Seq int64 } `json:"ledger_proof"`
		}
		if err := json.Unmarshal(body, &got); err != nil {
			t.Fatal(err)
		}
		p := verifyWithJWKS(t, got.Receipt, fetchJWKS(e))
		if p["recordId"] != rec.ID || p["collectionMethod"] != "double_opt_in_link" || p["jurisdiction"] != "SE" ||
			p["policyUrl"] != "https://acme.example/privacy" || p["language"] != "en" {
			t.Fatalf("receipt from the email: %v", p)
		}
		if !reflect.DeepEqual(p["ledger"], q["ledger"]) || got.LedgerProof == nil || float64(got.LedgerProof.Seq) != p["ledger"].(map[string]any)["seq"] {
			t.Fatalf("the linked receipt's ledger event or proof: %v, %+v; the attached one's: %v", p["ledger"], got.LedgerProof, q["ledger"])
		}
		// A link that is not one gives the page of a link that cannot be
		// used, 410, not a receipt.
		if code, page := e.page("GET", e.srv.URL+"/receipt/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "en"); code != http.StatusGone ||
			!strings.Contains(page, "This link cannot be used") {
			t.Fatalf("unknown receipt link: %d %s", code, page)
		}

		var kept int
		if err := db.Read.QueryRow(`SELECT count(*) FROM outbox_attachments`).Scan(&kept); err != nil || kept != 1 {
			t.Fatalf("before the erasure the outbox keeps %d attachments: %v", kept, err)
		}
		e.api("POST", "/api/v1/contacts/"+on+"/erase", "", 200, nil)
		if err := db.Read.QueryRow(`SELECT count(*) FROM outbox_attachments`).Scan(&kept); err != nil || kept != 0 {
			t.Fatalf("after the erasure the outbox keeps %d attachments: %v", kept, err)
		}
	})
}
