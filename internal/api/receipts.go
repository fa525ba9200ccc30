package api

import (
	"bytes"
	"net/http"
	"strconv"

	"github.com/consentry/consentry/internal/consent"
	"github.com/consentry/consentry/internal/errs"
	"github.com/consentry/consentry/internal/httpx"
	"github.com/consentry/consentry/internal/receipts"
)

func (s *Server) receiptRoutes() []Route {
	return []Route{
		{Method: "GET", Path: "/api/v1/consents/{record}/receipt", Tag: "consents", Status: 200, Response: receipts.Issued{},
			Summary: "The consent receipt of a consent record (docs/receipts.md): a compact JWS signed with the installation's Ed25519 key " +
				"(alg EdDSA, kid the key, typ JWT), which anyone can check with the keys at /.well-known/jwks.json, and its payload decoded. " +
				"An unknown record is a 404 (consent_record_not_found). ledger_proof proves the record's ledger event is in the tree of a signed checkpoint: " +
				"the latest, or with ?checkpoint=N the one made at tree size N (docs/ledger.md)",
			handle: s.receipt},
		{Method: "GET", Path: "/api/v1/contacts/{id}/audit-bundle", Tag: "consents", Status: 200, Files: []string{"application/zip"},
			Summary: "The audit bundle of a contact (docs/receipts.md): a zip of the contact's consent records, the signed receipt of each with " +
				"its ledger proof, one signed checkpoint they are proved against, the verifier keys and a README on checking them offline. " +
				"A contact without consent records is a 404",
			handle: s.auditBundle},
	}
}

func (s *Server) auditBundle(r *http.Request, _ consent.Actor) (int, any, error) {
	id := r.PathValue("id")
	if _, err := s.Contacts.Get(r.Context(), id); err != nil {
		return 0, nil, inPath(err)
	}
	var buf bytes.Buffer // whole before the first byte goes out: a failure sends an error, not half a zip
	if err := s.Receipts.Bundle(r.Context(), id, &buf); err != nil {
		return 0, nil, inPath(err)
	}
	return 200, zipFile{name: "audit-bundle-" + id + ".zip", body: buf.Bytes()}, nil
}

// zipFile is a zip archive sent as a file.
type zipFile struct {
	name string
	body []byte
}

func (z zipFile) writeFile(w http.ResponseWriter, status int) error {
	httpx.Attachment(w, "application/zip", z.name)
	w.WriteHeader(status)
	_, err := w.Write(z.body)
	return err
}

func (s *Server) receipt(r *http.Request, _ consent.Actor) (int, any, error) {
	var at int64
	if v := r.URL.Query().Get("checkpoint"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 1 {
			return 0, nil, errs.Invalid("checkpoint", "a checkpoint is named by its tree size, a whole number from 1")
		}
		at = n
	}
	issued, err := s.Receipts.IssueAt(r.Context(), r.PathValue("record"), at)
	return pathResult(200, issued, err)
}
