package app_test

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"io"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/consentry/consentry/internal/consent"
	"github.com/consentry/consentry/internal/contact"
	"github.com/consentry/consentry/internal/erasure"
	"github.com/consentry/consentry/internal/ledger"
	"github.com/consentry/consentry/internal/receipts"
	"github.com/consentry/consentry/internal/store"
	"github.com/consentry/consentry/internal/store/storetest"
)

// outsider checks a downloaded receipt as someone who trusts neither the
// database nor this program: with go-jose and the served key set, tlog,
// note and the served verifier key, and the ledger's hash encoding as
// docs/ledger.md writes it down, implemented here anew. It returns why
// the receipt does not hold, or "".
func outsider(t testing.TB, doc, jwks []byte, vkey, checkpoint string) string {
	t.Helper()
	var d struct {
		Receipt string `json:"receipt"`
		Proof   struct {
			LeafIndex int64    `json:"leaf_index"`
			TreeSize  int64    `json:"tree_size"`
			Hashes    []string `json:"hashes"`
		} `json:"ledger_proof"`
	}
	if err := json.Unmarshal(doc, &d); err != nil {
		return "not JSON: " + err.Error()
	}
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(jwks, &set); err != nil {
		t.Fatal(err)
	}
	obj, err := jose.ParseSigned(d.Receipt, []jose.SignatureAlgorithm{jose.EdDSA})
	if err != nil {
		return "not a JWS: " + err.Error()
	}
	keys := set.Key(obj.Signatures[0].Header.KeyID)
	if len(keys) != 1 {
		return "no key " + obj.Signatures[0].Header.KeyID
	}
	payload, err := obj.Verify(keys[0].Key)
	if err != nil {
		return "signature: " + err.Error()
	}
	var p struct {
		RecordID   string `json:"recordId"`
		RecordedAt string `json:"recordedAt"`
		State      string `json:"state"`
		Ref        string `json:"piiPrincipalId"`
		Ledger     struct {
			Seq       int64           `json:"seq"`
			EventHash string          `json:"event_hash"`
			Event     json.RawMessage `json:"event"`
		} `json:"ledger"`
	}
	if err := json.Unmarshal(payload, &p); err != nil {
		return "payload: " + err.Error()
	}
	// The chain hash, as docs/ledger.md encodes it, from the event's
	// fields exactly as the JSON shows them: a string's text, a number's
	// digits; a field left out is empty, or 0 for a number.
	var ev map[string]json.RawMessage
	if err := json.Unmarshal(p.Ledger.Event, &ev); err != nil {
		return "event: " + err.Error()
	}
	shown := func(name string) string {
		raw, ok := ev[name]
		switch {
		case !ok && slices.Contains([]string{"seq", "recorded_at", "text_version", "expires_at"}, name):
			return "0"
		case !ok:
			return ""
		}
		var s string
		if json.Unmarshal(raw, &s) == nil {
			return s
		}
		return string(raw)
	}
	names := []string{"seq", "recorded_at", "kind", "contact_ref", "purpose_id", "value", "legal_basis", "source_id",
		"text_version", "expires_at", "actor_kind", "actor_id", "method", "record_id"}
	tag := "consentry-ledger-v1\x00"
	if shown("evidence") != "" {
		names, tag = append(names, "evidence"), "consentry-ledger-v2\x00"
	}
	prev, _ := hex.DecodeString(shown("prev_hash"))
	h := sha256.New()
	h.Write([]byte(tag))
	h.Write(prev)
	for _, n := range names {
		f := shown(n)
		h.Write(binary.AppendUvarint(nil, uint64(len(f))))
		h.Write([]byte(f))
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != p.Ledger.EventHash {
		return "the event does not hash to the receipt's event hash"
	}
	if shown("record_id") != p.RecordID || shown("value") != p.State || shown("contact_ref") != p.Ref ||
		shown("seq") != strconv.FormatInt(p.Ledger.Seq, 10) {
		return "the event says otherwise than the receipt"
	}
	// The receipt's time is the event's, to the microsecond.
	at, err := time.Parse(time.RFC3339Nano, p.RecordedAt)
	if err != nil || strconv.FormatInt(at.UnixMicro(), 10) != shown("recorded_at") || len(p.RecordedAt) != len("2006-01-02T15:04:05.000000Z") {
		return "the receipt's recordedAt " + p.RecordedAt + " is not its event's recorded_at " + shown("recorded_at")
	}
	v, err := note.NewVerifier(vkey)
	if err != nil {
		t.Fatal(err)
	}
	n, err := note.Open([]byte(checkpoint), note.VerifierList(v))
	if err != nil {
		return "checkpoint: " + err.Error()
	}
	lines := strings.Split(n.Text, "\n")
	size, _ := strconv.ParseInt(lines[1], 10, 64)
	rootRaw, _ := base64.StdEncoding.DecodeString(lines[2])
	var proof tlog.RecordProof
	for _, s := range d.Proof.Hashes {
		raw, _ := base64.StdEncoding.DecodeString(s)
		proof = append(proof, tlog.Hash(raw))
	}
	leaf, _ := hex.DecodeString(p.Ledger.EventHash)
	if d.Proof.TreeSize != size {
		return "the proof is for another checkpoint"
	}
	if err := tlog.CheckRecord(proof, size, tlog.Hash(rootRaw), p.Ledger.Seq-1, tlog.RecordHash(leaf)); err != nil {
		return "inclusion: " + err.Error()
	}
	return ""
}

// consented creates a contact and records E-marketing in each of states,
// in turn, through the API's path (an API token's evidence).
func (e *env) consented(email string, states ...string) (*contact.Contact, []*consent.Record) {
	e.t.Helper()
	ctx := context.Background()
	nc := newContact(email)
	nc.Input.Fields = nil
	c, err := e.a.Contacts.Create(ctx, nc)
	if err != nil {
		e.t.Fatal(err)
	}
	var recs []*consent.Record
	for _, state := range states {
		rec, err := e.a.Consent.Record(ctx, c.ID, consent.RecordInput{Purpose: "E-marketing", State: state, Source: "API",
			Actor: consent.Actor{Kind: consent.ActorAPIToken}, Evidence: consent.Evidence{Method: consent.MethodAPI, IP: "192.0.2.4"}})
		if err != nil {
			e.t.Fatal(err)
		}
		recs = append(recs, rec)
	}
	return c, recs
}

// TestReceiptsCheckFromOutside downloads a consent receipt through the
// API, the key set, the verifier key and a checkpoint from the public
// addresses, and checks it as an outsider would (outsider) and as
// `consentry ledger verify-receipt` does (receipts.CheckOffline). Then
// each way of lying is caught: a receipt field changed, the ledger event
// changed behind the receipt, and the event rewritten with its hash, which
// the checkpoint kept from before no longer includes.
func TestReceiptsCheckFromOutside(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		e := start(t, db)
		ctx := context.Background()
		_, recs := e.consented("receipt@example.com", consent.StateGranted)
		rec := recs[0]
		download := func(query string) []byte {
			t.Helper()
			res, body := e.call("GET", "/api/v1/consents/"+rec.ID+"/receipt"+query, "")
			if res.StatusCode != 200 {
				t.Fatalf("receipt: %d %s", res.StatusCode, body)
			}
			return body
		}
		get := func(path string) string {
			t.Helper()
			code, body := e.page("GET", e.srv.URL+path, "")
			if code != 200 {
				t.Fatalf("GET %s: %d", path, code)
			}
			return body
		}
		doc := download("")
		jwks := []byte(get("/.well-known/jwks.json"))
		vkey := strings.TrimSpace(strings.Split(get("/ledger/key"), "\n")[0])
		var issued receipts.Issued
		if err := json.Unmarshal(doc, &issued); err != nil || issued.LedgerProof == nil {
			t.Fatalf("receipt without a proof: %s", doc)
		}
		checkpoint := issued.LedgerProof.Checkpoint
		if got := get("/ledger/checkpoint?size=" + strconv.FormatInt(issued.LedgerProof.TreeSize, 10)); got != checkpoint {
			t.Fatal("the receipt's checkpoint is not the one served")
		}
		if why := outsider(t, doc, jwks, vkey, checkpoint); why != "" {
			t.Fatalf("an outsider cannot check the receipt: %s", why)
		}
		if _, err := receipts.CheckOffline(doc, []byte(checkpoint), vkey); err != nil {
			t.Fatalf("CheckOffline: %v", err)
		}
		if res, body := e.call("GET", "/api/v1/consents/"+rec.ID+"/receipt?checkpoint=zero", ""); res.StatusCode/100 != 4 ||
			!strings.Contains(string(body), "checkpoint") {
			t.Errorf("a bad checkpoint: %d %s", res.StatusCode, body)
		}

		// 1. A field of the receipt changed: the signature breaks.
		parts := strings.Split(issued.JWS, ".")
		raw, _ := base64.RawURLEncoding.DecodeString(parts[1])
		changed := strings.Replace(string(raw), `"state":"granted"`, `"state":"withdrawn"`, 1)
		if changed == string(raw) {
			t.Fatal("the payload has no state to change")
		}
		forged := strings.Replace(string(doc), issued.JWS, parts[0]+"."+base64.RawURLEncoding.EncodeToString([]byte(changed))+"."+parts[2], 1)
		if why := outsider(t, []byte(forged), jwks, vkey, checkpoint); !strings.HasPrefix(why, "signature") {
			t.Errorf("a changed receipt: %q", why)
		}
		if _, err := receipts.CheckOffline([]byte(forged), []byte(checkpoint), vkey); err == nil {
			t.Error("CheckOffline took a changed receipt")
		}

		exec := func(q string, args ...any) {
			t.Helper()
			if err := db.Write(ctx, func(tx *store.Tx) error { _, err := tx.Exec(q, args...); return err }); err != nil {
				t.Fatal(err)
			}
		}
		seq := issued.Payload.Ledger.Seq
		// 2. The event changed behind the receipt: a new download carries
		// an event that no longer hashes to its hash.
		exec(`UPDATE ledger_events SET value = 'withdrawn' WHERE seq = $1`, seq)
		if why := outsider(t, download(""), jwks, vkey, checkpoint); why == "" {
			t.Error("a changed ledger event went unnoticed")
		}
		// 3. The record and its event rewritten, with a hash to match: the
		// service now signs a receipt that agrees with itself, and only the
		// checkpoint kept from before, which does not include the event,
		// tells.
		exec(`UPDATE consent_records SET state = 'withdrawn' WHERE id = $1`, rec.ID)
		ev, err := ledger.EventAt(ctx, db.Read, seq)
		if err != nil {
			t.Fatal(err)
		}
		rehashed, err := ledger.ComputeHash(ev.PrevHash, ev)
		if err != nil {
			t.Fatal(err)
		}
		exec(`UPDATE ledger_events SET hash = $1 WHERE seq = $2`, rehashed, seq)
		rewritten := download("?checkpoint=" + strconv.FormatInt(issued.LedgerProof.TreeSize, 10))
		if why := outsider(t, rewritten, jwks, vkey, checkpoint); !strings.HasPrefix(why, "inclusion") {
			t.Errorf("a rewritten event: %q", why)
		}
		if _, err := receipts.CheckOffline(rewritten, []byte(checkpoint), vkey); err == nil {
			t.Error("CheckOffline took a rewritten event")
		}
	})
}

