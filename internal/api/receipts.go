package api

import (
	"net/http"

	"github.com/consentry/consentry/internal/consent"
	"github.com/consentry/consentry/internal/receipts"
)

func (s *Server) receiptRoutes() []Route {
	return []Route{
		{Method: "GET", Path: "/api/v1/consents/{record}/receipt", Tag: "consents", Status: 200, Response: receipts.Issued{},
			Summary: "The consent receipt of a consent record (docs/receipts.md): a compact JWS signed with the installation's Ed25519 key " +
				"(alg EdDSA, kid the key, typ JWT), which anyone can check with the keys at /.well-known/jwks.json, and its payload decoded. " +
				"An unknown record is a 404 (consent_record_not_found)",
			handle: s.receipt},
	}
}

func (s *Server) receipt(r *http.Request, _ consent.Actor) (int, any, error) {
	issued, err := s.Receipts.Issue(r.Context(), r.PathValue("record"))
	return pathResult(200, issued, err)
}
