package web

import (
	"context"
	"html/template"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"

	"github.com/consentry/consentry/internal/audit"
	"github.com/consentry/consentry/internal/auth"
	"github.com/consentry/consentry/internal/consent"
	"github.com/consentry/consentry/internal/contact"
	"github.com/consentry/consentry/internal/errs"
	"github.com/consentry/consentry/internal/httpx"
	"github.com/consentry/consentry/internal/i18n"
	"github.com/consentry/consentry/internal/lists"
	"github.com/consentry/consentry/internal/optin"
	"github.com/consentry/consentry/internal/webform"
)

// Webforms ask for consents to purposes and show their consent texts, so
// those who keep the purposes keep the forms.
func (s *Server) webformRoutes() {
	wf := func(h handler) http.HandlerFunc { return s.need(auth.PermSettings, h) }
	s.mux.HandleFunc("GET /admin/webforms", wf(s.webformsPage))
	s.mux.HandleFunc("GET /admin/webforms/new", wf(s.newWebformPage))
	s.post("/admin/webforms", longForm, wf(s.saveWebform))
	s.mux.HandleFunc("GET /admin/webforms/{id}", wf(s.webformPage))
	s.mux.HandleFunc("GET /admin/webforms/{id}/edit", wf(s.editWebformPage))
	s.post("/admin/webforms/{id}/edit", longForm, wf(s.saveWebform))
	s.post("/admin/webforms/{id}/delete", smallForm, wf(s.deleteWebform))
}

// webformDone are the notices shown after a webform form succeeded and
// redirected, by the done= the redirect carries.
var webformDone = map[string]string{"saved": "Webform saved.", "deleted": "Webform deleted."}

// webformRow is a form on the list of webforms, with the names of the
// lists it offers and the purposes it asks for.
type webformRow struct {
	*webform.Webform
	Lists, Consents []string
	Marketing       string // the marketing box's purpose, or ""
}

func (s *Server) webformsPage(w http.ResponseWriter, r *http.Request, u *auth.User) {
	ctx := r.Context()
	forms, err := s.Webforms.All(ctx)
	if err != nil {
		s.fail(w, err, u)
		return
	}
	listNames, purposeNames, err := s.webformNames(ctx)
	if err != nil {
		s.fail(w, err, u)
		return
	}
	rows := make([]webformRow, len(forms))
	for i, f := range forms {
		rows[i].Webform = f
		for _, b := range f.Lists {
			rows[i].Lists = append(rows[i].Lists, nameOr(listNames, b.List))
		}
		for _, b := range f.Consents {
			rows[i].Consents = append(rows[i].Consents, nameOr(purposeNames, b.Purpose))
		}
		if f.Marketing != nil {
			rows[i].Marketing = nameOr(purposeNames, f.Marketing.Purpose)
		}
	}
	s.render(w, http.StatusOK, "webforms", page{Title: "Webforms", User: u, Nav: "webforms",
		Flash: webformDone[r.URL.Query().Get("done")], Data: rows})
}

// webformNames returns the names of the lists and of the purposes, by id.
func (s *Server) webformNames(ctx context.Context) (map[string]string, map[string]string, error) {
	ls, err := s.Lists.All(ctx)
	if err != nil {
		return nil, nil, err
	}
	ps, err := s.Consent.Purposes(ctx)
	if err != nil {
		return nil, nil, err
	}
	listNames, purposeNames := map[string]string{}, map[string]string{}
	for _, l := range ls {
		listNames[l.ID] = l.Name
	}
	for _, p := range ps {
		purposeNames[p.ID] = p.Name
	}
	return listNames, purposeNames, nil
}

// nameOr is the name of id in names, or id itself when it is gone.
func nameOr(names map[string]string, id string) string {
	if n, ok := names[id]; ok {
		return n
	}
	return id
}

// webformView is a form's own page: the hosted form's address and the
// snippet to copy, and the form as the public page shows it.
type webformView struct {
	Form    *webform.Webform
	URL     string
	Snippet string
	Preview template.HTML
}

func (s *Server) webformPage(w http.ResponseWriter, r *http.Request, u *auth.User) {
	ctx := r.Context()
	f, err := s.Webforms.Get(ctx, r.PathValue("id"))
	if err != nil {
		s.fail(w, err, u)
		return
	}
	v := webformView{Form: f, URL: s.Webforms.URL(f.ID)}
	if v.Snippet, err = s.Webforms.Snippet(ctx, f.ID); err != nil {
		s.fail(w, err, u)
		return
	}
	shown, err := s.Webforms.Page(ctx, f.ID, "")
	if err == nil {
		v.Preview, err = shown.HTML()
	}
	if err != nil {
		s.fail(w, err, u)
		return
	}
	s.render(w, http.StatusOK, "webform", page{Title: "Webform: " + f.Name, User: u, Nav: "webforms",
		Flash: webformDone[r.URL.Query().Get("done")], Data: v})
}

