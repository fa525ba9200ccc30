package web

import (
	"errors"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/consentry/consentry/internal/audit"
	"github.com/consentry/consentry/internal/auth"
	"github.com/consentry/consentry/internal/consent"
	"github.com/consentry/consentry/internal/contact"
	"github.com/consentry/consentry/internal/errs"
	"github.com/consentry/consentry/internal/httpx"
	"github.com/consentry/consentry/internal/i18n"
	"github.com/consentry/consentry/internal/preferences"
	"github.com/consentry/consentry/internal/settings"
)

func (s *Server) settingsRoutes() {
	set := func(h handler) http.HandlerFunc { return s.need(auth.PermSettings, h) }
	s.mux.HandleFunc("GET /admin/settings", set(s.settingsPage))
	s.post("/admin/settings", textForm, set(s.saveSettings))
	s.post("/admin/settings/organisation", maxOrganisationForm, set(s.saveOrganisation))
	s.mux.HandleFunc("GET /admin/settings/purposes", set(s.purposesPage))
	s.post("/admin/settings/purposes", longForm, set(s.savePurpose))
	s.mux.HandleFunc("GET /admin/settings/purposes/{id}", set(s.purposePage))
	s.post("/admin/settings/purposes/{id}", longForm, set(s.savePurpose))
	s.post("/admin/settings/purposes/{id}/translations/{language}", longForm, set(s.saveTranslation))
	s.mux.HandleFunc("GET /admin/settings/sources", set(s.sourcesPage))
	s.post("/admin/settings/sources", smallForm, set(s.saveSource))
	s.post("/admin/settings/sources/{id}", smallForm, set(s.saveSource))
	s.mux.HandleFunc("GET /admin/settings/fields", set(s.fieldsPage))
	s.post("/admin/settings/fields", smallForm, set(s.saveField))
	s.post("/admin/settings/fields/{name}", smallForm, set(s.saveField))
	s.mux.HandleFunc("GET /admin/settings/preferences-page", set(s.pageSettingsPage))
	s.post("/admin/settings/preferences-page", longForm, set(s.savePageSettings))
	s.mux.HandleFunc("GET /admin/settings/tokens", s.need(auth.PermUsers, s.tokensPage))
	s.post("/admin/settings/tokens", smallForm, s.need(auth.PermUsers, s.createToken))
	s.mux.HandleFunc("GET /admin/settings/tokens/{id}/created/{grant}", s.need(auth.PermUsers, s.newTokenPage))
	s.post("/admin/settings/tokens/{id}/revoke", smallForm, s.need(auth.PermUsers, s.revokeToken))
}

// formInt reads an integer field, nil when absent or empty; a value that is
// not a number is kept as -1 so that the domain refuses it by name.
func formInt(f url.Values, k string) *int {
	v := strings.TrimSpace(f.Get(k))
	if v == "" {
		return nil
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		n = -1
	}
	return &n
}

// formBool reads a checkbox: on when any of its values is "on" (a hidden
// "off" before it says the box was on the form).
func formBool(f url.Values, k string) *bool {
	if _, ok := f[k]; !ok {
		return nil
	}
	v := checkboxOn(f, k)
	return &v
}

// checkboxOn reports whether checkbox k was ticked: one of its values is
// "on" (a hidden "off" may come with it).
func checkboxOn(f url.Values, k string) bool { return slices.Contains(f[k], "on") }

func formText(f url.Values, k string) *string {
	if _, ok := f[k]; !ok {
		return nil
	}
	v := f.Get(k)
	return &v
}

// formWords reads a list typed into one box, split at commas and white
// space; nil when the box is not on the form.
func formWords(f url.Values, k string) *[]string {
	if _, ok := f[k]; !ok {
		return nil
	}
	words := strings.FieldsFunc(f.Get(k), func(r rune) bool { return r == ',' || unicode.IsSpace(r) })
	return &words
}

