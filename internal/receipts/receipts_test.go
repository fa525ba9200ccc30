package receipts_test

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/consentry/consentry/internal/audit"
	"github.com/consentry/consentry/internal/consent"
	"github.com/consentry/consentry/internal/contact"
	"github.com/consentry/consentry/internal/errs"
	"github.com/consentry/consentry/internal/ledger"
	"github.com/consentry/consentry/internal/receipts"
	"github.com/consentry/consentry/internal/settings"
	"github.com/consentry/consentry/internal/signing"
	"github.com/consentry/consentry/internal/store"
	"github.com/consentry/consentry/internal/store/storetest"
)

func ptr[T any](v T) *T { return &v }

var apiActor = consent.Actor{Kind: consent.ActorAPIToken, ID: "tok"}

type fixture struct {
	db       *store.DB
	consent  *consent.Service
	signing  *signing.Service
	receipts *receipts.Service
	contact  *contact.Contact
	record   *consent.Record
}

// setup makes a contact with a name, an operator identity, and a consent
// record granted after the text was shown in Swedish.
func setup(t testing.TB, db *store.DB) *fixture {
	ctx := context.Background()
	cs := consent.NewService(db)
	people := contact.NewService(db, cs)
	sig := &signing.Service{DB: db, Name: "consent.example.org/ledger"}
	f := &fixture{db: db, consent: cs, signing: sig,
		receipts: &receipts.Service{DB: db, Consent: cs, Signing: sig, Issuer: "https://consent.example.org", Sender: "Example"}}
	_, err := settings.Update(ctx, db, settings.Patch{
		IdentityPatch: settings.IdentityPatch{OrganisationName: ptr("Exempel AB"), PostalAddress: ptr("Storgatan 1\n111 22 Stockholm"),
			PrivacyContactName: ptr("Dataskyddsombud"), Website: ptr("https://example.se")},
		PrivacyAddress: ptr("privacy@example.se"),
		ReceiptsPatch:  settings.ReceiptsPatch{ReceiptJurisdiction: ptr("se"), PrivacyPolicyURL: ptr("https://example.se/privacy")},
	}, audit.Actor{Kind: "user"}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	f.contact, err = people.Create(ctx, contact.NewContact{Input: contact.Input{Email: ptr("Kerstin.Lind@example.se"),
		FirstName: ptr("Kerstin"), LastName: ptr("Lindqvist")}, Actor: apiActor, Evidence: consent.Evidence{Method: consent.MethodAPI}})
	if err != nil {
		t.Fatal(err)
	}
	v2, err := cs.SetTranslation(ctx, audit.Actor{Kind: "user"}, "E-marketing", 1, "sv", "Ja, jag vill ha nyhetsbrev och erbjudanden via e-post.")
	if err != nil {
		t.Fatal(err)
	}
	f.record, err = cs.Record(ctx, f.contact.ID, consent.RecordInput{Purpose: "E-marketing", State: consent.StateGranted, Source: "Web form",
		TextVersion: v2.Version, TextLanguage: "sv", Actor: apiActor,
		Evidence: consent.Evidence{Method: consent.MethodAPI, IP: "192.0.2.7", UserAgent: "Mozilla/5.0 (Kerstin's laptop)"}})
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// jwksJSON is the key set as it is served: JSON, which the independent
// verifier reads back with go-jose alone.
func (f *fixture) jwksJSON(t testing.TB) []byte {
	set, err := f.receipts.JWKS(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	raw, err := json.Marshal(set)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// verifyJOSE checks a compact JWS with go-jose against a JWKS document,
// using nothing of package receipts, and returns the payload.
func verifyJOSE(t testing.TB, compact string, jwks []byte) (map[string]any, error) {
	t.Helper()
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(jwks, &set); err != nil {
		t.Fatalf("JWKS: %v", err)
	}
	obj, err := jose.ParseSigned(compact, []jose.SignatureAlgorithm{jose.EdDSA})
	if err != nil {
		return nil, err
	}
	h := obj.Signatures[0].Header
	if h.Algorithm != "EdDSA" || h.ExtraHeaders[jose.HeaderType] != "JWT" {
		t.Fatalf("header: alg %q typ %v", h.Algorithm, h.ExtraHeaders[jose.HeaderType])
	}
	keys := set.Key(h.KeyID)
	if len(keys) != 1 || keys[0].Algorithm != "EdDSA" || keys[0].Use != "sig" {
		t.Fatalf("JWKS has no one EdDSA signing key %q: %+v", h.KeyID, keys)
	}
	payload, err := obj.Verify(keys[0])
	if err != nil {
		return nil, err
	}
	var out map[string]any
	if err := json.Unmarshal(payload, &out); err != nil {
		t.Fatalf("payload: %v", err)
	}
	return out, nil
}

// TestReceiptVerifiesAndSaysWhatWasAgreed: a receipt opens with go-jose
// and the JWKS alone, and says who the controller is, what was agreed to,
// in which words and language, and where in the ledger; the contact is
// their ledger reference, and neither their address nor their name nor
// their evidence is in it.
func TestReceiptVerifiesAndSaysWhatWasAgreed(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		ctx := context.Background()
		f := setup(t, db)
		issued, err := f.receipts.Issue(ctx, f.record.ID)
		if err != nil {
			t.Fatal(err)
		}
		got, err := verifyJOSE(t, issued.JWS, f.jwksJSON(t))
		if err != nil {
			t.Fatalf("the receipt does not verify with go-jose and the JWKS: %v", err)
		}
		var ref string
		if err := db.Read.QueryRowContext(ctx, `SELECT ref FROM contacts WHERE id = $1`, f.contact.ID).Scan(&ref); err != nil {
			t.Fatal(err)
		}
		ev, err := ledger.EventAt(ctx, db.Read, f.record.LedgerSeq)
		if err != nil {
			t.Fatal(err)
		}
		text := "Ja, jag vill ha nyhetsbrev och erbjudanden via e-post."
		sum := sha256.Sum256([]byte(text))
		svc := got["services"].([]any)[0].(map[string]any)
		purpose := svc["purposes"].([]any)[0].(map[string]any)
		ctrl := got["piiControllers"].([]any)[0].(map[string]any)
		ct := got["consentText"].(map[string]any)
		lp := got["ledger"].(map[string]any)
		for _, c := range []struct {
			name string
			got  any
			want any
		}{
			{"version", got["version"], "KI-CR-v1.1.0"},
			{"jurisdiction", got["jurisdiction"], "SE"},
			{"consentReceiptID", got["consentReceiptID"], "urn:uuid:" + f.record.ID},
			{"recordId", got["recordId"], f.record.ID},
			{"state", got["state"], "granted"},
			{"collectionMethod", got["collectionMethod"], "api"},
			{"language", got["language"], "sv"},
			{"piiPrincipalId", got["piiPrincipalId"], ref},
			{"consentTimestamp", got["consentTimestamp"], float64(f.record.RecordedAt.Unix())},
			{"policyUrl", got["policyUrl"], "https://example.se/privacy"},
			{"iss", got["iss"], "https://consent.example.org"},
			{"piiController", ctrl["piiController"], "Exempel AB"},
			{"controller address", ctrl["address"], "Storgatan 1\n111 22 Stockholm"},
			{"controller email", ctrl["email"], "privacy@example.se"},
			{"controller contact", ctrl["contact"], "Dataskyddsombud"},
			{"controller URL", ctrl["piiControllerUrl"], "https://example.se"},
			{"purpose", purpose["purpose"], "E-marketing"},
			{"legal basis", purpose["legalBasis"], "consent"},
			{"consent type", purpose["consentType"], "EXPLICIT"},
			{"primary purpose", purpose["primaryPurpose"], true},
			{"termination", purpose["termination"], "until withdrawn"},
			{"third-party disclosure", purpose["thirdPartyDisclosure"], false},
			{"text", ct["text"], text},
			{"text language", ct["language"], "sv"},
			{"text version", ct["version"], float64(f.record.TextVersion)},
			{"text hash", ct["sha256"], hex.EncodeToString(sum[:])},
			{"ledger seq", lp["seq"], float64(f.record.LedgerSeq)},
			{"ledger event hash", lp["event_hash"], ev.Hash},
			{"ledger previous hash", lp["prev_hash"], ev.PrevHash},
		} {
			if c.got != c.want {
				t.Errorf("%s: got %#v, want %#v", c.name, c.got, c.want)
			}
		}
		// The event the receipt names is the record's, and its hash is
		// what the ledger's own encoding gives.
		if h, err := ledger.ComputeHash(ev.PrevHash, ev); err != nil || h != ev.Hash || ev.RecordID != f.record.ID {
			t.Fatalf("ledger event: %v %s %+v", err, h, ev)
		}
		payload := decodedPayload(t, issued.JWS)
		for _, personal := range []string{"kerstin", "lindqvist", "kerstin.lind@example.se", "192.0.2.7", "laptop", f.contact.ID} {
			if strings.Contains(strings.ToLower(payload), strings.ToLower(personal)) {
				t.Errorf("the receipt holds %q: %s", personal, payload)
			}
		}
		// The package's own check agrees, and the payload served beside
		// the JWS is the one signed.
		keys, err := f.signing.Public(ctx)
		if err != nil {
			t.Fatal(err)
		}
		p, err := receipts.Verify(issued.JWS, keys)
		if err != nil {
			t.Fatal(err)
		}
		a, _ := json.Marshal(p)
		b, _ := json.Marshal(issued.Payload)
		if string(a) != string(b) {
			t.Fatalf("payload served %s, signed %s", b, a)
		}

		if _, err := f.receipts.Issue(ctx, "no-such-record"); !errs.Is(err, errs.KindNotFound) || errs.As(err).Code != "consent_record_not_found" {
			t.Fatalf("an unknown record: %v", err)
		}
	})
}

// TestReceiptOfOtherLegalBasisAndWithdrawal: a record on another legal
// basis names it as its consent type; a withdrawal says so, and a grant
// with an expiry ends then.
func TestReceiptOfOtherLegalBasisAndWithdrawal(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		ctx := context.Background()
		f := setup(t, db)
		expires := time.Now().Add(48 * time.Hour).UTC().Truncate(time.Second)
		sales, err := f.consent.Record(ctx, f.contact.ID, consent.RecordInput{Purpose: "Sales and service", State: consent.StateGranted,
			Source: "API", ExpiresAt: &expires, Actor: apiActor, Evidence: consent.Evidence{Method: consent.MethodAPI}})
		if err != nil {
			t.Fatal(err)
		}
		withdrawn, err := f.consent.Record(ctx, f.contact.ID, consent.RecordInput{Purpose: "E-marketing", State: consent.StateWithdrawn,
			Source: "API", Actor: apiActor, Evidence: consent.Evidence{Method: consent.MethodAPI}})
		if err != nil {
			t.Fatal(err)
		}
		jwks := f.jwksJSON(t)
		for _, c := range []struct {
			record             *consent.Record
			state, consentType string
			termination        string
		}{
			{sales, "granted", "contract", expires.Format(time.RFC3339)},
			{withdrawn, "withdrawn", "EXPLICIT", "withdrawn"},
		} {
			issued, err := f.receipts.Issue(ctx, c.record.ID)
			if err != nil {
				t.Fatal(err)
			}
			got, err := verifyJOSE(t, issued.JWS, jwks)
			if err != nil {
				t.Fatal(err)
			}
			purpose := got["services"].([]any)[0].(map[string]any)["purposes"].([]any)[0].(map[string]any)
			if got["state"] != c.state || purpose["consentType"] != c.consentType || purpose["termination"] != c.termination ||
				got["ledger"].(map[string]any)["seq"] != float64(c.record.LedgerSeq) {
				t.Errorf("record %s: state %v, consent type %v, termination %v, ledger %v", c.record.PurposeName, got["state"],
					purpose["consentType"], purpose["termination"], got["ledger"])
			}
		}
	})
}