func (s *Server) deleteWebform(w http.ResponseWriter, r *http.Request, u *auth.User) {
	if err := s.Webforms.Delete(r.Context(), audit.Actor(actor(u)), r.PathValue("id")); err != nil {
		s.fail(w, err, u)
		return
	}
	http.Redirect(w, r, "/admin/webforms?done=deleted", http.StatusSeeOther)
}

// webformEditor is the new and edit page of a webform.
type webformEditor struct {
	ID        string // empty for a new one
	Form      url.Values
	Languages []string
	Fields    []editorField
	Lists     []*lists.List // the public ones, which a form can offer
	Purposes  []editorPurpose
	// Marketing is the purpose the marketing box asks for by default.
	Marketing string
}

// editorField is a contact field a form can ask for.
type editorField struct {
	Name, Label string
	Email       bool // always asked for, and required
}

// editorPurpose is a purpose a consent box can ask for, with the consent
// text the box shows in the form's language.
type editorPurpose struct {
	*consent.Purpose
	Shown consent.ShownText
}

func (s *Server) newWebformPage(w http.ResponseWriter, r *http.Request, u *auth.User) {
	f := url.Values{"language": {i18n.Languages[0]}, "marketing": {"on"}, "marketing_purpose": {optin.EMarketing}}
	s.showWebformEditor(w, r, u, http.StatusOK, "", f, nil)
}

func (s *Server) editWebformPage(w http.ResponseWriter, r *http.Request, u *auth.User) {
	wf, err := s.Webforms.Get(r.Context(), r.PathValue("id"))
	if err != nil {
		s.fail(w, err, u)
		return
	}
	s.showWebformEditor(w, r, u, http.StatusOK, wf.ID, definitionForm(wf.Definition), nil)
}

// definitionForm is d as the editor posts it.
func definitionForm(d webform.Definition) url.Values {
	f := url.Values{"name": {d.Name}, "title": {d.Title}, "language": {d.Language}, "submit_label": {d.SubmitLabel},
		"privacy_policy_url": {d.PrivacyPolicyURL}, "redirect_url": {d.RedirectURL}}
	for _, x := range d.Fields {
		f.Add("field", x.Name)
		f.Add("field_on", x.Name)
		f.Set("field_label."+x.Name, x.Label)
		if x.Required {
			f.Add("field_required", x.Name)
		}
	}
	for _, b := range d.Lists {
		f.Add("list", b.List)
		f.Add("list_on", b.List)
		f.Set("list_label."+b.List, b.Label)
	}
	for _, b := range d.Consents {
		f.Add("consent", b.Purpose)
		f.Add("consent_on", b.Purpose)
		f.Set("consent_label."+b.Purpose, b.Label)
	}
	// A form without the marketing box offers it with E-marketing, should
	// it be ticked.
	f.Set("marketing_purpose", optin.EMarketing)
	if m := d.Marketing; m != nil {
		f.Set("marketing", "on")
		f.Set("marketing_purpose", m.Purpose)
		f.Set("marketing_label", m.Label)
	}
	return f
}

// formDefinition reads the editor's post: the ticked rows in their order.
// The editor posts the rows of fields, lists and purposes in their order
// (field, list, consent), those ticked (field_on, list_on, consent_on,
// field_required) and each row's label (field_label.NAME, list_label.ID,
// consent_label.ID), and the marketing box as marketing, marketing_purpose
// and marketing_label.
func formDefinition(f url.Values) webform.Definition {
	d := webform.Definition{Name: f.Get("name"), Title: f.Get("title"), Language: f.Get("language"), SubmitLabel: f.Get("submit_label"),
		PrivacyPolicyURL: f.Get("privacy_policy_url"), RedirectURL: f.Get("redirect_url")}
	for _, name := range ticked(f, "field") {
		d.Fields = append(d.Fields, webform.Field{Name: name, Label: f.Get("field_label." + name),
			Required: slices.Contains(f["field_required"], name)})
	}
	for _, id := range ticked(f, "list") {
		d.Lists = append(d.Lists, webform.ListBox{List: id, Label: f.Get("list_label." + id)})
	}
	for _, id := range ticked(f, "consent") {
		d.Consents = append(d.Consents, webform.ConsentBox{Purpose: id, Label: f.Get("consent_label." + id)})
	}
	if f.Get("marketing") == "on" {
		d.Marketing = &webform.MarketingBox{Purpose: f.Get("marketing_purpose"), Label: f.Get("marketing_label")}
	}
	return d
}

// ticked are the rows of kind (field, list, consent) ticked on the form,
// in the order of the rows.
func ticked(f url.Values, kind string) []string {
	var out []string
	for _, k := range f[kind] {
		if slices.Contains(f[kind+"_on"], k) && !slices.Contains(out, k) {
			out = append(out, k)
		}
	}
	return out
}

