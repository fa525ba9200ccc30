package receipts

import (
	"archive/zip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/consentry/consentry/internal/consent"
	"github.com/consentry/consentry/internal/errs"
)

// bundleReadme is README.md in an audit bundle: what is in it and how to
// check it without trusting the operator.
const bundleReadme = `# Audit bundle

This bundle is the evidence of one contact's consents, made by Consentry
on %s for the controller named in each receipt. It can be checked without
access to the controller's systems, and without trusting them.

| file | what it is |
|---|---|
| records.json | the contact's consent records as the controller keeps them (after an erasure: what remains of them) |
| receipts/RECORD.json | the signed consent receipt of each record (a compact JWS), with the proof that its ledger event is in the ledger |
| checkpoint.txt | a signed checkpoint of the ledger: its size and root hash, signed by the controller's key |
| key.txt | the controller's verifier keys, one per line |
| jwks.json | the same keys as a JSON Web Key Set |

## Checking

With Consentry's command, for each receipt:

    consentry ledger verify-receipt receipts/RECORD.json --checkpoint checkpoint.txt --key key.txt

It checks the receipt's signature; that the ledger event in the receipt
hashes to the hash the receipt names and says what the receipt says; the
checkpoint's signature; and that the event is in the tree the checkpoint
names.

With any other tools: the receipt is a JWS (alg EdDSA) to check with
jwks.json; its ledger.event shows every field its hash covers as the hash
covers it (strings as text, integers such as recorded_at, microseconds
since the Unix epoch, as their decimal digits), so event_hash is
recomputed from it as the controller's docs/ledger.md describes; the
checkpoint is a signed note (golang.org/x/mod/sumdb/note)
whose text is the origin, the number of events and the base64 root hash; the
proof is an RFC 6962 inclusion proof of the leaf SHA-256(0x00 || event
hash) at index seq-1 (golang.org/x/mod/sumdb/tlog CheckRecord).

Get key.txt from a copy you trust, not only from this bundle: the
controller publishes it at /ledger/key. A checkpoint you obtained earlier,
or from elsewhere (a copy the controller sends outside its database),
proves more than this one: ask the controller for a proof that the ledger
grew from it (/ledger/consistency?from=SIZE).
`

// Bundle writes the audit bundle of one contact (a zip) to w: the
// contact's consent records, the receipt of each with its proof, all
// against one checkpoint made to cover them, the checkpoint and the keys.
// A contact without consent records is a not-found error, and nothing is
// written; so is one that does not exist.
func (s *Service) Bundle(ctx context.Context, contactID string, w io.Writer) error {
	records, err := s.Consent.History(ctx, contactID)
	if err != nil {
		return err
	}
	if len(records) == 0 {
		return errs.NotFound("consent record", "")
	}
	if s.Tree == nil {
		return fmt.Errorf("receipts: an audit bundle needs the ledger tree")
	}
	last := records[len(records)-1].LedgerSeq
	c, err := s.Tree.Latest(ctx)
	if errs.Is(err, errs.KindNotFound) || (err == nil && c.Size < last) {
		c, err = s.Tree.MakeCheckpoint(ctx)
	}
	if err != nil {
		return err
	}
	keys, err := s.Signing.Public(ctx)
	if err != nil {
		return err
	}
	var vkeys strings.Builder
	for _, k := range keys {
		vkeys.WriteString(k.VerifierKey() + "\n")
	}
	files := []struct {
		name string
		body any
	}{
		{"README.md", fmt.Sprintf(bundleReadme, s.now().UTC().Format(time.DateOnly))},
		{"records.json", recordsDoc(records)},
		{"checkpoint.txt", c.Note},
		{"key.txt", vkeys.String()},
		{"jwks.json", JWKS(keys)},
	}
	for _, r := range records {
		issued, err := s.IssueAt(ctx, r.ID, c.Size)
		if err != nil {
			return err
		}
		files = append(files, struct {
			name string
			body any
		}{"receipts/" + r.ID + ".json", issued})
	}
	z := zip.NewWriter(w)
	for _, f := range files {
		out, err := z.CreateHeader(&zip.FileHeader{Name: f.name, Method: zip.Deflate, Modified: s.now()})
		if err != nil {
			return err
		}
		switch b := f.body.(type) {
		case string:
			_, err = io.WriteString(out, b)
		default:
			enc := json.NewEncoder(out)
			enc.SetIndent("", "  ")
			err = enc.Encode(b)
		}
		if err != nil {
			return err
		}
	}
	return z.Close()
}

// recordsDoc is records.json: the records as the API's history gives them.
func recordsDoc(records []consent.Record) any {
	return map[string]any{"consent_records": records}
}
