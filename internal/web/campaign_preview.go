package web

import (
	"encoding/json"
	"net/http"
	"strings"

	"github.com/consentry/consentry/internal/auth"
	"github.com/consentry/consentry/internal/campaign"
	"github.com/consentry/consentry/internal/errs"
	"github.com/consentry/consentry/internal/httpx"
)

// The campaign editor's live preview. A script of this site (its only
// one, static/campaign-preview.js) posts the editor's form, as it is
// typed, to previewDraft, which renders it with the code that sends and
// answers with the subject, the plain text and who it is made out to, or
// the error; then it posts the same form into a new sandboxed frame, to
// previewDraftHTML, which answers with the HTML under the preview's own
// policy. The HTML is not written into the frame (srcdoc) because such a
// document inherits the editor's policy, which blocks the message's
// inline styles and images; and it is not kept on the server for the
// frame to load, since the next request may reach another instance.
// Without the script the editor is as before: save, then preview on the
// campaign's page.

// editorScript is the campaign editor's script, under static/.
const editorScript = "campaign-preview.js"

// editorPolicy is the admin policy with what the editor's preview needs:
// its script, the post it makes, and the frame it fills.
var editorPolicy = adminPolicy.CSP + "; script-src 'self'; connect-src 'self'; frame-src 'self'"

// draftPreview is the answer to the editor's preview post: the message,
// with a note of who it is made out to, or the error that stops it.
type draftPreview struct {
	Subject string `json:"subject"`
	Text    string `json:"text"`
	Note    string `json:"note,omitempty"`
	// Field is the form's field the Error is about, such as html_en.
	Field string `json:"field,omitempty"`
	Error string `json:"error,omitempty"`
}

// renderDraft renders the editor's form, posted as the editor holds it,
// as the contact in preview_contact (an id or an address) would receive
// it, or, with none, as the example contact Alex Example would in the
// language preview_language. It saves nothing. It returns the contact's
// id ("" for the example) and the languages of the form's variants, which
// name the fields of an error.
func (s *Server) renderDraft(r *http.Request, u *auth.User) (rd *campaign.Rendered, contactID string, langs []string, err error) {
	ctx, f := r.Context(), r.PostForm
	in, langs := campaignInput(f)
	if ref := strings.TrimSpace(f.Get("preview_contact")); ref != "" {
		if contactID, err = s.contactRef(ctx, u, ref); err != nil {
			return nil, "", langs, err
		}
	}
	rd, err = s.CampaignSender.RenderDraft(ctx, in, f.Get("preview_language"), contactID)
	return rd, contactID, langs, err
}

// previewDraft answers the editor's preview post (see renderDraft) with
// JSON: the subject, plain text and who it is made out to, or, with the
// status of the error, the field and what is wrong (an unknown tag is a
// 400 naming the field and the tag).
func (s *Server) previewDraft(w http.ResponseWriter, r *http.Request, u *auth.User) {
	if err := r.ParseForm(); err != nil {
		status, _, msg := formError(err)
		writePreview(w, status, draftPreview{Error: msg})
		return
	}
	rd, contactID, langs, err := s.renderDraft(r, u)
	if err != nil {
		e := errs.As(err)
		if e == nil {
			s.Log.ErrorContext(r.Context(), "campaign preview", "err", err)
			writePreview(w, http.StatusInternalServerError, draftPreview{Error: "The server could not show the preview; the log says why."})
			return
		}
		field := campaignField(e, langs)
		msg := e.Message
		if field == "contact" && e.Kind == errs.KindNotFound {
			msg = "no contact has this id"
		}
		if l := previewFieldLabel(field); l != "" {
			msg = l + ": " + msg
		}
		writePreview(w, httpx.Status(err), draftPreview{Field: field, Error: msg})
		return
	}
	out := draftPreview{Subject: rd.Subject, Text: rd.Text}
	lang := languageLabels[rd.Language]
	switch {
	case contactID == "":
		out.Note = "As the example contact " + campaign.SampleFirstName + " " + campaign.SampleLastName + " would get it, in " + lang + "."
	case rd.Reason != "":
		out.Note = "This contact would not get it: " + labelOr(reasonLabels, rd.Reason) + ". Shown in " + lang + ", as they would get it otherwise."
	case rd.Tracked:
		out.Note = "As this contact would get it, in " + lang + ", with opens and clicks tracked."
	default:
		out.Note = "As this contact would get it, in " + lang + "."
	}
	writePreview(w, http.StatusOK, out)
}

// previewDraftHTML answers the same post (see renderDraft), made into the
// preview's frame, with the message's HTML, under the policy of
// campaignPreviewHTML; an error is its message as plain text.
func (s *Server) previewDraftHTML(w http.ResponseWriter, r *http.Request, u *auth.User) {
	if err := r.ParseForm(); err != nil {
		status, _, msg := formError(err)
		http.Error(w, "No preview: "+msg, status)
		return
	}
	rd, _, _, err := s.renderDraft(r, u)
	if err != nil {
		msg := "The server could not show the preview; the log says why."
		if e := errs.As(err); e != nil {
			msg = "No preview: " + e.Error()
		} else {
			s.Log.ErrorContext(r.Context(), "campaign preview", "err", err)
		}
		status := httpx.Status(err)
		if status == http.StatusServiceUnavailable {
			w.Header().Set("Retry-After", httpx.RetryAfter)
		}
		http.Error(w, msg, status)
		return
	}
	writeMessageHTML(w, rd.HTML)
}

func writePreview(w http.ResponseWriter, status int, p draftPreview) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(p)
}

// previewFieldLabel names a field of the campaign form in words, for the
// preview's errors, which are shown away from the field; "" for none.
func previewFieldLabel(field string) string {
	if i := strings.LastIndexByte(field, '_'); i > 0 {
		if lang, ok := languageLabels[field[i+1:]]; ok {
			if part, ok := map[string]string{"subject": "Subject", "html": "HTML body", "text": "Plain text"}[field[:i]]; ok {
				return part + ", " + lang
			}
		}
	}
	return map[string]string{"name": "Name", "purpose": "Purpose", "lists": "Lists", "condition": "Condition",
		"opt_in_policy": "Opt-in policy", "template_id": "Template", "default_language": "Default language",
		"variants": "Content", "contact": "Preview as"}[field]
}
