package web

import (
	"html/template"
	"io"
	"maps"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	_ "time/tzdata" // time zones for the schedule form, whatever the host has

	"github.com/consentry/consentry/internal/audit"
	"github.com/consentry/consentry/internal/auth"
	"github.com/consentry/consentry/internal/campaign"
	"github.com/consentry/consentry/internal/errs"
	"github.com/consentry/consentry/internal/httpx"
	"github.com/consentry/consentry/internal/i18n"
	"github.com/consentry/consentry/internal/lists"
	"github.com/consentry/consentry/internal/settings"
	"github.com/consentry/consentry/internal/web/chart"
)

func (s *Server) campaignRoutes() {
	c := func(h handler) http.HandlerFunc { return s.need(auth.PermCampaigns, h) }
	s.mux.HandleFunc("GET /admin/campaigns", c(s.campaignsPage))
	s.mux.HandleFunc("GET /admin/campaigns/new", c(s.newCampaignPage))
	s.post("/admin/campaigns", maxCampaignForm, c(s.saveCampaign))
	s.mux.HandleFunc("GET /admin/campaigns/{id}", c(s.campaignPage))
	s.mux.HandleFunc("GET /admin/campaigns/{id}/edit", c(s.editCampaignPage))
	s.mux.HandleFunc("GET /admin/campaigns/{id}/preview/{contact}/html", c(s.campaignPreviewHTML))
	s.post("/admin/campaigns/{id}/edit", maxCampaignForm, c(s.saveCampaign))
	s.post("/admin/campaigns/preview", maxCampaignForm, c(s.previewDraft))
	s.post("/admin/campaigns/preview/html", maxCampaignForm, c(s.previewDraftHTML))
	s.post("/admin/campaigns/{id}/{action}", smallForm, c(s.campaignAction))
	s.mux.HandleFunc("GET /admin/campaign-templates", c(s.campaignTemplatesPage))
	s.mux.HandleFunc("GET /admin/campaign-templates/new", c(s.campaignTemplatePage))
	s.post("/admin/campaign-templates", maxCampaignForm, c(s.saveCampaignTemplate))
	s.mux.HandleFunc("GET /admin/campaign-templates/{id}", c(s.campaignTemplatePage))
	s.post("/admin/campaign-templates/{id}", maxCampaignForm, c(s.saveCampaignTemplate))
	s.post("/admin/campaign-templates/{id}/delete", smallForm, c(s.deleteCampaignTemplate))
}

// campaignDone are the notices shown after a campaign form succeeded and
// redirected, by the done= the redirect carries.
var campaignDone = map[string]string{"created": "Campaign saved as a draft.", "saved": "Campaign saved.",
	"send": "Sending started.", "schedule": "Campaign scheduled.", "unschedule": "Back to draft.", "pause": "Sending paused.",
	"resume": "Sending resumed.", "cancel": "Campaign cancelled.", "test": "Test message sent.",
	"resolve": "The audience is fixed.", "retry-unknown": "The recipients whose outcome was unknown are queued again.",
	"deleted": "Draft deleted.", "template_saved": "Template saved.", "template_deleted": "Template deleted."}

// maxCampaignForm bounds a campaign form: three languages of HTML and
// text bodies, each up to 512 KiB.
const maxCampaignForm = 4 << 20

func (s *Server) campaignsPage(w http.ResponseWriter, r *http.Request, u *auth.User) {
	cs, err := s.Campaigns.List(r.Context())
	s.showCampaignList(w, r, u, "campaigns", "Campaigns", cs, err, http.StatusOK, nil)
}

// showCampaignList renders a list page of the campaign pages, with the
// notice of the form that redirected to it, or the error that stopped
// reading the list.
func (s *Server) showCampaignList(w http.ResponseWriter, r *http.Request, u *auth.User, name, title string, data any, err error, status int, fe map[string]string) {
	if err != nil {
		s.fail(w, err, u)
		return
	}
	s.render(w, status, name, page{Title: title, User: u, Nav: "campaigns", Errors: fe,
		Flash: campaignDone[r.URL.Query().Get("done")], Data: data})
}