// TestAuditBundle downloads a contact's audit bundle through the API and
// checks what is in it: the README, the records, and each receipt, which
// holds against the bundle's own checkpoint and keys.
func TestAuditBundle(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		e := start(t, db)
		c, _ := e.consented("bundle@example.com", consent.StateGranted, consent.StateWithdrawn, consent.StateGranted)
		res, body := e.call("GET", "/api/v1/contacts/"+c.ID+"/audit-bundle", "")
		if res.StatusCode != 200 || res.Header.Get("Content-Type") != "application/zip" {
			t.Fatalf("bundle: %d %s", res.StatusCode, res.Header.Get("Content-Type"))
		}
		z, err := zip.NewReader(bytes.NewReader(body), int64(len(body)))
		if err != nil {
			t.Fatal(err)
		}
		files := map[string][]byte{}
		for _, f := range z.File {
			r, err := f.Open()
			if err != nil {
				t.Fatal(err)
			}
			files[f.Name], _ = io.ReadAll(r)
			r.Close()
		}
		for _, name := range []string{"README.md", "records.json", "checkpoint.txt", "key.txt", "jwks.json"} {
			if len(files[name]) == 0 {
				t.Errorf("the bundle has no %s", name)
			}
		}
		receiptsIn := 0
		for name, doc := range files {
			if !strings.HasPrefix(name, "receipts/") {
				continue
			}
			receiptsIn++
			if why := outsider(t, doc, files["jwks.json"], strings.Split(string(files["key.txt"]), "\n")[0], string(files["checkpoint.txt"])); why != "" {
				t.Errorf("%s: %s", name, why)
			}
		}
		if receiptsIn != 3 {
			t.Errorf("%d receipts in the bundle, want 3", receiptsIn)
		}
		other, _ := e.consented("none@example.com")
		if res, _ := e.call("GET", "/api/v1/contacts/"+other.ID+"/audit-bundle", ""); res.StatusCode != 404 {
			t.Errorf("a contact without consent records: %d", res.StatusCode)
		}
		if res, _ := e.call("GET", "/api/v1/contacts/nobody/audit-bundle", ""); res.StatusCode != 404 {
			t.Errorf("no such contact: %d", res.StatusCode)
		}
	})
}