// formChoices reads a group of checkboxes named k: the values ticked, or
// nil when the group is not on the form (a hidden k_shown says it is).
func formChoices(f url.Values, k string) *[]string {
	if _, ok := f[k+"_shown"]; !ok {
		return nil
	}
	v := append([]string{}, f[k]...)
	return &v
}

// settingsView is what the settings page shows.
type settingsView struct {
	Settings  settings.Settings
	Policies  []string
	Languages []string
	Keepable  []string // the core fields that may be kept after erasure
	// Tracking are the engagement tracking choices; Purposes the names
	// of the purposes the tracking purpose may be.
	Tracking []string
	Purposes []string
	// Form is what was posted when it was refused, shown again instead of
	// the saved settings; nil otherwise.
	Form url.Values
}

// Val is field k as posted when the form was refused, or else saved.
func (v settingsView) Val(k, saved string) string {
	if vs, ok := v.Form[k]; ok && len(vs) > 0 {
		return vs[0]
	}
	return saved
}

func (s *Server) settingsPage(w http.ResponseWriter, r *http.Request, u *auth.User) {
	flash := ""
	switch r.URL.Query().Get("done") {
	case "saved":
		flash = "Settings saved."
	case "organisation":
		flash = "Your organisation saved."
	case "logo_removed":
		flash = "Logo removed."
	}
	s.showSettings(w, r, u, http.StatusOK, flash, nil)
}

func (s *Server) showSettings(w http.ResponseWriter, r *http.Request, u *auth.User, status int, flash string, fe map[string]string) {
	st, err := settings.Get(r.Context(), s.DB.Read)
	if err != nil {
		s.fail(w, err, u)
		return
	}
	ps, err := s.Consent.Purposes(r.Context())
	if err != nil {
		s.fail(w, err, u)
		return
	}
	v := settingsView{Settings: st, Policies: settings.Policies, Languages: i18n.Languages, Keepable: settings.KeepableAfterErasure,
		Tracking: settings.TrackingChoices}
	for _, p := range ps {
		v.Purposes = append(v.Purposes, p.Name)
	}
	if !slices.Contains(v.Purposes, st.TrackingPurpose) {
		v.Purposes = append(v.Purposes, st.TrackingPurpose)
	}
	if fe != nil {
		v.Form = r.PostForm
	}
	s.render(w, status, "settings", page{Title: "Settings", User: u, Nav: "settings", Flash: flash, Errors: fe, Data: v})
}

func (s *Server) saveSettings(w http.ResponseWriter, r *http.Request, u *auth.User) {
	if !s.parse(w, r, u) {
		return
	}
	f := r.PostForm
	s.updateSettings(w, r, u, settings.Patch{DoubleOptInReminderDays: formInt(f, "double_opt_in_reminder_days"),
		DoubleOptInExpiryDays: formInt(f, "double_opt_in_expiry_days"), RightToBeInformed: formBool(f, "right_to_be_informed"),
		CampaignOptInPolicy: formText(f, "campaign_opt_in_policy"), SoftBounceLimit: formInt(f, "soft_bounce_limit"),
		PreferencesLinkHours: formInt(f, "preferences_link_hours"), UnsubscribeLinkDays: formInt(f, "unsubscribe_link_days"),
		DefaultLanguage: formText(f, "default_language"), PrivacyAddress: formText(f, "privacy_address"),
		ErasureKeywords: formWords(f, "erasure_keywords"), RetentionGraceDays: formInt(f, "retention_grace_days"),
		KeptAfterErasure: formChoices(f, "kept_after_erasure"), SentBodyDays: formInt(f, "sent_body_days"),
		CampaignsPatch: settings.CampaignsPatch{SenderName: formText(f, "sender_name"), SenderAddress: formText(f, "sender_address"),
			BounceAddress: formText(f, "bounce_address"), CampaignRate: formInt(f, "campaign_rate"),
			EngagementTracking: formText(f, "engagement_tracking"), TrackingPurpose: formText(f, "tracking_purpose")},
		// The privacy and postal addresses are on the organisation form
		// (saveOrganisation); a post of this form that has them still
		// saves them.
		IdentityPatch: settings.IdentityPatch{PostalAddress: formText(f, "postal_address")},
		ReceiptsPatch: settings.ReceiptsPatch{EmailReceipts: formBool(f, "email_receipts")}}, nil, "/admin/settings?done=saved")
}