// campaignForm is the new and edit page of a campaign.
type campaignForm struct {
	ID        string // empty for a new one
	Form      url.Values
	Purposes  []string
	Lists     []*lists.List
	Templates []*campaign.Template
	Policies  []string
	Languages []string
	Tags      []string
	// ConditionCaret points at where the condition is wrong.
	ConditionCaret string
	// Sample is the example contact the live preview is made out to.
	Sample string
}

func (s *Server) newCampaignPage(w http.ResponseWriter, r *http.Request, u *auth.User) {
	st, err := settings.Get(r.Context(), s.DB.Read)
	if err != nil {
		s.fail(w, err, u)
		return
	}
	f := url.Values{"purpose": {campaign.DefaultPurpose}, "default_language": {st.DefaultLanguage}}
	s.showCampaignForm(w, r, u, http.StatusOK, "", f, nil, 0)
}

func (s *Server) editCampaignPage(w http.ResponseWriter, r *http.Request, u *auth.User) {
	c, err := s.Campaigns.Get(r.Context(), r.PathValue("id"))
	if err != nil {
		s.fail(w, err, u)
		return
	}
	f := url.Values{"name": {c.Name}, "purpose": {c.Purpose}, "lists": c.ListIDs, "condition": {c.Condition},
		"opt_in_policy": {c.OptInPolicy}, "default_language": {c.DefaultLanguage}, "template_id": {c.TemplateID}}
	for _, v := range c.Variants {
		f.Set("subject_"+v.Language, v.Subject)
		f.Set("html_"+v.Language, v.HTML)
		f.Set("text_"+v.Language, v.Text)
	}
	s.showCampaignForm(w, r, u, http.StatusOK, c.ID, f, nil, 0)
}

func (s *Server) showCampaignForm(w http.ResponseWriter, r *http.Request, u *auth.User, status int, id string, f url.Values, fe map[string]string, pos int) {
	ctx := r.Context()
	p := campaignForm{ID: id, Form: f, Policies: settings.Policies, Languages: i18n.Languages, Tags: campaign.BodyTags,
		Sample: campaign.SampleFirstName + " " + campaign.SampleLastName}
	var err error
	if p.Purposes, err = s.purposeNames(ctx); err != nil {
		s.fail(w, err, u)
		return
	}
	if p.Lists, err = s.Lists.All(ctx); err == nil {
		p.Templates, err = s.Campaigns.Templates(ctx)
	}
	if err != nil {
		s.fail(w, err, u)
		return
	}
	if pos > 0 {
		p.ConditionCaret = strings.Repeat(" ", pos-1) + "^"
	}
	title := "New campaign"
	if id != "" {
		title = "Edit campaign"
	}
	w.Header().Set("Content-Security-Policy", editorPolicy)
	s.render(w, status, "campaign_edit", page{Title: title, User: u, Nav: "campaigns", Errors: fe, Data: p, Script: editorScript})
}

// variantField is a variant's field as errs names it, variants[i].subject.
var variantField = regexp.MustCompile(`^variants\[(\d+)\]\.(\w+)$`)

// campaignInput reads the campaign form, the editor's, into what the
// campaign package takes, with the languages of its variants in order. A
// language's content is taken only when its subject or body is given.
func campaignInput(f url.Values) (campaign.Input, []string) {
	listIDs := f["lists"]
	in := campaign.Input{Name: formText(f, "name"), Purpose: formText(f, "purpose"), TemplateID: formText(f, "template_id"),
		Lists: &listIDs, Condition: formText(f, "condition"), OptInPolicy: formText(f, "opt_in_policy"),
		DefaultLanguage: formText(f, "default_language")}
	var langs []string
	vs := []campaign.Variant{}
	for _, l := range i18n.Languages {
		v := campaign.Variant{Language: l, Subject: f.Get("subject_" + l), HTML: f.Get("html_" + l), Text: f.Get("text_" + l)}
		if strings.TrimSpace(v.Subject) != "" || strings.TrimSpace(v.HTML) != "" {
			vs = append(vs, v)
			langs = append(langs, l)
		}
	}
	in.Variants = &vs
	return in, langs
}