// TestReceiptLanguageIsTheRecords: a receipt names the language the
// consent text was shown in only when the consent record says it. A
// record that does not say gets the version's own text with no language,
// top-level or in consentText; one shown in a language the text has no
// translation into names that language, and consentText says the words
// quoted are the version's own.
func TestReceiptLanguageIsTheRecords(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		ctx := context.Background()
		f := setup(t, db)
		p, err := f.consent.Purpose(ctx, "E-marketing")
		if err != nil {
			t.Fatal(err)
		}
		own, err := f.consent.TextIn(ctx, p.ID, p.TextVersion, "")
		if err != nil || own.Language != "en" {
			t.Fatalf("the version's own text: %+v %v", own, err)
		}
		jwks := f.jwksJSON(t)
		for _, c := range []struct {
			shownIn            string
			language, textLang any // nil: absent
		}{
			{"", nil, nil},
			{"pt-BR", "pt-BR", "en"},
		} {
			r, err := f.consent.Record(ctx, f.contact.ID, consent.RecordInput{Purpose: "E-marketing", State: consent.StateGranted,
				Source: "API", TextLanguage: c.shownIn, Actor: apiActor, Evidence: consent.Evidence{Method: consent.MethodAPI}})
			if err != nil {
				t.Fatal(err)
			}
			if r.TextLanguage != c.shownIn {
				t.Fatalf("record shown in %q holds %q", c.shownIn, r.TextLanguage)
			}
			issued, err := f.receipts.Issue(ctx, r.ID)
			if err != nil {
				t.Fatal(err)
			}
			got, err := verifyJOSE(t, issued.JWS, jwks)
			if err != nil {
				t.Fatal(err)
			}
			ct := got["consentText"].(map[string]any)
			if got["language"] != c.language || ct["language"] != c.textLang || ct["text"] != own.Text {
				t.Errorf("record shown in %q: language %#v, consentText language %#v, text %q; want %#v, %#v, %q",
					c.shownIn, got["language"], ct["language"], ct["text"], c.language, c.textLang, own.Text)
			}
		}
	})
}

