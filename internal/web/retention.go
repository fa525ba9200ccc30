package web

import (
	"net/http"
	"strconv"
	"time"

	"github.com/consentry/consentry/internal/auth"
	"github.com/consentry/consentry/internal/contact"
	"github.com/consentry/consentry/internal/retention"
	"github.com/consentry/consentry/internal/settings"
)

// retentionShown is how many flagged contacts the review page lists.
const retentionShown = 200

func (s *Server) retentionRoutes() {
	s.mux.HandleFunc("GET /admin/retention", s.need(auth.PermDelete, s.retentionPage))
	s.post("/admin/retention/check", smallForm, s.need(auth.PermDelete, s.checkRetention))
}

// dueRow is a flagged contact on the review page.
type dueRow struct {
	retention.Due
	Contact *contact.Contact
}

// retentionPage lists the contacts flagged for retention and what the
// next run will erase, so that the operator can review them during the
// grace period.
func (s *Server) retentionPage(w http.ResponseWriter, r *http.Request, u *auth.User) {
	ctx := r.Context()
	st, err := settings.Get(ctx, s.DB.Read)
	if err != nil {
		s.fail(w, err, u)
		return
	}
	now := time.Now()
	next := now.Add(retention.RunInterval)
	due, erasable, err := s.Retention.Preview(ctx, next, retentionShown)
	if err != nil {
		s.fail(w, err, u)
		return
	}
	rows := make([]dueRow, 0, len(due))
	for _, d := range due {
		c, err := s.Contacts.Get(ctx, d.ContactID)
		if err != nil {
			continue // erased or deleted since the preview was read
		}
		rows = append(rows, dueRow{Due: d, Contact: c})
	}
	var flash string
	if q := r.URL.Query(); q.Has("flagged") {
		f, _ := strconv.Atoi(q.Get("flagged"))
		c, _ := strconv.Atoi(q.Get("cleared"))
		flash = "Checked every contact: " + strconv.Itoa(f) + " newly flagged, " + strconv.Itoa(c) + " no longer due."
	}
	s.render(w, http.StatusOK, "retention", page{Title: "Retention", User: u, Nav: "settings", Flash: flash,
		Data: map[string]any{"Rows": rows, "Erasable": erasable, "Grace": st.RetentionGraceDays, "Next": next, "Shown": retentionShown}})
}

// checkRetention flags and unflags contacts now rather than at the next
// scheduled check.
func (s *Server) checkRetention(w http.ResponseWriter, r *http.Request, u *auth.User) {
	flagged, cleared, err := s.Retention.Flag(r.Context())
	if err != nil {
		s.fail(w, err, u)
		return
	}
	s.Log.InfoContext(r.Context(), "retention checked", "flagged", flagged, "cleared", cleared, "by", u.ID)
	http.Redirect(w, r, "/admin/retention?flagged="+strconv.Itoa(flagged)+"&cleared="+strconv.Itoa(cleared), http.StatusSeeOther)
}