// campaignField is the field of the campaign form that e is about: a
// variant's, variants[i].html, is html_ and the language of the i-th of
// langs; "form" when it is about no field, or a conflict of the whole.
func campaignField(e *errs.Error, langs []string) string {
	field := e.Field
	if m := variantField.FindStringSubmatch(field); m != nil {
		if i, _ := strconv.Atoi(m[1]); i < len(langs) {
			field = m[2] + "_" + langs[i]
		}
	}
	if field == "" || e.Kind == errs.KindConflict {
		field = "form"
	}
	return field
}

// saveCampaign creates a campaign, or changes one from its edit page, and
// redirects to it; an error shows the form again, next to its field.
func (s *Server) saveCampaign(w http.ResponseWriter, r *http.Request, u *auth.User) {
	if !s.parse(w, r, u) {
		return
	}
	f := r.PostForm
	in, langs := campaignInput(f)
	id := r.PathValue("id")
	var c *campaign.Campaign
	var err error
	if id == "" {
		c, err = s.Campaigns.Create(r.Context(), audit.Actor(actor(u)), in)
	} else {
		c, err = s.Campaigns.Update(r.Context(), audit.Actor(actor(u)), id, in)
	}
	if err != nil {
		e := errs.As(err)
		if e == nil || e.Kind == errs.KindNotFound && e.Field == "campaign" {
			s.fail(w, err, u)
			return
		}
		field := campaignField(e, langs)
		pos := 0
		if field == "condition" {
			pos = e.Position
		}
		s.showCampaignForm(w, r, u, httpx.Status(err), id, f, map[string]string{field: e.Message}, pos)
		return
	}
	done := "saved"
	if id == "" {
		done = "created"
	}
	http.Redirect(w, r, "/admin/campaigns/"+url.PathEscape(c.ID)+"?done="+done, http.StatusSeeOther)
}

// campaignView is a campaign's page.
type campaignView struct {
	Campaign  *campaign.Campaign
	ListNames []string
	Template  string // its name, or "" for the built-in layout
	// Audience is the preview (or the audience fixed at sending); nil
	// with AudienceError when it cannot be counted.
	Audience      *campaign.Audience
	AudienceError string
	Reasons       []string
	Progress      *campaign.Progress
	// Report and its Charts, once the campaign has started: what became
	// of it, drawn as bars, and its audience with who was left out.
	Report        *campaign.Report
	Charts        []template.HTML
	AudienceChart template.HTML
	// CanResolve offers to fix the audience of a paused campaign now.
	CanResolve bool
	// Preview is the campaign as the contact in PreviewOf would get it.
	PreviewOf string
	Preview   *campaign.Rendered
	TestTo    string
	Follow    bool
	Form      url.Values
	TimeZones []string
}

func (s *Server) campaignPage(w http.ResponseWriter, r *http.Request, u *auth.User) {
	s.showCampaign(w, r, u, http.StatusOK, campaignDone[r.URL.Query().Get("done")], nil)
}