// updateSettings applies p unless refused is already an error, and then
// redirects to done; a refusal shows the settings page again with the
// form as posted and the error next to its field.
func (s *Server) updateSettings(w http.ResponseWriter, r *http.Request, u *auth.User, p settings.Patch, refused error, done string) {
	err := refused
	if err == nil {
		_, err = settings.Update(r.Context(), s.DB, p, audit.Actor(actor(u)), time.Now())
	}
	if fe := fieldErrors(err); fe != nil {
		s.showSettings(w, r, u, httpx.Status(err), "", fe)
		return
	}
	if err != nil {
		s.fail(w, err, u)
		return
	}
	http.Redirect(w, r, done, http.StatusSeeOther)
}

// maxOrganisationForm bounds the organisation form, logo included: well
// over the logo's limit, so that a logo too large is refused by the
// settings, by name, rather than as a form that cannot be read.
const maxOrganisationForm = 4 << 20

// saveOrganisation saves the operator's identity: name, postal address,
// privacy contact, and the logo, uploaded in the same form or removed with
// remove_logo. The logo's type is the settings' to judge, by its content;
// a refusal changes nothing, the other fields included, and shows the
// form again as it was filled in.
func (s *Server) saveOrganisation(w http.ResponseWriter, r *http.Request, u *auth.User) {
	if err := r.ParseMultipartForm(1 << 20); err != nil && !errors.Is(err, http.ErrNotMultipart) {
		if e := httpx.TooLarge(err); e != nil {
			s.showSettings(w, r, u, httpx.Status(e), "", map[string]string{"logo": "must be at most " + errs.Size(settings.MaxLogoBytes)})
			return
		}
		s.unreadable(w, err, u)
		return
	}
	f := r.PostForm
	p := settings.Patch{PrivacyAddress: formText(f, "privacy_address"), IdentityPatch: settings.IdentityPatch{
		OrganisationName: formText(f, "organisation_name"), PostalAddress: formText(f, "postal_address"),
		PrivacyContactName: formText(f, "privacy_contact_name"), Website: formText(f, "website")},
		ReceiptsPatch: settings.ReceiptsPatch{PrivacyPolicyURL: formText(f, "privacy_policy_url"), ReceiptJurisdiction: formText(f, "receipt_jurisdiction")}}
	done := "organisation"
	var err error
	if f.Get("remove_logo") != "" {
		p.Logo, done = &[]byte{}, "logo_removed"
	} else if file, _, ferr := r.FormFile("logo"); ferr == nil {
		data, rerr := io.ReadAll(io.LimitReader(file, settings.MaxLogoBytes+1))
		file.Close()
		switch {
		case rerr != nil:
			err = rerr
		case len(data) == 0:
			err = errs.Invalid("logo", "the file chosen is empty")
		default:
			p.Logo = &data
		}
	}
	s.updateSettings(w, r, u, p, err, "/admin/settings?done="+done)
}

func (s *Server) purposesPage(w http.ResponseWriter, r *http.Request, u *auth.User) {
	s.showPurposes(w, r, u, http.StatusOK, nil)
}

func (s *Server) showPurposes(w http.ResponseWriter, r *http.Request, u *auth.User, status int, fe map[string]string) {
	ps, err := s.Consent.Purposes(r.Context())
	if err != nil {
		s.fail(w, err, u)
		return
	}
	var typed *consent.Purpose // the new purpose form, as typed when refused
	if fe != nil {
		typed = typedPurpose(nil, r.PostForm)
	}
	s.render(w, status, "purposes", page{Title: "Purposes", User: u, Nav: "settings", Errors: fe,
		Data: map[string]any{"Purposes": ps, "Bases": consent.LegalBases, "Typed": typed}})
}