// definitionPath is a field of a definition as webform's errors name it,
// such as consents[1].label.
var definitionPath = regexp.MustCompile(`^(fields|lists|consents)\[(\d+)\]\.(\w+)$`)

// editorInput names the input of the editor that a validation error of
// the definition posted as f is about: the row's label input, or else its
// box; "form" when it is about no one input.
func editorInput(e *errs.Error, f url.Values) string {
	if m := definitionPath.FindStringSubmatch(e.Field); m != nil {
		kind := map[string]string{"fields": "field", "lists": "list", "consents": "consent"}[m[1]]
		rows := ticked(f, kind)
		i, _ := strconv.Atoi(m[2])
		if i >= len(rows) {
			return "form"
		}
		if m[3] == "label" {
			return kind + "_label." + rows[i]
		}
		return kind + "_on." + rows[i]
	}
	switch e.Field {
	case "name", "title", "language", "submit_label", "privacy_policy_url", "redirect_url", "fields", "lists", "consents":
		return e.Field
	case "marketing.purpose", "marketing.label":
		return "marketing_" + e.Field[len("marketing."):]
	case "marketing.checked":
		return "marketing"
	}
	return "form"
}

func (s *Server) showWebformEditor(w http.ResponseWriter, r *http.Request, u *auth.User, status int, id string, f url.Values, fe map[string]string) {
	ctx := r.Context()
	v := webformEditor{ID: id, Form: f, Languages: i18n.Languages, Marketing: optin.EMarketing}
	defs, err := s.Contacts.Fields(ctx)
	if err != nil {
		s.fail(w, err, u)
		return
	}
	var fields []editorField
	for _, name := range contact.WebformFields() {
		cf, _ := contact.LookupCoreField(name)
		fields = append(fields, editorField{Name: name, Label: cf.Label, Email: name == "email"})
	}
	for _, d := range defs {
		fields = append(fields, editorField{Name: d.Name, Label: d.Label})
	}
	v.Fields = inRowOrder(fields, f["field"], func(x editorField) string { return x.Name })
	all, err := s.Lists.All(ctx)
	if err != nil {
		s.fail(w, err, u)
		return
	}
	for _, l := range all {
		if l.Public || slices.Contains(f["list_on"], l.ID) {
			v.Lists = append(v.Lists, l)
		}
	}
	v.Lists = inRowOrder(v.Lists, f["list"], func(l *lists.List) string { return l.ID })
	ps, err := s.Consent.Purposes(ctx)
	if err != nil {
		s.fail(w, err, u)
		return
	}
	lang := f.Get("language")
	if !i18n.Supported(lang) {
		lang = i18n.Languages[0]
	}
	var purposes []editorPurpose
	for _, p := range ps {
		purposes = append(purposes, editorPurpose{Purpose: p, Shown: p.TextIn(lang)})
	}
	v.Purposes = inRowOrder(purposes, f["consent"], func(p editorPurpose) string { return p.ID })
	title := "New webform"
	if id != "" {
		title = "Edit webform"
	}
	s.render(w, status, "webform_edit", page{Title: title, User: u, Nav: "webforms", Errors: fe, Data: v})
}

// inRowOrder puts the rows named in order first, in that order, and the
// others after them as they came: a form's own order, then what it does
// not use.
func inRowOrder[T any](rows []T, order []string, key func(T) string) []T {
	out := make([]T, 0, len(rows))
	for _, k := range order {
		for _, x := range rows {
			if key(x) == k && !slices.ContainsFunc(out, func(y T) bool { return key(y) == k }) {
				out = append(out, x)
			}
		}
	}
	for _, x := range rows {
		if !slices.ContainsFunc(out, func(y T) bool { return key(y) == key(x) }) {
			out = append(out, x)
		}
	}
	return out
}

// saveWebform creates a form, or replaces one's definition from its edit
// page, and redirects to the form's page; an error shows the editor again
// with what was posted, the error next to its input.
func (s *Server) saveWebform(w http.ResponseWriter, r *http.Request, u *auth.User) {
	if !s.parse(w, r, u) {
		return
	}
	f := r.PostForm
	d := formDefinition(f)
	id := r.PathValue("id")
	var wf *webform.Webform
	var err error
	if id == "" {
		wf, err = s.Webforms.Create(r.Context(), audit.Actor(actor(u)), d)
	} else {
		wf, err = s.Webforms.Replace(r.Context(), audit.Actor(actor(u)), id, d)
	}
	if err != nil {
		e := errs.As(err)
		if e == nil || e.Kind == errs.KindNotFound && e.Field == "webform" {
			s.fail(w, err, u)
			return
		}
		s.showWebformEditor(w, r, u, httpx.Status(err), id, f, map[string]string{editorInput(e, f): e.Message})
		return
	}
	http.Redirect(w, r, "/admin/webforms/"+url.PathEscape(wf.ID)+"?done=saved", http.StatusSeeOther)
}
