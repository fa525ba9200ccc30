package api

import (
	"io"
	"mime"
	"net/http"

	"github.com/consentry/consentry/internal/auth"
	"github.com/consentry/consentry/internal/consent"
	"github.com/consentry/consentry/internal/errs"
	"github.com/consentry/consentry/internal/httpx"
	"github.com/consentry/consentry/internal/inbound"
)

// inboundPath is where a mail provider's inbound route posts messages to
// the privacy address.
const inboundPath = "/api/v1/inbound-email"

func (s *Server) inboundRoutes() []Route {
	return []Route{
		{Method: "POST", Path: inboundPath, Tag: "requests", Status: 202, RawBody: "message/rfc822", Response: InboundResult{},
			Summary: "Hand over an email sent to the privacy address, as the raw RFC 5322 message (Content-Type: message/rfc822, at most 1 MiB), " +
				"for a mail provider's inbound route; needs a token with the inbound scope. A subject with an erasure keyword records an erasure " +
				"request and emails its sender a confirmation link (docs/inbound-email.md). A bounce sent to a campaign message's Return-Path " +
				"(named in To or Cc) is recorded for its contact (docs/campaigns.md)",
			handle: s.inboundEmail},
	}
}

// InboundResult says what became of a message: requested (a request was
// recorded and its confirmation queued), limited (the sender's address got
// a confirmation within the last day), ignored (not a request, or a reply
// to a Return-Path that reports no failure) or bounced (a bounce of a
// campaign message was recorded).
type InboundResult struct {
	Outcome string `json:"outcome" enum:"@inbound_outcome"`
}

func (s *Server) inboundEmail(r *http.Request, _ consent.Actor) (int, any, error) {
	if err := requireScope(r, auth.ScopeInbound); err != nil {
		return 0, nil, err
	}
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "message/rfc822" {
		return 0, nil, errs.Invalid("Content-Type", "must be message/rfc822: the body is the raw message")
	}
	raw, err := io.ReadAll(http.MaxBytesReader(nil, r.Body, inbound.MaxMessageBytes))
	if e := httpx.TooLarge(err); e != nil {
		// 413, with the code and field the SMTP listener's refusal has.
		e.Code, e.Field = inbound.ErrTooLarge.Code, inbound.ErrTooLarge.Field
		return 0, nil, e
	}
	if err != nil {
		return 0, nil, errs.Invalid("message", "could not be read")
	}
	outcome, err := s.Inbound.Handle(r.Context(), raw)
	if err != nil {
		return 0, nil, err
	}
	return 202, InboundResult{Outcome: outcome}, nil
}

// inboundOnly keeps a token with the inbound scope to the inbound route: a
// mail provider holds it, and it must open nothing else.
func inboundOnly(r *http.Request, rt Route) error {
	if tok, _ := r.Context().Value(tokenKey{}).(*auth.Token); tok != nil && tok.Has(auth.ScopeInbound) && rt.Path != inboundPath {
		return &errs.Error{Kind: errs.KindForbidden, Code: "forbidden", Message: "a token with the inbound scope may only post inbound email"}
	}
	return nil
}