// settingsDone are the notices the settings pages show after a change, by
// the key their form's redirect puts in ?done=.
var settingsDone = map[string]string{"purpose_saved": "Purpose saved.", "source_saved": "Source saved.", "field_saved": "Field saved.",
	"page_saved": "Preferences page saved.", "token_revoked": "Token revoked.", "translated": "Translation saved: the current consent text is a new version.",
	"shown_once": "That token was shown once and cannot be shown again; if it was not copied, revoke it and create another."}

// settingsNotice is the notice for the request's ?done= key; "" for none.
func settingsNotice(r *http.Request) string { return settingsDone[r.URL.Query().Get("done")] }

func (s *Server) purposePage(w http.ResponseWriter, r *http.Request, u *auth.User) {
	flash := settingsNotice(r)
	if v, err := strconv.Atoi(r.URL.Query().Get("version")); err == nil && r.URL.Query().Get("done") == "translated" {
		flash = "Translation saved: the current consent text is version " + strconv.Itoa(v) + "."
	}
	s.showPurpose(w, r, u, http.StatusOK, flash, nil)
}

func (s *Server) showPurpose(w http.ResponseWriter, r *http.Request, u *auth.User, status int, flash string, fe map[string]string) {
	p, err := s.Consent.Purpose(r.Context(), r.PathValue("id"))
	if err != nil {
		s.fail(w, err, u)
		return
	}
	texts, err := s.Consent.PurposeTexts(r.Context(), p.ID)
	if err != nil {
		s.fail(w, err, u)
		return
	}
	// The current version's text in each language, newest version first
	// in the list below.
	type translation struct {
		Language, Text string
		Missing        bool
	}
	var trs []translation
	for _, l := range i18n.Languages {
		if l == p.TextLanguage {
			continue
		}
		t, ok := p.Translations[l]
		trs = append(trs, translation{Language: l, Text: t, Missing: !ok})
	}
	slices.Reverse(texts)
	form := p // the purpose form: as typed when its post was refused
	if lang, ok := strings.CutPrefix(r.URL.Path, "/admin/settings/purposes/"+p.ID+"/translations/"); ok && fe != nil {
		for i := range trs {
			if trs[i].Language == lang {
				trs[i].Text = r.PostForm.Get("text")
			}
		}
	} else if fe != nil {
		form = typedPurpose(p, r.PostForm)
	}
	s.render(w, status, "purpose", page{Title: p.Name, User: u, Nav: "settings", Flash: flash, Errors: fe,
		Data: map[string]any{"Purpose": p, "Form": form, "Texts": texts, "Bases": consent.LegalBases, "Translations": trs}})
}

// typedPurpose is p (nil for a new purpose) with what was typed in the
// purpose form over it, for the form shown again after a refusal; a number
// that is not one shows as 0, next to its error.
func typedPurpose(p *consent.Purpose, f url.Values) *consent.Purpose {
	t := &consent.Purpose{}
	if p != nil {
		c := *p
		t = &c
	}
	t.Name, t.LegalBasis, t.Description, t.RetentionAction, t.Text = f.Get("name"), f.Get("legal_basis"), f.Get("description"),
		f.Get("retention_action"), f.Get("text")
	t.RetentionDays, _ = strconv.Atoi(strings.TrimSpace(f.Get("retention_days")))
	t.DefaultSelected = checkboxOn(f, "default_selected")
	return t
}

