package webform

import (
	"bytes"
	"context"
	"embed"
	"fmt"
	"html/template"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/consentry/consentry/internal/consent"
	"github.com/consentry/consentry/internal/contact"
	"github.com/consentry/consentry/internal/errs"
	"github.com/consentry/consentry/internal/i18n"
	"github.com/consentry/consentry/internal/lists"
)

//go:embed templates/form.html
var templateFS embed.FS

// parseForm parses the form's markup template.
func parseForm() (*template.Template, error) {
	t, err := template.New("form.html").Funcs(template.FuncMap{"t": i18n.T}).ParseFS(templateFS, "templates/form.html")
	if err != nil {
		return nil, fmt.Errorf("webform: form template: %w", err)
	}
	return t, nil
}

// Honeypot is the name of the field that people never see and bots fill.
const Honeypot = "website"

// View is a form as it is shown: the same markup for the snippet and the
// hosted page, in one language, with the person's values and the errors
// next to their fields when a post is shown again.
type View struct {
	Action      string
	Lang        string
	Title       string
	PrivacyURL  string
	SubmitLabel string
	Fields      []FieldView
	Marketing   *BoxView
	Consents    []BoxView
	Lists       []BoxView
	HoneypotID  string
	// RedirectOrigin is the scheme and host of the form's redirect URL, or
	// "": the hosted page must allow its form to lead there.
	RedirectOrigin string
	// Errors is set when the form is shown again after a post with errors;
	// each field's own error is in its view.
	Errors bool

	tmpl *template.Template // the form's markup, from the service
}

// FieldView is one contact field on a form.
type FieldView struct {
	Name, ID, Label, Type, Autocomplete, Value, Error string
	Required, Checkbox                                bool
	MaxLength                                         int
}

// BoxView is one checkbox: a consent, the marketing box or a list.
type BoxView struct {
	Name, ID, Label, Error string
	// Text is a consent box's consent text, in the language shown, or a
	// list's description.
	Text string
	// Consent is set on the consent and marketing boxes: they show one
	// sentence, their consent text (the words the record keeps), as the
	// box's label; the operator's label only when the purpose has no text.
	Consent     bool
	VersionName string
	Version     int
	Checked     bool
}

// loaded is a stored form with what it shows now: each box's purpose with
// its current consent text and that text's translations, and each list, nil once it is gone or no
// longer public (it is then left off the form).
type loaded struct {
	w         *Webform
	defs      map[string]*contact.FieldDefinition
	marketing *consent.Purpose
	consents  []*consent.Purpose
	source    *consent.Source // "Web form", which submissions are recorded with
	lists     []*lists.List
	tmpl      *template.Template // the service's form template
}

// cacheFor is how long this instance shows and takes a form as it read
// it: a change to the form, its purposes' texts, its lists or the field
// definitions reaches the form within this time. Every submission reads
// all of these, so the cache saves the database most of its reads; a post
// that fails validation against a cached form is checked again against a
// fresh one before it is refused, so a consent text version created a
// moment ago is never refused as unknown.
const cacheFor = time.Second

type cached struct {
	f  *loaded
	at time.Time
}

// load returns the form and what it shows, read at most cacheFor ago. It
// returns a not-found error (field "webform") when there is no such form.
func (s *Service) load(ctx context.Context, idOrName string) (*loaded, bool, error) {
	if c, ok := s.cache.Load(idOrName); ok && time.Since(c.(cached).at) < cacheFor {
		return c.(cached).f, true, nil
	}
	f, err := s.loadFresh(ctx, idOrName)
	if err == nil {
		s.cache.Store(idOrName, cached{f: f, at: time.Now()})
	}
	return f, false, err
}

// forget drops every cached form, after a change made by this instance.
func (s *Service) forget() { s.cache.Clear() }

// loadFresh reads the form and what it shows. It returns a not-found error
// (field "webform") when there is no such form.
func (s *Service) loadFresh(ctx context.Context, idOrName string) (*loaded, error) {
	w, err := s.Get(ctx, idOrName)
	if err != nil {
		return nil, err
	}
	f := &loaded{w: w, defs: map[string]*contact.FieldDefinition{}, tmpl: s.form}
	defs, err := s.Contacts.Fields(ctx)
	if err != nil {
		return nil, err
	}
	for _, d := range defs {
		f.defs[d.Name] = d
	}
	if f.source, err = s.Consent.ActiveSource(ctx, SourceWebForm); err != nil {
		return nil, err
	}
	if w.Marketing != nil {
		if f.marketing, err = s.Consent.Purpose(ctx, w.Marketing.Purpose); err != nil {
			return nil, err
		}
	}
	for _, b := range w.Consents {
		p, err := s.Consent.Purpose(ctx, b.Purpose)
		if err != nil {
			return nil, err
		}
		f.consents = append(f.consents, p)
	}
	for _, b := range w.Lists {
		l, err := s.Lists.Get(ctx, b.List)
		if err != nil && !errs.Is(err, errs.KindNotFound) {
			return nil, err
		}
		if l != nil && !l.Public {
			l = nil
		}
		f.lists = append(f.lists, l)
	}
	return f, nil
}

// inputName is the name a field is posted under: the core field's name, or
// fields.NAME for a custom field, as the API names them.
func inputName(name string) string {
	if slices.Contains(coreFields, name) {
		return name
	}
	return "fields." + name
}

