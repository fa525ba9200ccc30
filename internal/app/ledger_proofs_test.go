package app_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/consentry/consentry/internal/app"
	"github.com/consentry/consentry/internal/consent"
	"github.com/consentry/consentry/internal/ledger"
	"github.com/consentry/consentry/internal/store"
	"github.com/consentry/consentry/internal/store/storetest"
)

// TestLedgerProofsFromOutside reads the ledger's public face as an
// auditor would, with no account and only the note and tlog packages:
// the verifier key, a signed checkpoint, and after the ledger grew a newer
// checkpoint with a consistency proof tying it to the first. Bad input
// gets a 4xx that names the parameter.
func TestLedgerProofsFromOutside(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		e := start(t, db, func(a *app.App) { a.LedgerTree.Every = time.Millisecond })
		ctx := context.Background()
		grant := func(n int) {
			for i := range n {
				nc := newContact(fmt.Sprintf("p%d-%d@example.com", n, i))
				nc.Input.Fields = nil
				c, err := e.a.Contacts.Create(ctx, nc)
				if err != nil {
					t.Fatal(err)
				}
				if _, err := e.a.Consent.Record(ctx, c.ID, consent.RecordInput{Purpose: "E-marketing", State: consent.StateGranted, Source: "API",
					Actor: consent.Actor{Kind: consent.ActorAPIToken}, Evidence: consent.Evidence{Method: consent.MethodAPI}}); err != nil {
					t.Fatal(err)
				}
			}
		}
		get := func(path string, want int) string {
			t.Helper()
			code, body := e.page("GET", e.srv.URL+path, "")
			if code != want {
				t.Fatalf("GET %s: %d %s", path, code, body)
			}
			return body
		}
		grant(5)
		v, err := note.NewVerifier(strings.Split(strings.TrimSpace(get("/ledger/key", 200)), "\n")[0])
		if err != nil {
			t.Fatal(err)
		}
		open := func(signed string) (int64, tlog.Hash) {
			t.Helper()
			n, err := note.Open([]byte(signed), note.VerifierList(v))
			if err != nil {
				t.Fatalf("checkpoint does not open: %v\n%s", err, signed)
			}
			lines := strings.Split(n.Text, "\n")
			var size int64
			fmt.Sscan(lines[1], &size)
			h, _ := base64.StdEncoding.DecodeString(lines[2])
			return size, tlog.Hash(h)
		}
		head := func() int64 {
			n, err := ledger.Head(ctx, db.Read)
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
		// The service signs a checkpoint soon after the ledger grows. The
		// wait asks the service, not the rate-limited public address,
		// which is then read once.
		covered := func() {
			t.Helper()
			waitFor(t, func() bool {
				c, err := e.a.LedgerTree.Latest(ctx)
				return err == nil && c.Size == head()
			})
		}
		covered()
		first := get("/ledger/checkpoint", 200)
		size1, root1 := open(first)
		grant(4)
		covered()
		size2, root2 := open(get("/ledger/checkpoint", 200))
		if size2 <= size1 {
			t.Fatalf("the checkpoint after the ledger grew covers %d events, the one before %d", size2, size1)
		}
		if kept := get(fmt.Sprintf("/ledger/checkpoint?size=%d", size1), 200); kept != first {
			t.Fatalf("the checkpoint of size %d changed:\n%s\n%s", size1, kept, first)
		}
		var proof struct {
			From, To int64
			Hashes   []string
		}
		if err := json.Unmarshal([]byte(get(fmt.Sprintf("/ledger/consistency?from=%d&to=%d", size1, size2), 200)), &proof); err != nil {
			t.Fatal(err)
		}
		var hs tlog.TreeProof
		for _, s := range proof.Hashes {
			h, _ := base64.StdEncoding.DecodeString(s)
			hs = append(hs, tlog.Hash(h))
		}
		if err := tlog.CheckTree(hs, size2, root2, size1, root1); err != nil {
			t.Fatalf("the newer checkpoint does not extend the older: %v", err)
		}
		for path, want := range map[string]struct{ code, field string }{
			"/ledger/consistency":                    {"required", "from"},
			"/ledger/consistency?from=x":             {"invalid", "from"},
			"/ledger/consistency?from=1&to=99999999": {"invalid", "to"},
			"/ledger/checkpoint?size=-1":             {"invalid", "size"},
			"/ledger/tile/8/0/1":                     {"invalid", "tile"},
		} {
			// The error shape of the API: code, message and field.
			body := get(path, 400)
			if !strings.Contains(body, `{"error":{"code":"`+want.code+`","message":"`) || !strings.Contains(body, `"field":"`+want.field+`"`) {
				t.Errorf("%s: %s, want the code %s on %s", path, body, want.code, want.field)
			}
		}
		get("/ledger/checkpoint?size=99999999", 404)
	})
}