// saveTranslation sets the translation of the current consent text
// version into one language, which makes a new version.
func (s *Server) saveTranslation(w http.ResponseWriter, r *http.Request, u *auth.User) {
	if !s.parse(w, r, u) {
		return
	}
	lang := r.PathValue("language")
	version := formInt(r.PostForm, "version")
	if version == nil {
		s.showPurpose(w, r, u, http.StatusBadRequest, "", map[string]string{"translation-" + lang: "The form lacks the version it translates; reload the page."})
		return
	}
	t, err := s.Consent.SetTranslation(r.Context(), audit.Actor(actor(u)), r.PathValue("id"), *version, lang, r.PostForm.Get("text"))
	if e := errs.As(err); e != nil && !(e.Kind == errs.KindNotFound && e.Field == "purpose") {
		s.showPurpose(w, r, u, httpx.Status(err), "", map[string]string{"translation-" + lang: e.Message})
		return
	}
	if err != nil {
		s.fail(w, err, u)
		return
	}
	s.Log.InfoContext(r.Context(), "consent text translated", "purpose", r.PathValue("id"), "language", lang, "version", t.Version, "by", u.ID)
	http.Redirect(w, r, "/admin/settings/purposes/"+url.PathEscape(r.PathValue("id"))+"?done=translated&version="+strconv.Itoa(t.Version), http.StatusSeeOther)
}

// savePurpose creates a purpose (no id in the path) or changes one; a
// changed consent text becomes a new version.
func (s *Server) savePurpose(w http.ResponseWriter, r *http.Request, u *auth.User) {
	if !s.parse(w, r, u) {
		return
	}
	f := r.PostForm
	in := consent.PurposeInput{Name: formText(f, "name"), LegalBasis: formText(f, "legal_basis"), Description: formText(f, "description"),
		RetentionDays: formInt(f, "retention_days"), RetentionAction: formText(f, "retention_action"), DefaultSelected: formBool(f, "default_selected"), Text: formText(f, "text")}
	id := r.PathValue("id")
	if id == "" {
		p, err := s.Consent.CreatePurpose(r.Context(), audit.Actor(actor(u)), in)
		if fe := fieldErrors(err); fe != nil {
			s.showPurposes(w, r, u, httpx.Status(err), fe)
			return
		}
		if err != nil {
			s.fail(w, err, u)
			return
		}
		http.Redirect(w, r, "/admin/settings/purposes/"+p.ID, http.StatusSeeOther)
		return
	}
	_, err := s.Consent.UpdatePurpose(r.Context(), audit.Actor(actor(u)), id, in)
	if fe := fieldErrors(err); fe != nil && errs.As(err).Kind != errs.KindNotFound {
		s.showPurpose(w, r, u, httpx.Status(err), "", fe)
		return
	}
	if err != nil {
		s.fail(w, err, u)
		return
	}
	http.Redirect(w, r, "/admin/settings/purposes/"+url.PathEscape(id)+"?done=purpose_saved", http.StatusSeeOther)
}

func (s *Server) sourcesPage(w http.ResponseWriter, r *http.Request, u *auth.User) {
	s.showSources(w, r, u, http.StatusOK, settingsNotice(r), nil)
}

func (s *Server) showSources(w http.ResponseWriter, r *http.Request, u *auth.User, status int, flash string, fe map[string]string) {
	srcs, err := s.Consent.Sources(r.Context())
	if err != nil {
		s.fail(w, err, u)
		return
	}
	typed := "" // the new source's name, as typed when refused
	if fe != nil && r.PathValue("id") == "" {
		typed = r.PostForm.Get("name")
	}
	s.render(w, status, "sources", page{Title: "Sources", User: u, Nav: "settings", Flash: flash, Errors: fe,
		Data: map[string]any{"Sources": srcs, "Typed": typed}})
}