func (s *Server) showCampaign(w http.ResponseWriter, r *http.Request, u *auth.User, status int, flash string, fe map[string]string) {
	ctx := r.Context()
	c, err := s.Campaigns.Get(ctx, r.PathValue("id"))
	if err != nil {
		s.fail(w, err, u)
		return
	}
	q := r.URL.Query()
	v := campaignView{Campaign: c, Reasons: campaign.Reasons, TestTo: u.Email, PreviewOf: strings.TrimSpace(q.Get("contact")),
		Follow: q.Get("follow") == "1" && c.Status == campaign.StatusSending, Form: r.PostForm, TimeZones: TimeZones}
	if r.PostForm.Has("to") {
		v.TestTo = r.PostForm.Get("to") // a refused test keeps what was typed
	}
	if fe == nil {
		fe = map[string]string{}
	}
	for _, id := range c.ListIDs {
		name := id
		if l, err := s.Lists.Get(ctx, id); err == nil {
			name = l.Name
		}
		v.ListNames = append(v.ListNames, name)
	}
	if c.TemplateID != "" {
		if t, err := s.Campaigns.Template(ctx, c.TemplateID); err == nil {
			v.Template = t.Name
		}
	}
	if c.Status != campaign.StatusCancelled || c.Audience != nil {
		v.Audience, err = s.Campaigns.Preview(ctx, c.ID)
		if e := errs.As(err); e != nil {
			v.AudienceError, err = e.Message, nil
		}
		if err != nil {
			s.fail(w, err, u)
			return
		}
	}
	if v.Progress, err = s.Campaigns.Progress(ctx, c.ID); err != nil {
		s.fail(w, err, u)
		return
	}
	if c.StartedAt != nil {
		if v.Report, err = s.Campaigns.Report(ctx, c.ID); err != nil {
			s.fail(w, err, u)
			return
		}
		v.Charts = reportCharts(v.Report)
		if v.Audience != nil {
			v.AudienceChart = audienceChart(v.Audience)
		}
	}
	v.CanResolve = c.Status == campaign.StatusPaused && (c.Audience == nil || !c.Audience.Resolved)
	if v.PreviewOf != "" {
		id, err := s.contactRef(ctx, u, v.PreviewOf)
		if err == nil {
			v.Preview, err = s.CampaignSender.Render(ctx, c.ID, id)
		}
		if e := errs.As(err); e != nil {
			fe["contact"], err = e.Message, nil
			if e.Kind == errs.KindNotFound {
				fe["contact"] = "No contact has this id."
			}
		}
		if err != nil {
			s.fail(w, err, u)
			return
		}
	}
	if v.Preview != nil {
		// The preview's frame loads the message from its own URL here.
		w.Header().Set("Content-Security-Policy", adminPolicy.CSP+"; frame-src 'self'")
	}
	p := page{Title: "Campaign: " + c.Name, User: u, Nav: "campaigns", Flash: flash, Errors: fe, Data: v}
	if v.Follow {
		p.Refresh = 5
	}
	s.render(w, status, "campaign", p)
}

// campaignAction handles the buttons and forms of a campaign's page, one
// per action, and redirects back to it; an error is shown next to its
// field.
func (s *Server) campaignAction(w http.ResponseWriter, r *http.Request, u *auth.User) {
	if !s.parse(w, r, u) {
		return
	}
	ctx, id, action := r.Context(), r.PathValue("id"), r.PathValue("action")
	by := audit.Actor(actor(u))
	var err error
	switch action {
	case "send":
		_, err = s.Campaigns.Send(ctx, by, id)
	case "schedule":
		var at time.Time
		if at, err = localTime("scheduled_at", r.PostForm.Get("scheduled_at"), r.PostForm.Get("timezone")); err == nil {
			_, err = s.Campaigns.Schedule(ctx, by, id, at)
		}
	case "unschedule":
		_, err = s.Campaigns.Unschedule(ctx, by, id)
	case "pause":
		_, err = s.Campaigns.Pause(ctx, by, id)
	case "resume":
		_, err = s.Campaigns.Resume(ctx, by, id)
	case "cancel":
		_, err = s.Campaigns.Cancel(ctx, by, id)
	case "resolve":
		_, err = s.Campaigns.Resolve(ctx, id)
	case "retry-unknown":
		_, err = s.Campaigns.RetryUnknown(ctx, by, id)
	case "test":
		err = s.CampaignSender.Test(ctx, id, strings.FieldsFunc(r.PostForm.Get("to"), func(r rune) bool { return r == ',' || r == ' ' }))
	case "delete":
		if err = s.Campaigns.Delete(ctx, by, id); err == nil {
			http.Redirect(w, r, "/admin/campaigns?done=deleted", http.StatusSeeOther)
			return
		}
	default:
		http.NotFound(w, r)
		return
	}
	if err != nil {
		e := errs.As(err)
		if e == nil || e.Kind == errs.KindNotFound && e.Field == "campaign" {
			s.fail(w, err, u)
			return
		}
		field := "form"
		switch {
		case e.Field == "scheduled_at" || e.Field == "timezone" || e.Field == "to":
			field = e.Field
		case strings.HasPrefix(e.Field, "to["):
			field = "to"
		}
		s.showCampaign(w, r, u, httpx.Status(err), "", map[string]string{field: e.Message})
		return
	}
	http.Redirect(w, r, "/admin/campaigns/"+url.PathEscape(id)+"?done="+action, http.StatusSeeOther)
}