// TestChangedReceiptDoesNotVerify: changing any field of the payload, and
// signing it with another key under the same kid, breaks the signature.
func TestChangedReceiptDoesNotVerify(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		ctx := context.Background()
		f := setup(t, db)
		issued, err := f.receipts.Issue(ctx, f.record.ID)
		if err != nil {
			t.Fatal(err)
		}
		jwks := f.jwksJSON(t)
		keys, err := f.signing.Public(ctx)
		if err != nil {
			t.Fatal(err)
		}
		changes := map[string]func(p map[string]any){
			"state":            func(p map[string]any) { p["state"] = "withdrawn" },
			"piiPrincipalId":   func(p map[string]any) { p["piiPrincipalId"] = "someone-else" },
			"consentTimestamp": func(p map[string]any) { p["consentTimestamp"] = p["consentTimestamp"].(float64) - 86400 },
			"consent text":     func(p map[string]any) { p["consentText"].(map[string]any)["text"] = "Yes, sell my data." },
			"text hash":        func(p map[string]any) { p["consentText"].(map[string]any)["sha256"] = strings.Repeat("0", 64) },
			"ledger seq": func(p map[string]any) {
				p["ledger"].(map[string]any)["seq"] = 1.0 + p["ledger"].(map[string]any)["seq"].(float64)
			},
			"legal basis": func(p map[string]any) {
				p["services"].([]any)[0].(map[string]any)["purposes"].([]any)[0].(map[string]any)["legalBasis"] = "legitimate_interests"
			},
			"controller": func(p map[string]any) {
				p["piiControllers"].([]any)[0].(map[string]any)["piiController"] = "Someone Else Ltd"
			},
		}
		parts := strings.Split(issued.JWS, ".")
		for name, change := range changes {
			var p map[string]any
			if err := json.Unmarshal([]byte(decodedPayload(t, issued.JWS)), &p); err != nil {
				t.Fatal(err)
			}
			change(p)
			raw, _ := json.Marshal(p)
			forged := parts[0] + "." + base64.RawURLEncoding.EncodeToString(raw) + "." + parts[2]
			if _, err := verifyJOSE(t, forged, jwks); err == nil {
				t.Errorf("changed %s: go-jose still verifies it", name)
			}
			if _, err := receipts.Verify(forged, keys); err == nil {
				t.Errorf("changed %s: Verify still verifies it", name)
			}
		}
		// Unchanged, it verifies: the forgeries failed for their change.
		if _, err := verifyJOSE(t, parts[0]+"."+parts[1]+"."+parts[2], jwks); err != nil {
			t.Fatal(err)
		}
	})
}