// saveSource creates a source, or renames or (de)activates one.
func (s *Server) saveSource(w http.ResponseWriter, r *http.Request, u *auth.User) {
	if !s.parse(w, r, u) {
		return
	}
	in := consent.SourceInput{Name: formText(r.PostForm, "name"), Active: formBool(r.PostForm, "active")}
	var err error
	if id := r.PathValue("id"); id == "" {
		_, err = s.Consent.CreateSource(r.Context(), audit.Actor(actor(u)), in)
	} else {
		_, err = s.Consent.UpdateSource(r.Context(), audit.Actor(actor(u)), id, in)
	}
	if fe := fieldErrors(err); fe != nil {
		s.showSources(w, r, u, httpx.Status(err), "", fe)
		return
	}
	if err != nil {
		s.fail(w, err, u)
		return
	}
	http.Redirect(w, r, "/admin/settings/sources?done=source_saved", http.StatusSeeOther)
}

func (s *Server) fieldsPage(w http.ResponseWriter, r *http.Request, u *auth.User) {
	s.showFields(w, r, u, http.StatusOK, settingsNotice(r), nil)
}

func (s *Server) showFields(w http.ResponseWriter, r *http.Request, u *auth.User, status int, flash string, fe map[string]string) {
	defs, err := s.Contacts.Fields(r.Context())
	if err != nil {
		s.fail(w, err, u)
		return
	}
	ps, err := s.Consent.Purposes(r.Context())
	if err != nil {
		s.fail(w, err, u)
		return
	}
	// A refused form shows again as typed: the new field's (New), or the
	// field's own, opened (Open).
	var typed url.Values
	open := ""
	if fe != nil {
		if open = r.PathValue("name"); open == "" {
			typed = r.PostForm
		} else {
			defs = typedField(defs, open, r.PostForm)
		}
	}
	s.render(w, status, "fields", page{Title: "Fields", User: u, Nav: "settings", Flash: flash, Errors: fe,
		Data: map[string]any{"Fields": defs, "Types": contact.FieldTypes, "Purposes": ps, "New": typed, "Open": open}})
}

// typedField is defs with field name as typed in its form, for the form
// shown again after a refusal; the definitions themselves are not changed.
func typedField(defs []*contact.FieldDefinition, name string, f url.Values) []*contact.FieldDefinition {
	defs = slices.Clone(defs)
	for i, d := range defs {
		if d.Name != name {
			continue
		}
		t := *d
		t.Label, t.StoragePurpose, t.Personal = f.Get("label"), f.Get("storage_purpose"), checkboxOn(f, "personal")
		if t.Sensitive {
			t.Mask = f.Get("mask")
		}
		defs[i] = &t
	}
	return defs
}

// saveField creates a field definition or changes one. Turning on
// "sensitive" encrypts the field for good; the page says so next to the
// box.
func (s *Server) saveField(w http.ResponseWriter, r *http.Request, u *auth.User) {
	if !s.parse(w, r, u) {
		return
	}
	f := r.PostForm
	in := contact.FieldInput{Label: formText(f, "label"), Personal: formBool(f, "personal"), Sensitive: formBool(f, "sensitive"),
		StoragePurpose: formText(f, "storage_purpose")}
	if m := f.Get("mask"); m != "" {
		in.Mask = &m
	}
	var err error
	if name := r.PathValue("name"); name == "" {
		in.Name, in.Type = formText(f, "name"), formText(f, "type")
		_, err = s.Contacts.CreateField(r.Context(), audit.Actor(actor(u)), in)
	} else {
		_, err = s.Contacts.UpdateField(r.Context(), audit.Actor(actor(u)), name, in)
	}
	if fe := fieldErrors(err); fe != nil {
		s.showFields(w, r, u, httpx.Status(err), "", fe)
		return
	}
	if err != nil {
		s.fail(w, err, u)
		return
	}
	http.Redirect(w, r, "/admin/settings/fields?done=field_saved", http.StatusSeeOther)
}

// offerRow is one purpose on the preferences page settings form.
type offerRow struct {
	Purpose   *consent.Purpose
	Offered   bool
	Condition string
	Default   string // "", "yes" or "no": the purpose's own, or overridden
}

