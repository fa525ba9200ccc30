package public

import (
	"encoding/json"
	"errors"
	"net/http"

	"github.com/consentry/consentry/internal/httpx"
	"github.com/consentry/consentry/internal/receipts"
)

// JWKSPath is where the public halves of the installation's signing keys
// are served, as RFC 8615 well-known address: what checks a consent
// receipt.
const JWKSPath = "/.well-known/jwks.json"

// jwks serves every signing key's public half, retired ones too, so that
// a receipt signed before a key rotation still verifies after it. It is
// no one's personal data: any site may read it (CORS) and caches may keep
// it a few minutes, short enough that a new key is found soon after a
// rotation (a receipt signed under it names a kid the cached set lacks,
// and a verifier fetches again).
func (s *Server) jwks(w http.ResponseWriter, r *http.Request) {
	set, err := s.Receipts.JWKS(r.Context())
	if err != nil {
		s.fault(w, r, "serve the signing keys", err, "The signing keys could not be read.")
		return
	}
	body, err := json.Marshal(set)
	if err != nil {
		s.Log.ErrorContext(r.Context(), "encode the signing keys", "err", err)
		http.Error(w, "The signing keys could not be read.", http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "application/jwk-set+json")
	h.Set("Cache-Control", "public, max-age=300")
	h.Set("Access-Control-Allow-Origin", "*")
	w.Write(body)
}

// receiptDownload gives the signed consent receipt a receipt email links
// to, as a file. Opening the link changes nothing (mail scanners open
// links); a link that gives no receipt is the one page for every link
// that cannot be used.
func (s *Server) receiptDownload(w http.ResponseWriter, r *http.Request) {
	issued, err := s.Receipts.ByLink(r.Context(), r.PathValue("token"))
	if errors.Is(err, receipts.ErrNoLink) {
		s.gone(w, r)
		return
	}
	if err != nil {
		s.fault(w, r, "issue a receipt from its link", err, "The receipt could not be made; try again later.")
		return
	}
	body, err := json.MarshalIndent(issued, "", "  ")
	if err != nil {
		s.Log.ErrorContext(r.Context(), "encode a receipt", "err", err)
		http.Error(w, "The receipt could not be made; try again later.", http.StatusInternalServerError)
		return
	}
	httpx.Attachment(w, "application/json", "receipt-"+issued.Payload.RecordID+".json")
	w.Write(append(body, '\n'))
}