// TimeZones are offered on the schedule form; any IANA name is taken.
var TimeZones = []string{"UTC", "Europe/Amsterdam", "Europe/Berlin", "Europe/Brussels", "Europe/Copenhagen", "Europe/Dublin",
	"Europe/Helsinki", "Europe/Lisbon", "Europe/London", "Europe/Madrid", "Europe/Oslo", "Europe/Paris", "Europe/Stockholm",
	"Europe/Warsaw", "America/New_York", "America/Chicago", "America/Los_Angeles", "Asia/Tokyo", "Australia/Sydney"}

// localTime reads a date and time (as a datetime-local input sends it)
// on the clock of an IANA time zone, UTC when none is given, such as the
// campaign schedule form's. A time that the zone skips (a clock moved
// forward) is refused, rather than moved. An error names field, or
// "timezone" for the zone.
func localTime(field, local, zone string) (time.Time, error) {
	zone = strings.TrimSpace(zone)
	if zone == "" {
		zone = "UTC"
	}
	loc, err := time.LoadLocation(zone)
	if err != nil || zone == "Local" {
		return time.Time{}, errs.Invalid("timezone", "is not a time zone; give a name such as Europe/Stockholm, or UTC")
	}
	at, err := time.ParseInLocation("2006-01-02T15:04", strings.TrimSpace(local), loc)
	if err != nil {
		return time.Time{}, errs.Invalid(field, "give a date and time, such as 2030-01-31 09:00")
	}
	if at.Format("2006-01-02T15:04") != strings.TrimSpace(local) {
		return time.Time{}, errs.Invalid(field, "does not exist in %s: the clocks move forward then", zone)
	}
	return at, nil
}

// previewPolicy is the Content-Security-Policy of a campaign message
// shown in the preview's frame: its inline styles and https images, no
// script, no form, no other framing than by the campaign page, and
// sandboxed even when opened on its own.
const previewPolicy = "default-src 'none'; style-src 'unsafe-inline'; img-src https: data:; form-action 'none'; base-uri 'none'; frame-ancestors 'self'; sandbox"

// campaignPreviewHTML serves the HTML of campaign id as contact would get
// it, for the preview's frame; an unknown campaign or contact is a
// not-found page.
func (s *Server) campaignPreviewHTML(w http.ResponseWriter, r *http.Request, u *auth.User) {
	rd, err := s.CampaignSender.Render(r.Context(), r.PathValue("id"), r.PathValue("contact"))
	if err != nil {
		s.fail(w, err, u)
		return
	}
	writeMessageHTML(w, rd.HTML)
}

// writeMessageHTML answers with a message's HTML for a preview's frame,
// under previewPolicy.
func writeMessageHTML(w http.ResponseWriter, html string) {
	h := w.Header()
	h.Set("Content-Security-Policy", previewPolicy)
	h.Set("Content-Type", "text/html; charset=utf-8")
	io.WriteString(w, html)
}