func (s *Server) pageSettingsPage(w http.ResponseWriter, r *http.Request, u *auth.User) {
	cfg, err := preferences.GetConfig(r.Context(), s.DB.Read)
	if err != nil {
		s.fail(w, err, u)
		return
	}
	s.showPageSettings(w, r, u, http.StatusOK, settingsNotice(r), nil, cfg)
}

func (s *Server) showPageSettings(w http.ResponseWriter, r *http.Request, u *auth.User, status int, flash string, fe map[string]string, cfg preferences.Config) {
	ps, err := s.Consent.Purposes(r.Context())
	if err != nil {
		s.fail(w, err, u)
		return
	}
	var rows []offerRow
	for _, p := range ps {
		row := offerRow{Purpose: p}
		for _, o := range cfg.Offers {
			if o.Purpose == p.ID {
				row.Offered, row.Condition = true, o.Condition
				if o.DefaultSelected != nil {
					row.Default = map[bool]string{true: "yes", false: "no"}[*o.DefaultSelected]
				}
			}
		}
		rows = append(rows, row)
	}
	policies := ""
	for _, l := range cfg.Policies {
		policies += l.Title + " | " + l.URL + "\n"
	}
	s.render(w, status, "page_settings", page{Title: "Preferences page", User: u, Nav: "settings", Flash: flash, Errors: fe,
		Data: map[string]any{"Config": cfg, "Offers": rows, "Policies": policies}})
}

func (s *Server) savePageSettings(w http.ResponseWriter, r *http.Request, u *auth.User) {
	if !s.parse(w, r, u) {
		return
	}
	f := r.PostForm
	cfg := preferences.Config{AccessCondition: f.Get("access_condition"), Statement: f.Get("statement"),
		AccessEmail: f.Get("access_email") == "on", AllowStopProcessing: f.Get("allow_stop_processing") == "on",
		AllowErasure: f.Get("allow_erasure") == "on",
		Footer:       preferences.Footer{Enabled: f.Get("footer_enabled") == "on", Text: f.Get("footer_text"), LinkText: f.Get("footer_link_text")}}
	for _, id := range f["offer"] {
		o := preferences.Offer{Purpose: id, Condition: f.Get("condition." + id)}
		if d := f.Get("default." + id); d == "yes" || d == "no" {
			v := d == "yes"
			o.DefaultSelected = &v
		}
		cfg.Offers = append(cfg.Offers, o)
	}
	for _, line := range strings.Split(f.Get("policies"), "\n") {
		title, link, ok := strings.Cut(line, "|")
		if strings.TrimSpace(line) == "" {
			continue
		}
		if !ok {
			title, link = line, ""
		}
		cfg.Policies = append(cfg.Policies, preferences.Link{Title: strings.TrimSpace(title), URL: strings.TrimSpace(link)})
	}
	_, err := s.Prefs.SetConfig(r.Context(), cfg, audit.Actor(actor(u)))
	if fe := fieldErrors(err); fe != nil {
		s.showPageSettings(w, r, u, httpx.Status(err), "", fe, cfg)
		return
	}
	if err != nil {
		s.fail(w, err, u)
		return
	}
	http.Redirect(w, r, "/admin/settings/preferences-page?done=page_saved", http.StatusSeeOther)
}

func (s *Server) tokensPage(w http.ResponseWriter, r *http.Request, u *auth.User) {
	s.showTokens(w, r, u, http.StatusOK, settingsNotice(r), nil, nil, "")
}

// tokenSubject is what the one-time grant of a new token's secret is
// about.
func tokenSubject(tokenID string) string { return "api token " + tokenID }