// TestReceiptVerifiesAfterKeyRotation: a receipt signed before a rotation
// still verifies with the JWKS served after it, which holds both keys;
// a new receipt names the new key.
func TestReceiptVerifiesAfterKeyRotation(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		ctx := context.Background()
		f := setup(t, db)
		before, err := f.receipts.Issue(ctx, f.record.ID)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.signing.Rotate(ctx); err != nil {
			t.Fatal(err)
		}
		after, err := f.receipts.Issue(ctx, f.record.ID)
		if err != nil {
			t.Fatal(err)
		}
		jwks := f.jwksJSON(t)
		var set jose.JSONWebKeySet
		if err := json.Unmarshal(jwks, &set); err != nil || len(set.Keys) != 2 {
			t.Fatalf("JWKS after rotation: %v %s", err, jwks)
		}
		kids := map[string]bool{}
		for _, r := range []*receipts.Issued{before, after} {
			p, err := verifyJOSE(t, r.JWS, jwks)
			if err != nil {
				t.Fatalf("after the rotation: %v", err)
			}
			if p["consentReceiptID"] != "urn:uuid:"+f.record.ID {
				t.Fatalf("receipt id %v", p["consentReceiptID"])
			}
			obj, _ := jose.ParseSigned(r.JWS, []jose.SignatureAlgorithm{jose.EdDSA})
			kids[obj.Signatures[0].Header.KeyID] = true
		}
		if len(kids) != 2 {
			t.Fatalf("the receipts before and after the rotation name the keys %v", kids)
		}
	})
}

func decodedPayload(t testing.TB, compact string) string {
	parts := strings.Split(compact, ".")
	if len(parts) != 3 {
		t.Fatalf("not a compact JWS: %s", compact)
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	return string(raw)
}

// BenchmarkReceiptSigning signs receipts of one consent record, as
// receipts per second; reading the record is left out (ReportMetric
// receipts/s). BenchmarkReceiptIssue adds the reads.
func BenchmarkReceiptSigning(b *testing.B) {
	ctx := context.Background()
	f := setup(b, storetest.OpenSQLite(b))
	r, err := f.consent.RecordByID(ctx, f.record.ID)
	if err != nil {
		b.Fatal(err)
	}
	p, err := f.receipts.Build(ctx, r)
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for b.Loop() {
		if _, err := f.receipts.Sign(ctx, p); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "receipts/s")
}

// BenchmarkReceiptIssue is a whole receipt, the record, its text, its
// event and the settings read from SQLite, then signed.
func BenchmarkReceiptIssue(b *testing.B) {
	ctx := context.Background()
	f := setup(b, storetest.OpenSQLite(b))
	for b.Loop() {
		if _, err := f.receipts.Issue(ctx, f.record.ID); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "receipts/s")
}
