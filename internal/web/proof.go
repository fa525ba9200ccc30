package web

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strconv"

	"github.com/consentry/consentry/internal/auth"
	"github.com/consentry/consentry/internal/consent"
	"github.com/consentry/consentry/internal/contact"
	"github.com/consentry/consentry/internal/errs"
	"github.com/consentry/consentry/internal/httpx"
	"github.com/consentry/consentry/internal/ledger"
	"github.com/consentry/consentry/internal/optin"
	"github.com/consentry/consentry/internal/webform"
)

func (s *Server) proofRoutes() {
	s.mux.HandleFunc("GET /admin/contacts/{id}/consents/{record}", s.need(auth.PermViewContacts, s.proofPage))
	s.mux.HandleFunc("GET /admin/contacts/{id}/consents/{record}/receipt", s.need(auth.PermViewContacts, s.receiptDownload))
	s.mux.HandleFunc("GET /admin/contacts/{id}/audit-bundle", s.need(auth.PermViewContacts, s.auditBundle))
	s.mux.HandleFunc("GET /admin/purposes/{id}/texts/{version}", s.need(auth.PermViewContacts, s.textVersionPage))
}

// proof is the proof view of one consent record: everything that stands
// behind it, gathered from the domain packages.
type proof struct {
	Contact *contact.Contact
	Record  *consent.Record
	Actors  map[string]string // user or API token id: its name
	// Text is the consent text as shown; TextMissing when its version is
	// gone (it never should be). A record whose evidence describes the
	// notice shown instead of a text version (an import's, with version 0)
	// has neither: the page shows the notice.
	Text        consent.ShownText
	TextMissing bool
	// Link is the token and email that confirmed the change; nil when it
	// was not confirmed by email.
	Link *optin.LinkEvidence
	// WebformID and WebformName name the webform of a post confirmed by
	// email; WebformUnknown says a direct webform post does not keep it,
	// WebformGone that a confirmed post's link or held post is gone.
	WebformID, WebformName      string
	WebformUnknown, WebformGone bool
	Ledger                      *ledger.Position
}

// proofPage shows one consent record's proof. A record that is not the
// contact's (unknown, or another contact's) is a 404 page that says so.
func (s *Server) proofPage(w http.ResponseWriter, r *http.Request, u *auth.User) {
	ctx := r.Context()
	c, err := s.Contacts.Get(ctx, r.PathValue("id"))
	if err != nil {
		s.fail(w, err, u)
		return
	}
	p := proof{Contact: c}
	if p.Record, err = s.Consent.RecordOf(ctx, c.ID, r.PathValue("record")); err != nil {
		if errs.Is(err, errs.KindNotFound) {
			s.render(w, http.StatusNotFound, "proof_missing", page{Title: "Consent record not found", User: u, Nav: "contacts", Data: c})
			return
		}
		s.fail(w, err, u)
		return
	}
	rec := p.Record
	if rec.TextVersion == 0 && rec.Evidence.Notice != "" {
		// No text version to look up: the notice is the evidence.
	} else if p.Text, err = s.Consent.ShownTextOf(ctx, rec); errs.Is(err, errs.KindNotFound) {
		p.TextMissing = true
	} else if err != nil {
		s.fail(w, err, u)
		return
	}
	if p.Link, err = optin.EvidenceOfLink(ctx, s.DB, c.ID, rec.Evidence.TokenID); err != nil {
		s.fail(w, err, u)
		return
	}
	switch {
	case p.Link != nil && p.Link.Token != nil && p.Link.Token.Purpose == auth.PurposeWebformConfirmation:
		if p.WebformID, p.WebformName, err = webform.FormOfConfirmation(ctx, s.DB.Read, p.Link.Token.SubjectID); err != nil {
			s.fail(w, err, u)
			return
		}
		p.WebformGone = p.WebformID == ""
	case rec.Evidence.Method == consent.MethodWebformConfirmed:
		p.WebformGone = true
	case rec.Evidence.Method == consent.MethodWebform:
		p.WebformUnknown = true
	}
	if p.Ledger, err = s.Consent.VerifyEntry(ctx, rec.LedgerSeq); err != nil {
		s.fail(w, err, u)
		return
	}
	if p.Actors, err = s.actorNames(ctx); err != nil {
		s.fail(w, err, u)
		return
	}
	s.render(w, http.StatusOK, "proof", page{Title: "Proof of consent: " + rec.PurposeName + ", " + rec.State, User: u, Nav: "contacts", Data: p})
}

