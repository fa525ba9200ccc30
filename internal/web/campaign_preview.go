package web

import (
	"crypto/rand"
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/consentry/consentry/internal/auth"
	"github.com/consentry/consentry/internal/campaign"
	"github.com/consentry/consentry/internal/errs"
	"github.com/consentry/consentry/internal/httpx"
)

// The campaign editor's live preview. A script of this site (its only
// one, static/campaign-preview.js) posts the editor's form as it is
// typed to previewDraft, which renders it with the code that sends and
// answers with the subject, the plain text and the address of the HTML;
// the page's sandboxed frame then loads that address, served by
// draftFrame with the preview's own restrictive policy. The HTML is not
// written into the frame (srcdoc) because such a document inherits the
// editor's policy, which blocks the message's inline styles and images.
// Without the script the editor is as before: save, then preview on the
// campaign's page.

// editorScript is the campaign editor's script, under static/.
const editorScript = "campaign-preview.js"

// editorPolicy is the admin policy with what the editor's preview needs:
// its script, the post it makes, and the frame it loads.
var editorPolicy = adminPolicy.CSP + "; script-src 'self'; connect-src 'self'; frame-src 'self'"

// draftFrames keeps the HTML of the editor's latest previews for a few
// minutes, for their frames to load; in memory only, as nothing of a
// draft is saved. Each user has a few at most, and all users together a
// bounded number, the oldest forgotten first.
type draftFrames struct {
	mu sync.Mutex
	m  map[string]draftFrame // by token
}

type draftFrame struct {
	user, html string
	at         time.Time
}

const (
	draftFrameLife    = 10 * time.Minute
	draftFramesByUser = 4
	maxDraftFrames    = 200
)

// put keeps html for user and returns the token that reads it back.
func (d *draftFrames) put(user, html string, now time.Time) string {
	token := rand.Text()
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.m == nil {
		d.m = map[string]draftFrame{}
	}
	mine := 0
	for k, f := range d.m {
		if now.Sub(f.at) > draftFrameLife {
			delete(d.m, k)
		} else if f.user == user {
			mine++
		}
	}
	for mine >= draftFramesByUser || len(d.m) >= maxDraftFrames {
		// The user's own oldest goes when they have too many; otherwise
		// the oldest of all.
		oldest := ""
		for k, f := range d.m {
			if mine >= draftFramesByUser && f.user != user {
				continue
			}
			if oldest == "" || f.at.Before(d.m[oldest].at) {
				oldest = k
			}
		}
		if d.m[oldest].user == user {
			mine--
		}
		delete(d.m, oldest)
	}
	d.m[token] = draftFrame{user: user, html: html, at: now}
	return token
}

// get returns the HTML token was given for, if user was given it and it
// is still kept.
func (d *draftFrames) get(user, token string, now time.Time) (string, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	f, ok := d.m[token]
	if !ok || f.user != user || now.Sub(f.at) > draftFrameLife {
		return "", false
	}
	return f.html, true
}

// draftPreview is the answer to the editor's preview post: the message,
// with a note of who it is made out to, or the error that stops it.
type draftPreview struct {
	Subject string `json:"subject"`
	Text    string `json:"text"`
	// Frame is the address of the HTML, for the sandboxed frame.
	Frame string `json:"frame,omitempty"`
	Note  string `json:"note,omitempty"`
	// Field is the form's field the Error is about, such as html_en.
	Field string `json:"field,omitempty"`
	Error string `json:"error,omitempty"`
}

// previewDraft renders the editor's form, posted as the editor holds it,
// as the contact in preview_contact (an id or an address) would receive
// it, or, with none, as the example contact Alex Example would in the
// language preview_language. It saves nothing. It answers JSON: the
// message, or, with the status of the error, the field and what is
// wrong (an unknown tag is a 400 naming the field and the tag).
func (s *Server) previewDraft(w http.ResponseWriter, r *http.Request, u *auth.User) {
	if !parseUpTo(w, r, maxCampaignForm) {
		return
	}
	ctx, f := r.Context(), r.PostForm
	in, langs := campaignInput(f)
	var contactID string
	var err error
	if ref := strings.TrimSpace(f.Get("preview_contact")); ref != "" {
		contactID, err = s.contactRef(ctx, u, ref)
	}
	var rd *campaign.Rendered
	if err == nil {
		rd, err = s.CampaignSender.RenderDraft(ctx, in, f.Get("preview_language"), contactID)
	}
	if err != nil {
		e := errs.As(err)
		if e == nil {
			s.Log.Error("campaign preview", "err", err)
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
	out := draftPreview{Subject: rd.Subject, Text: rd.Text,
		Frame: "/admin/campaigns/preview/" + s.drafts.put(u.ID, rd.HTML, time.Now()) + "/html"}
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

// draftFrame serves the HTML of a preview that previewDraft made for this
// user, for the editor's frame, with the policy of campaignPreviewHTML;
// one that is gone, or another user's, is a 404.
func (s *Server) draftFrame(w http.ResponseWriter, r *http.Request, u *auth.User) {
	html, ok := s.drafts.get(u.ID, r.PathValue("token"), time.Now())
	if !ok {
		http.Error(w, "This preview is gone; change the form to see it again.", http.StatusNotFound)
		return
	}
	writeMessageHTML(w, html)
}