// reportCharts draws what became of a started campaign: its messages,
// the opens and clicks of the tracked recipients, and those stopped at
// sending, by reason.
func reportCharts(r *campaign.Report) []template.HTML {
	total := r.Progress.Total
	var stopped int64
	var byReason []chart.Bar
	// The known reasons in their order, then any other recorded.
	reasons := slices.Clone(campaign.Reasons)
	for _, k := range slices.Sorted(maps.Keys(r.Suppressed)) {
		if !slices.Contains(reasons, k) {
			reasons = append(reasons, k)
		}
	}
	for _, reason := range reasons {
		if n := r.Suppressed[reason]; n > 0 {
			stopped += n
			byReason = append(byReason, chart.Bar{Label: labelOr(reasonLabels, reason), Value: n})
		}
	}
	of := func(n int64) string { return chart.Percent(n, total) + " of " + chart.Figure(total) + " recipients" }
	out := []template.HTML{chart.BarsOf("Messages", total, []chart.Bar{
		{Label: "Sent", Value: r.Sent, Note: of(r.Sent)},
		{Label: "Delivered", Value: r.Delivered, Note: of(r.Delivered)},
		{Label: "Bounced", Value: r.Bounced, Note: of(r.Bounced)},
		{Label: "Stopped at sending", Value: stopped, Note: of(stopped)},
		{Label: "Unsubscribed", Value: r.Unsubscribes, Note: of(r.Unsubscribes)}})}
	tracked := func(n int64) string {
		return chart.Percent(n, r.Tracked) + " of " + chart.Figure(r.Tracked) + " tracked recipients"
	}
	out = append(out, chart.BarsOf("Opens and clicks", r.Tracked, []chart.Bar{
		{Label: "Opened", Value: r.UniqueOpens, Note: tracked(r.UniqueOpens)},
		{Label: "Clicked a link", Value: r.UniqueClicks, Note: tracked(r.UniqueClicks)}}))
	if len(byReason) > 0 {
		out = append(out, chart.Bars("Stopped at sending, by reason", byReason))
	}
	return out
}

// audienceChart draws a started campaign's audience: out of the contacts
// selected, those who get it and those left out, by reason.
func audienceChart(a *campaign.Audience) template.HTML {
	bars := []chart.Bar{{Label: "Get it", Value: a.Recipients}}
	for _, reason := range campaign.Reasons {
		if n := a.Excluded[reason]; n > 0 {
			bars = append(bars, chart.Bar{Label: "Left out: " + labelOr(reasonLabels, reason), Value: n})
		}
	}
	return chart.BarsOf(chart.Figure(a.Selected)+" contacts selected by the lists and condition", a.Selected, bars)
}

func (s *Server) campaignTemplatesPage(w http.ResponseWriter, r *http.Request, u *auth.User) {
	s.showTemplates(w, r, u, http.StatusOK, nil)
}

func (s *Server) showTemplates(w http.ResponseWriter, r *http.Request, u *auth.User, status int, fe map[string]string) {
	ts, err := s.Campaigns.Templates(r.Context())
	s.showCampaignList(w, r, u, "campaign_templates", "Campaign templates", ts, err, status, fe)
}

// campaignTemplatePage is the form of a new template, or of one to change.
func (s *Server) campaignTemplatePage(w http.ResponseWriter, r *http.Request, u *auth.User) {
	f := url.Values{"html": {campaign.DefaultLayout}}
	if id := r.PathValue("id"); id != "" {
		t, err := s.Campaigns.Template(r.Context(), id)
		if err != nil {
			s.fail(w, err, u)
			return
		}
		f = url.Values{"name": {t.Name}, "html": {t.HTML}}
	}
	s.showTemplateForm(w, r, u, http.StatusOK, f, nil)
}

func (s *Server) showTemplateForm(w http.ResponseWriter, r *http.Request, u *auth.User, status int, f url.Values, fe map[string]string) {
	id := r.PathValue("id")
	title := "New campaign template"
	if id != "" {
		title = "Edit campaign template"
	}
	s.render(w, status, "campaign_template", page{Title: title, User: u, Nav: "campaigns", Errors: fe,
		Data: map[string]any{"ID": id, "Form": f, "Tags": campaign.TemplateTags}})
}

