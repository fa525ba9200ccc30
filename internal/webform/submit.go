package webform

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/consentry/consentry/internal/consent"
	"github.com/consentry/consentry/internal/contact"
	"github.com/consentry/consentry/internal/contactstate"
	"github.com/consentry/consentry/internal/errs"
	"github.com/consentry/consentry/internal/lists"
	"github.com/consentry/consentry/internal/optin"
	"github.com/consentry/consentry/internal/store"
)

// Submission is one post of a form.
type Submission struct {
	// Form is the posted form, as the markup of View names its fields.
	// Names the form does not have are ignored; a name it has may appear
	// once.
	Form      url.Values
	IP        string
	UserAgent string
	// Lang is the language the form was shown in, for the result page and
	// the errors.
	Lang string
	// AllowAddress is asked with the normalised (lower-case) address once
	// the post is valid and before anything is written. When it says no,
	// the submission is dropped: accepted, as the person sees it, and
	// nothing written. Nil allows every address.
	AllowAddress func(key string) bool
}

// Result is what a submission that was taken (or dropped) leads to. It is
// the same whether the address was new, known, limited, a honeypot hit or
// a contact who stopped processing, so that a response reveals nothing.
type Result struct {
	Redirect string // the form's redirect URL, or "" for the thank-you page
	Lang     string
}

// Invalid is a post with errors: one per field, by the field's input name
// ("email", "fields.NAME", "consents[0].version"). Nothing was written.
type Invalid struct {
	Errors map[string]*errs.Error
	// View is the form shown again with the person's values and the errors
	// next to their fields.
	View *View
}

func (e *Invalid) Error() string {
	names := make([]string, 0, len(e.Errors))
	for n := range e.Errors {
		names = append(names, n)
	}
	sort.Strings(names)
	parts := make([]string, len(names))
	for i, n := range names {
		parts[i] = e.Errors[n].Error()
	}
	return "webform: " + strings.Join(parts, "; ")
}

// maxValue is the longest value a posted field may have; custom text
// fields are checked again against their own limit.
const maxValue = 10000

// post reads the posted form strictly: a field the form has, sent twice or
// not plain text, is an error on that field.
type post struct {
	form     url.Values
	problems map[string]*errs.Error
}

func (p *post) fail(name string, e *errs.Error) {
	if p.problems[name] == nil {
		p.problems[name] = e
	}
}

// one returns the trimmed value of name, "" when absent.
func (p *post) one(name string) string {
	vs := p.form[name]
	switch {
	case len(vs) == 0:
		return ""
	case len(vs) > 1:
		p.fail(name, errs.Invalid(name, "was sent more than once"))
		return ""
	case len(vs[0]) > maxValue:
		p.fail(name, errs.Invalid(name, "must be at most %d characters", maxValue))
		return ""
	}
	if err := errs.PlainText(name, vs[0]); err != nil {
		p.fail(name, errs.As(err))
		return ""
	}
	return strings.TrimSpace(vs[0])
}

// checked reads a checkbox: absent, or "yes" as the markup sends it.
func (p *post) checked(name string) bool {
	switch p.one(name) {
	case "":
		return false
	case "yes":
		return true
	}
	p.fail(name, errs.Invalid(name, `must be "yes" when checked`))
	return false
}

// version reads the text version a box showed: 0 (the current one) when
// absent.
func (p *post) version(name string) int {
	v := p.one(name)
	if v == "" {
		return 0
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		p.fail(name, errs.Invalid(name, "must be a consent text version number"))
		return 0
	}
	return n
}

// Submit takes a post of the form: it validates it and writes, in one
// transaction, what it causes.
//
// A new address becomes a lead, with a granted consent record for each
// checked consent box and the marketing box with the evidence (actor the
// contact, method webform, IP, user agent, source "Web form", the text
// version shown), for a checked marketing box the opt-in status
// single_opt_in_webform and the double opt-in email, and the subscriptions
// of the checked lists. Unchecked boxes record nothing.
//
// A known address is not changed: anyone could have posted it. What the
// post carried is held, and the address is emailed a link that applies it
// (see Confirm). A contact whose processing is stopped is left as it is.
// The result is the same in every case.
//
// It returns a not-found error (field "webform") when there is no such
// form, and *Invalid, with nothing written, for a post with errors.
func (s *Service) Submit(ctx context.Context, idOrName string, sub Submission) (*Result, error) {
	f, fromCache, err := s.load(ctx, idOrName)
	if err != nil {
		return nil, err
	}
	res, err := s.submit(ctx, f, sub)
	var invalid *Invalid
	if fromCache && errors.As(err, &invalid) {
		if f, err = s.loadFresh(ctx, idOrName); err != nil {
			return nil, err
		}
		return s.submit(ctx, f, sub)
	}
	return res, err
}