// newTokenPage shows a new token's secret once: it claims the grant that
// createToken made; once claimed (a reload), it goes to the tokens page and
// says that the secret cannot be shown again.
func (s *Server) newTokenPage(w http.ResponseWriter, r *http.Request, u *auth.User) {
	secret, err := s.grants.Claim(r.Context(), r.PathValue("grant"), u.ID, tokenSubject(r.PathValue("id")))
	if errors.Is(err, auth.ErrNoGrant) {
		http.Redirect(w, r, "/admin/settings/tokens?done=shown_once", http.StatusSeeOther)
		return
	}
	if err != nil {
		s.fail(w, err, u)
		return
	}
	s.showTokens(w, r, u, http.StatusOK, "Token created. Copy it now: it is not shown again.", nil, nil, secret)
}

// showTokens shows the tokens and the form for a new one, refilled with
// form (what was typed, after a refusal; nil for an empty form).
func (s *Server) showTokens(w http.ResponseWriter, r *http.Request, u *auth.User, status int, flash string, fe map[string]string, form url.Values, secret string) {
	toks, err := s.Tokens.List(r.Context())
	if err != nil {
		s.fail(w, err, u)
		return
	}
	s.render(w, status, "tokens", page{Title: "API tokens", User: u, Nav: "settings", Flash: flash, Errors: fe,
		Data: map[string]any{"Tokens": toks, "Secret": secret, "Form": form}})
}

func (s *Server) createToken(w http.ResponseWriter, r *http.Request, u *auth.User) {
	if !s.parse(w, r, u) {
		return
	}
	var scopes []string // each scope's box is named after it
	for _, sc := range auth.Scopes {
		if r.PostForm.Get(sc) == "on" {
			scopes = append(scopes, sc)
		}
	}
	var expires *time.Time
	if days := formInt(r.PostForm, "days"); days != nil {
		if *days < 1 || *days > 3650 {
			s.showTokens(w, r, u, http.StatusBadRequest, "", map[string]string{"days": "must be between 1 and 3650"}, r.PostForm, "")
			return
		}
		t := time.Now().Add(time.Duration(*days) * 24 * time.Hour)
		expires = &t
	}
	secret, tok, err := s.Tokens.Create(r.Context(), audit.Actor(actor(u)), r.PostForm.Get("name"), expires, scopes...)
	if fe := fieldErrors(err); fe != nil {
		s.showTokens(w, r, u, httpx.Status(err), "", fe, r.PostForm, "")
		return
	}
	if err != nil {
		s.fail(w, err, u)
		return
	}
	s.Log.InfoContext(r.Context(), "api token created", "token", tok.ID, "by", u.ID)
	// The secret is shown by the page the redirect leads to, once, so
	// that neither a reload nor the browser's history shows it again.
	grant, err := s.grants.Issue(r.Context(), u.ID, tokenSubject(tok.ID), secret)
	if err != nil {
		s.fail(w, err, u)
		return
	}
	http.Redirect(w, r, "/admin/settings/tokens/"+url.PathEscape(tok.ID)+"/created/"+grant, http.StatusSeeOther)
}

func (s *Server) revokeToken(w http.ResponseWriter, r *http.Request, u *auth.User) {
	if err := s.Tokens.Revoke(r.Context(), audit.Actor(actor(u)), r.PathValue("id")); err != nil {
		s.fail(w, err, u)
		return
	}
	s.Log.InfoContext(r.Context(), "api token revoked", "token", r.PathValue("id"), "by", u.ID)
	http.Redirect(w, r, "/admin/settings/tokens?done=token_revoked", http.StatusSeeOther)
}

// trackingLabels explain every choice of settings.TrackingChoices (a test
// checks none is missing).
var trackingLabels = map[string]string{
	settings.TrackingOff: "Off: no opens or clicks are recorded for anyone",
	settings.TrackingConsent: "Only for contacts who consented to the tracking purpose below; " +
		"for everyone else no opens or clicks are recorded",
	settings.TrackingLegitimate: "Everyone, on legitimate interests: opens and clicks are recorded for every recipient; " +
		"choose this only once you have weighed tracking against your contacts' interests and recorded why",
}

func init() { funcs["tracking"] = func(t string) string { return labelOr(trackingLabels, t) } }