func (s *Server) saveCampaignTemplate(w http.ResponseWriter, r *http.Request, u *auth.User) {
	if !s.parse(w, r, u) {
		return
	}
	in := campaign.TemplateInput{Name: formText(r.PostForm, "name"), HTML: formText(r.PostForm, "html")}
	var err error
	if id := r.PathValue("id"); id == "" {
		_, err = s.Campaigns.CreateTemplate(r.Context(), audit.Actor(actor(u)), in)
	} else {
		_, err = s.Campaigns.UpdateTemplate(r.Context(), audit.Actor(actor(u)), id, in)
	}
	if err != nil {
		if fe := fieldErrors(err); fe != nil && !errs.Is(err, errs.KindNotFound) {
			s.showTemplateForm(w, r, u, httpx.Status(err), r.PostForm, fe)
			return
		}
		s.fail(w, err, u)
		return
	}
	http.Redirect(w, r, "/admin/campaign-templates?done=template_saved", http.StatusSeeOther)
}

func (s *Server) deleteCampaignTemplate(w http.ResponseWriter, r *http.Request, u *auth.User) {
	if err := s.Campaigns.DeleteTemplate(r.Context(), audit.Actor(actor(u)), r.PathValue("id")); err != nil {
		if errs.Is(err, errs.KindConflict) {
			s.showTemplates(w, r, u, http.StatusConflict, map[string]string{"form": errs.As(err).Message})
			return
		}
		s.fail(w, err, u)
		return
	}
	http.Redirect(w, r, "/admin/campaign-templates?done=template_deleted", http.StatusSeeOther)
}

var campaignStatusLabels = map[string]string{campaign.StatusDraft: "Draft", campaign.StatusScheduled: "Scheduled",
	campaign.StatusSending: "Sending", campaign.StatusPaused: "Paused", campaign.StatusSent: "Sent", campaign.StatusCancelled: "Cancelled"}

// reasonLabels name every exclusion reason of campaign.Reasons in words (a
// test checks none is missing).
var reasonLabels = map[string]string{
	campaign.ReasonOptedOutContact:    "Opted out (by the contact)",
	campaign.ReasonOptedOutUser:       "Opted out (by a user)",
	campaign.ReasonNotOptedIn:         "Opt-in status below the campaign's policy",
	campaign.ReasonNoConsent:          "No consent to the purpose (or objected)",
	campaign.ReasonMarketingWithdrawn: "Withdrew (or objected to) a purpose that governs marketing email",
	campaign.ReasonBounced:            "Address bounced",
	campaign.ReasonBlocklisted:        "Address blocklisted",
	campaign.ReasonProcessingStopped:  "Processing stopped (restriction)",
	campaign.ReasonErasureRequested:   "Erasure requested",
	campaign.ReasonHeld:               "Under a legal hold",
	campaign.ReasonSuppressedAddress:  "Address erased before, no new consent",
	campaign.ReasonListUnsubscribed:   "Unsubscribed from the lists",
	campaign.ReasonDuplicateAddress:   "Same address as another recipient",
	campaign.ReasonErased:             "Erased",
	campaign.ReasonDeleted:            "Contact deleted",
}

var recipientLabels = map[string]string{campaign.RecipientQueued: "Queued", campaign.RecipientSending: "Being sent",
	campaign.RecipientSent: "Sent", campaign.RecipientSuppressed: "Stopped at sending", campaign.RecipientFailed: "Failed",
	campaign.RecipientRetry: "To retry", campaign.RecipientUnknown: "Outcome unknown", campaign.RecipientExcluded: "Excluded",
	campaign.RecipientCancelled: "Cancelled"}

// recipientOrder is the order the progress table lists recipients in.
var recipientOrder = []string{campaign.RecipientSent, campaign.RecipientQueued, campaign.RecipientSending, campaign.RecipientRetry,
	campaign.RecipientSuppressed, campaign.RecipientFailed, campaign.RecipientUnknown, campaign.RecipientCancelled}

func init() {
	funcs["campaignStatus"] = func(s string) string { return labelOr(campaignStatusLabels, s) }
	funcs["exclusion"] = func(r string) string { return labelOr(reasonLabels, r) }
	funcs["recipientStatus"] = func(r string) string { return labelOr(recipientLabels, r) }
	funcs["recipientOrder"] = func() []string { return recipientOrder }
	funcs["lower"] = strings.ToLower
}