func (s *Service) submit(ctx context.Context, f *loaded, sub Submission) (*Result, error) {
	var err error
	w := f.w
	lang := pageLang(sub.Lang, w.Language)
	res := &Result{Redirect: w.RedirectURL, Lang: lang}
	p := &post{form: sub.Form, problems: map[string]*errs.Error{}}
	if hp := sub.Form[Honeypot]; len(hp) > 0 && strings.Join(hp, "") != "" {
		return res, nil // a bot: it learns nothing, and nothing is written
	}
	in := contact.Input{Fields: map[string]any{}}
	var email string
	for _, fd := range w.Fields {
		name := inputName(fd.Name)
		v := p.one(name)
		if v == "" {
			if fd.Required && p.problems[name] == nil {
				p.fail(name, errs.Required(name))
			}
			continue
		}
		switch fd.Name {
		case "email":
			email = v
			in.Email = &email
		case "first_name":
			in.FirstName = &v
		case "last_name":
			in.LastName = &v
		case "phone":
			in.Phone = &v
		case "country":
			in.Country = &v
		case "region":
			in.Region = &v
		default:
			if d := f.defs[fd.Name]; d != nil && d.Type == contact.TypeBoolean {
				in.Fields[fd.Name] = v == "true"
			} else {
				in.Fields[fd.Name] = v
			}
		}
	}
	// Every field's own problem, not only the first: the form shows them
	// all at once.
	for _, e := range contact.Problems(in, f.defs) {
		p.fail(inputName(strings.TrimPrefix(e.Field, "fields.")), e)
	}
	ev := consent.Evidence{Method: consent.MethodWebform, IP: cleanIP(sub.IP), UserAgent: cleanUA(sub.UserAgent)}
	actor := consent.Actor{Kind: consent.ActorContact}
	var failed error // a fault reading a consent text, not the post's
	grant := func(name string, purpose *consent.Purpose, version int) (*consent.Prepared, string) {
		shownIn := lang
		t, err := s.versionShown(ctx, purpose, version)
		if err != nil {
			failed = err
			return nil, ""
		}
		if t != nil {
			shownIn = t.In(lang).Language // the translation, or the text the box fell back to
		}
		pr, err := s.Consent.PrepareResolved(consent.RecordInput{Purpose: purpose.ID, State: consent.StateGranted, Source: SourceWebForm,
			TextVersion: version, TextLanguage: shownIn, Actor: actor, Evidence: ev}, purpose, f.source)
		if err != nil {
			field := name + ".checked"
			if e := errs.As(err); e != nil && e.Field == "text_version" {
				field = name + ".version"
			}
			p.fail(field, rename(err, field))
		}
		return pr, shownIn
	}
	var grants []*consent.Prepared
	var boxes []box // the checked consent boxes, for a post held for confirmation
	var marketing *box
	if w.Marketing != nil && p.checked("marketing.checked") {
		v := p.version("marketing.version")
		if pr, shownIn := grant("marketing", f.marketing, v); pr != nil {
			grants, marketing = append(grants, pr), &box{f.marketing, v, shownIn}
		}
	}
	for i := range w.Consents {
		name := consentName(i)
		if p.checked(name + ".checked") {
			v := p.version(name + ".version")
			if pr, shownIn := grant(name, f.consents[i], v); pr != nil {
				grants, boxes = append(grants, pr), append(boxes, box{f.consents[i], v, shownIn})
			}
		}
	}
	if failed != nil {
		return nil, failed
	}
	var subscribe []*lists.List
	for i := range w.Lists {
		if p.checked(listName(i)+".checked") && f.lists[i] != nil {
			subscribe = append(subscribe, f.lists[i])
		}
	}
	var up *contact.Upsert
	if len(p.problems) == 0 {
		if up, err = s.Contacts.PrepareUpsert(ctx, in); err != nil {
			e := errs.As(err)
			if e == nil || e.Kind != errs.KindInvalid {
				return nil, err
			}
			p.fail(inputName(strings.TrimPrefix(e.Field, "fields.")), e)
		}
	}
	if up != nil {
		up.Language = lang
		for _, g := range grants {
			up.NewConsent = up.NewConsent || g.ExplicitConsent()
		}
	}
	if len(p.problems) > 0 {
		return nil, &Invalid{Errors: p.problems, View: f.view(s.action(w.ID, sub.Lang, w.Language, false), lang, sub.Form, p.problems)}
	}
	if sub.AllowAddress != nil && !sub.AllowAddress(strings.ToLower(*in.Email)) {
		return res, nil
	}
	var marketingText *consent.PurposeText // as the form showed it, for the email of a held post
	if marketing != nil {
		if marketingText, err = s.versionShown(ctx, f.marketing, marketing.version); err != nil {
			return nil, err
		}
		if marketingText == nil {
			return nil, fmt.Errorf("webform: purpose %s has no consent text version %d", f.marketing.ID, marketing.version)
		}
	}
	write := func(tx *store.Tx) error {
		now := s.now()
		u, err := up.CreateOrFind(tx, now)
		if err != nil || u.Key.ProcessingStopped || u.Suppressed {
			// A stopped contact is not changed; an erased address without a
			// new explicit consent is not stored. Either way the page says
			// the same as ever.
			return err
		}
		if !u.Created {
			// Anyone could have posted this address: nothing changes
			// until its owner confirms, and the page says the same as ever.
			return s.hold(tx, f, &sub, up, u, marketing, marketingText, boxes, subscribe, lang, now)
		}
		for _, g := range grants {
			if _, err := g.Apply(tx, u.Key, now); err != nil {
				return err
			}
		}
		if marketing != nil {
			ch, err := s.Consent.ApplyOptIn(tx, u.Key, consent.OptInInput{Status: contactstate.SingleOptInWebform, Channel: consent.ChannelWebform,
				Actor: actor, Evidence: ev}, now)
			if err != nil {
				return err
			}
			// A lead written just now: nothing to read back about it.
			c, status := u.Contact, u.Key.OptIn
			if ch != nil {
				status = ch.To
			}
			if _, err = s.OptIn.InviteCreatedTx(tx, optin.NewContact{ID: c.ID, Email: c.Email, FirstName: c.FirstName,
				Language: c.Language, OptIn: status}, optin.TriggerWebform, now); err != nil {
				return err
			}
		}
		for _, l := range subscribe {
			if err := lists.SetLater(tx, u.Key.ID, l.ID, lists.Subscribed, lists.SourceWebform, now); err != nil {
				return err
			}
		}
		return nil
	}
	err = s.DB.Write(ctx, write)
	if up.Retry(err) {
		err = s.DB.Write(ctx, write) // the address was taken meanwhile: update that contact instead
	}
	if err != nil {
		return nil, fmt.Errorf("webform: submit: %w", err)
	}
	return res, nil
}

// rename names field in a domain error.
func rename(err error, field string) *errs.Error {
	e := errs.As(err)
	if e == nil {
		return errs.Invalid(field, "%v", err)
	}
	out := *e
	out.Field = field
	return &out
}

// cleanIP keeps an address that parses, as the evidence wants; anything
// else is left out rather than failing the person's submission.
func cleanIP(ip string) string {
	a, err := netip.ParseAddr(ip)
	if err != nil {
		return ""
	}
	return a.String()
}

// cleanUA keeps the user agent within what evidence stores: valid UTF-8,
// no control characters, at most 512 bytes.
func cleanUA(ua string) string {
	ua = strings.ToValidUTF8(ua, "\uFFFD")
	ua = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return -1
		}
		return r
	}, ua)
	for len(ua) > 512 {
		_, size := utf8.DecodeLastRuneInString(ua)
		ua = ua[:len(ua)-size]
	}
	return ua
}
