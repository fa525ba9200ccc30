package receipts

import (
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/consentry/consentry/internal/ledger"
	"github.com/consentry/consentry/internal/ledgertree"
	"github.com/consentry/consentry/internal/signing"
)

// Checked is what CheckOffline established about a receipt.
type Checked struct {
	Receipt    *Receipt
	KeyID      string // the key that signed the receipt
	TreeSize   int64  // the checkpoint the ledger event is proved in
	Checkpoint string // that checkpoint's key
}

// CheckOffline checks a receipt as downloaded (the JSON of Issued: the
// JWS and its ledger proof) with nothing but a signed checkpoint and the
// installation's verifier keys ("name+hash+base64", as /ledger/key serves
// them, one per line): no database and no network. It checks, in order:
//
//   - the receipt's signature, by the key its kid names;
//   - that the ledger event the receipt carries hashes to the event hash
//     it names (docs/ledger.md's encoding), and says what the receipt says:
//     the record, the contact's reference, the purpose, the state, the
//     legal basis;
//   - the checkpoint's signature;
//   - the inclusion proof: that event is leaf seq-1 of the tree whose root
//     the checkpoint signs.
//
// The error says which step failed and why. A proof made against another
// checkpoint than the one given fails with the sizes of both: ask for the
// receipt again with ?checkpoint=SIZE.
func CheckOffline(doc, checkpoint []byte, verifierKeys string) (*Checked, error) {
	var keys []signing.PublicKey
	var vkeys []string
	for _, line := range strings.Split(verifierKeys, "\n") {
		if line = strings.TrimSpace(line); line == "" {
			continue
		}
		k, err := signing.ParseVerifierKey(line)
		if err != nil {
			return nil, fmt.Errorf("key: %w", err)
		}
		keys, vkeys = append(keys, k), append(vkeys, line)
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("key: no verifier key given")
	}
	var issued Issued
	if err := json.Unmarshal(doc, &issued); err != nil || issued.JWS == "" {
		return nil, fmt.Errorf("receipt: not a receipt as downloaded (a JSON document with receipt and ledger_proof): %v", err)
	}
	r, err := Verify(issued.JWS, keys)
	if err != nil {
		return nil, fmt.Errorf("receipt: %w", err)
	}
	out := &Checked{Receipt: r, KeyID: signedBy(issued.JWS)}
	if err := checkEvent(r); err != nil {
		return nil, fmt.Errorf("ledger event: %w", err)
	}
	c, err := ledgertree.OpenCheckpoint(checkpoint, vkeys...)
	if err != nil {
		return nil, fmt.Errorf("checkpoint: %w", err)
	}
	p := issued.LedgerProof
	switch {
	case p == nil:
		return nil, fmt.Errorf("proof: the receipt carries no ledger proof")
	case p.Seq != r.Ledger.Seq || p.LeafIndex != r.Ledger.Seq-1:
		return nil, fmt.Errorf("proof: it proves event %d, the receipt's is %d", p.Seq, r.Ledger.Seq)
	case p.TreeSize != c.Size:
		return nil, fmt.Errorf("proof: it is for the checkpoint of size %d, and the checkpoint given is of size %d; "+
			"download the receipt again with ?checkpoint=%d", p.TreeSize, c.Size, c.Size)
	}
	hashes, err := ledgertree.DecodeHashes(p.Hashes)
	if err != nil {
		return nil, fmt.Errorf("proof: %w", err)
	}
	leaf, err := hex.DecodeString(r.Ledger.EventHash)
	if err != nil {
		return nil, fmt.Errorf("ledger event: its hash is not hex")
	}
	if err := tlog.CheckRecord(hashes, c.Size, c.Root, p.LeafIndex, tlog.RecordHash(leaf)); err != nil {
		return nil, fmt.Errorf("proof: the event is not in the checkpoint's tree: %w", err)
	}
	out.TreeSize, out.Checkpoint = c.Size, c.KeyID
	return out, nil
}

// checkEvent checks that the receipt's ledger event hashes to the event
// hash it names and says what the receipt says.
func checkEvent(r *Receipt) error {
	e := r.Ledger.Event
	if e == nil {
		return fmt.Errorf("the receipt carries no ledger event")
	}
	h, err := ledger.ComputeHash(e.PrevHash, e)
	if err != nil {
		return err
	}
	if h != r.Ledger.EventHash || e.Hash != r.Ledger.EventHash || e.PrevHash != r.Ledger.PrevHash || e.Seq != r.Ledger.Seq {
		return fmt.Errorf("the event does not hash to %s", r.Ledger.EventHash)
	}
	purpose := ""
	basis := ""
	if len(r.Services) > 0 && len(r.Services[0].Purposes) > 0 {
		purpose, basis = r.Services[0].Purposes[0].PurposeID, r.Services[0].Purposes[0].LegalBasis
	}
	for _, f := range []struct{ name, event, receipt string }{
		{"kind", e.Kind, ledger.KindConsent}, {"record", e.RecordID, r.RecordID}, {"contact", e.ContactRef, r.PIIPrincipalID},
		{"purpose", e.PurposeID, purpose}, {"state", e.Value, r.State}, {"legal basis", e.LegalBasis, basis},
	} {
		if f.event != f.receipt {
			return fmt.Errorf("the event's %s is %q, the receipt's %q", f.name, f.event, f.receipt)
		}
	}
	return nil
}

// signedBy is the kid in a compact JWS's header, or "".
func signedBy(compact string) string {
	head, _, _ := strings.Cut(compact, ".")
	var h struct {
		Kid string `json:"kid"`
	}
	if raw, err := base64.RawURLEncoding.DecodeString(head); err == nil {
		json.Unmarshal(raw, &h)
	}
	return h.Kid
}