func consentName(i int) string { return fmt.Sprintf("consents[%d]", i) }
func listName(i int) string    { return fmt.Sprintf("lists[%d]", i) }

// view builds the form's view in lang. posted and problems, when given,
// are a post being shown again with its errors.
func (f *loaded) view(action, lang string, posted url.Values, problems map[string]*errs.Error) *View {
	w := f.w
	prefix := "wf" + w.ID[max(0, len(w.ID)-8):] + "-"
	id := func(name string) string {
		return prefix + strings.NewReplacer("[", "", "]", "", ".", "-").Replace(name)
	}
	msg := func(name string) string {
		if e := problems[name]; e != nil {
			return i18n.InputError(lang, e.Field, e) // in the form's language
		}
		return ""
	}
	v := &View{tmpl: f.tmpl, Action: action, Lang: lang, Title: w.Title, PrivacyURL: w.PrivacyPolicyURL, SubmitLabel: w.SubmitLabel,
		HoneypotID: prefix + Honeypot, Errors: len(problems) > 0}
	if v.SubmitLabel == "" {
		v.SubmitLabel = i18n.T(lang, "webform.submit")
	}
	if u, err := url.Parse(w.RedirectURL); err == nil && w.RedirectURL != "" {
		v.RedirectOrigin = u.Scheme + "://" + u.Host
	}
	for _, fd := range w.Fields {
		name := inputName(fd.Name)
		label := fd.Label
		if label == "" {
			label = i18n.T(lang, "webform.field."+fd.Name)
		}
		fv := FieldView{Name: name, ID: id(name), Label: label, Type: "text", Required: fd.Required, Value: posted.Get(name),
			Error: msg(name), MaxLength: 200}
		if cf, core := contact.LookupCoreField(fd.Name); core {
			fv.Type, fv.Autocomplete, fv.MaxLength = cf.InputType, cf.Autocomplete, cf.MaxLength
		} else {
			fv.MaxLength = 1000
			if d := f.defs[fd.Name]; d != nil {
				switch d.Type {
				case contact.TypeEmail:
					fv.Type = "email"
				case contact.TypeDate:
					fv.Type = "date"
				case contact.TypeNumber:
					fv.Type = "number"
				case contact.TypeBoolean:
					fv.Checkbox = true
				}
			}
		}
		v.Fields = append(v.Fields, fv)
	}
	box := func(name, label, text string, version int) BoxView {
		return BoxView{Name: name + ".checked", ID: id(name), Label: label, Text: text, Consent: true, VersionName: name + ".version",
			Version: version, Checked: posted.Get(name+".checked") != "", Error: msg(name+".checked") + msg(name+".version")}
	}
	if w.Marketing != nil && f.marketing != nil {
		label := w.Marketing.Label
		if label == "" {
			label = i18n.T(lang, "webform.marketing.label")
		}
		t := f.marketing.TextIn(lang)
		b := box("marketing", label, t.Text, t.Version)
		v.Marketing = &b
	}
	for i, b := range w.Consents {
		p := f.consents[i]
		t := p.TextIn(lang)
		v.Consents = append(v.Consents, box(consentName(i), b.Label, t.Text, t.Version))
	}
	for i, b := range w.Lists {
		if l := f.lists[i]; l != nil {
			bv := box(listName(i), b.Label, l.Description, 0)
			bv.VersionName, bv.Consent = "", false
			v.Lists = append(v.Lists, bv)
		}
	}
	return v
}

// HTML is the form's markup: a plain form that posts to Action, with no
// script and no pre-checked box.
func (v *View) HTML() (template.HTML, error) {
	var b bytes.Buffer
	if err := v.tmpl.Execute(&b, v); err != nil {
		return "", fmt.Errorf("webform: render form: %w", err)
	}
	return template.HTML(b.String()), nil
}

// Page is what the hosted form page shows: the form's view, in the
// language asked for (lang, when one of ours) or else the form's own. It
// returns a not-found error (field "webform") when there is no such form.
func (s *Service) Page(ctx context.Context, idOrName, lang string) (*View, error) {
	f, _, err := s.load(ctx, idOrName)
	if err != nil {
		return nil, err
	}
	return f.view(s.action(f.w.ID, lang, f.w.Language, false), pageLang(lang, f.w.Language), nil, nil), nil
}

func pageLang(lang, formLang string) string {
	if lang != "" && i18n.Supported(lang) {
		return strings.ToLower(lang)
	}
	return formLang
}

// action is where the form posts: the absolute address for the snippet,
// which lives on another site, and the path for the hosted page, with the
// page's language when it is not the form's own.
func (s *Service) action(id, lang, formLang string, absolute bool) string {
	a := "/f/" + id
	if absolute {
		a = s.URL(id)
	}
	if l := pageLang(lang, formLang); l != formLang {
		a += "?lang=" + l
	}
	return a
}

// Snippet is the HTML to paste into a website: the form in its own
// language, posting to this service. It returns a not-found error when
// there is no such form.
func (s *Service) Snippet(ctx context.Context, idOrName string) (string, error) {
	f, err := s.loadFresh(ctx, idOrName)
	if err != nil {
		return "", err
	}
	h, err := f.view(s.action(f.w.ID, "", f.w.Language, true), f.w.Language, nil, nil).HTML()
	return string(h), err
}