// textVersionPage shows one version of a purpose's consent text with its
// translations, read-only, to anyone who may see contacts: the words a
// consent record names.
func (s *Server) textVersionPage(w http.ResponseWriter, r *http.Request, u *auth.User) {
	v, err := strconv.Atoi(r.PathValue("version"))
	if err != nil || v < 1 {
		s.render(w, http.StatusNotFound, "message", page{Title: "Consent text not found", User: u,
			Data: "A consent text version is a whole number from 1; " + strconv.Quote(r.PathValue("version")) + " is not one."})
		return
	}
	p, t, err := s.Consent.PurposeText(r.Context(), r.PathValue("id"), v)
	if errs.Is(err, errs.KindNotFound) {
		s.render(w, http.StatusNotFound, "message", page{Title: "Consent text not found", User: u,
			Data: "There is no such purpose, or it has no consent text version " + strconv.Itoa(v) + "."})
		return
	}
	if err != nil {
		s.fail(w, err, u)
		return
	}
	s.render(w, http.StatusOK, "text_version", page{Title: p.Name + ": consent text v" + strconv.Itoa(v), User: u, Nav: "contacts",
		Data: map[string]any{"Purpose": p, "Text": t}})
}

// auditBundle gives the contact's audit bundle (receipts.Service.Bundle)
// as a zip file; a contact without consent records has none.
func (s *Server) auditBundle(w http.ResponseWriter, r *http.Request, u *auth.User) {
	ctx := r.Context()
	c, err := s.Contacts.Get(ctx, r.PathValue("id"))
	if err != nil {
		s.fail(w, err, u)
		return
	}
	var buf bytes.Buffer
	if err := s.Receipts.Bundle(ctx, c.ID, &buf); err != nil {
		if errs.Is(err, errs.KindNotFound) {
			s.render(w, http.StatusNotFound, "proof_missing", page{Title: "No consent records", User: u, Nav: "contacts", Data: c})
			return
		}
		s.fail(w, err, u)
		return
	}
	httpx.Attachment(w, "application/zip", "audit-bundle-"+c.ID+".zip")
	w.Write(buf.Bytes())
}

// receiptDownload gives the consent record's receipt as a file,
// receipt-RECORD.json, with the same JSON as the API's
// GET /api/v1/consents/{record}/receipt. A record that is not the
// contact's is the proof view's 404 page.
func (s *Server) receiptDownload(w http.ResponseWriter, r *http.Request, u *auth.User) {
	ctx := r.Context()
	c, err := s.Contacts.Get(ctx, r.PathValue("id"))
	if err != nil {
		s.fail(w, err, u)
		return
	}
	rec, err := s.Consent.RecordOf(ctx, c.ID, r.PathValue("record"))
	if errs.Is(err, errs.KindNotFound) {
		s.render(w, http.StatusNotFound, "proof_missing", page{Title: "Consent record not found", User: u, Nav: "contacts", Data: c})
		return
	}
	if err != nil {
		s.fail(w, err, u)
		return
	}
	issued, err := s.Receipts.Issue(ctx, rec.ID)
	if err != nil {
		s.fail(w, err, u)
		return
	}
	body, err := json.MarshalIndent(issued, "", "  ")
	if err != nil {
		s.fail(w, err, u)
		return
	}
	httpx.Attachment(w, "application/json", "receipt-"+rec.ID+".json")
	w.Write(append(body, '\n'))
}