// TestReceiptsHoldAfterErasure: erasing a contact changes nothing the
// tree covers, so the receipt issued before still checks against the
// checkpoint kept from before, one issued after checks too, and the
// ledger, tree included, still verifies.
func TestReceiptsHoldAfterErasure(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		e := start(t, db)
		ctx := context.Background()
		c, recs := e.consented("erased@example.com", consent.StateGranted)
		res, before := e.call("GET", "/api/v1/consents/"+recs[0].ID+"/receipt", "")
		if res.StatusCode != 200 {
			t.Fatalf("receipt: %d %s", res.StatusCode, before)
		}
		var issued receipts.Issued
		if err := json.Unmarshal(before, &issued); err != nil {
			t.Fatal(err)
		}
		kept := issued.LedgerProof.Checkpoint
		if _, err := e.a.Erasure.Erase(ctx, c.ID, erasure.Why{Actor: consent.Actor{Kind: consent.ActorSystem}, Note: "test"}); err != nil {
			t.Fatal(err)
		}
		code, jwks := e.page("GET", e.srv.URL+"/.well-known/jwks.json", "")
		_, keys := e.page("GET", e.srv.URL+"/ledger/key", "")
		if code != 200 {
			t.Fatal(code)
		}
		vkey := strings.Split(keys, "\n")[0]
		if why := outsider(t, before, []byte(jwks), vkey, kept); why != "" {
			t.Errorf("the receipt from before the erasure: %s", why)
		}
		res, after := e.call("GET", "/api/v1/consents/"+recs[0].ID+"/receipt?checkpoint="+strconv.FormatInt(issued.LedgerProof.TreeSize, 10), "")
		if res.StatusCode != 200 {
			t.Fatalf("receipt after the erasure: %d %s", res.StatusCode, after)
		}
		if why := outsider(t, after, []byte(jwks), vkey, kept); why != "" {
			t.Errorf("the receipt from after the erasure: %s", why)
		}
		if strings.Contains(string(after), "erased@example.com") {
			t.Error("the receipt names the erased address")
		}
		e.ledgerVerifies()
	})
}
