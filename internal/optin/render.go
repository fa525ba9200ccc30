package optin

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/consentry/consentry/internal/auth"
	"github.com/consentry/consentry/internal/i18n"
	"github.com/consentry/consentry/internal/mail"
	"github.com/consentry/consentry/internal/settings"
	"github.com/consentry/consentry/internal/store"
)

// bodies renders invitation emails for one piece of work (a request, a
// bulk run). The emails of many contacts differ only in their link:
// those with the same language, first name, consent text and expiry date
// read the same. Each distinct email is rendered once, with a stand-in
// where the link's placeholder goes, and each contact's copy is that
// rendering with the stand-in replaced by their own link's placeholder.
// Placeholders and the stand-in are made alike (mail.NewLink) of letters,
// digits and a dash, which no template escapes, so the copy is, byte for
// byte, what rendering the email for the contact gives; the stand-in is
// random, so no name or consent text holds it by chance.
//
// A bulk run also renders ahead (warm): while a batch's transaction runs,
// the next batch's emails are rendered outside it, so that the writer's
// transaction only copies them.
type bodies struct {
	s     *Service
	stand string

	mu   sync.Mutex
	memo map[bodyKey]*body
	// Seen in the last batch, for rendering the next one ahead: the
	// consent text shown in each language and the expiry date.
	texts        map[string]string
	validUntil   time.Time
	from         settings.Controller
	repermission bool
	// Renderings made since the last call of worthWarming, in a
	// transaction (missed) and ahead of one (ahead).
	missed, ahead int
}

type bodyKey struct {
	lang, name, consentText, validUntil string
	reminder                            bool
	// repermission: the company asks a contact it holds whether they want
	// to keep receiving email (a re-permission run), rather than confirming
	// what the contact asked for; the email says so in its own words.
	repermission bool
	from         settings.Controller // who the email names as sender and controller
}

// body is a rendered email, its bodies cut where the stand-in was.
type body struct {
	subject    string
	text, html []string
}

// maxBodies bounds the renderings kept: those of two bulk batches (the
// one writing and the next, rendered ahead). A run over contacts who all
// have different first names renders most emails anyway.
const maxBodies = 2 * bulkMaxAtOnce

func (s *Service) newBodies() *bodies {
	return &bodies{s: s, stand: mail.NewLink("", "", time.Time{}).Placeholder, memo: map[bodyKey]*body{}, texts: map[string]string{}}
}

// linkMessage returns the email that carries the invitation's
// confirmation link to r: the invitation, or its reminder, worded for the
// invitation's trigger (a re-permission run asks; the others confirm what
// the contact asked for). The link's token is issued as the email is sent
// (mail.Link).
func (b *bodies) linkMessage(r *recipient, from settings.Controller, invitation, trigger, consentText string, expires time.Time, reminder bool) (mail.Message, error) {
	link := mail.NewLink(auth.PurposeDoubleOptIn, invitation, expires)
	k := bodyKey{lang: r.lang, name: r.name, consentText: consentText, validUntil: expires.Format("2006-01-02"), reminder: reminder,
		repermission: trigger == TriggerRepermission, from: from}
	b.mu.Lock()
	got := b.memo[k]
	if !reminder {
		b.texts[r.lang], b.validUntil, b.from, b.repermission = consentText, expires, from, k.repermission
	}
	b.mu.Unlock()
	if got == nil {
		var err error
		if got, err = b.render(k); err != nil {
			return mail.Message{}, err
		}
		b.mu.Lock()
		b.missed++
		b.mu.Unlock()
	}
	return mail.Message{ContactID: r.id, Kind: mail.KindDoubleOptIn, Language: r.lang, Subject: got.subject,
		Text: strings.Join(got.text, link.Placeholder), HTML: strings.Join(got.html, link.Placeholder),
		SubjectID: invitation, Links: []mail.Link{link}}, nil
}

// render renders the email k names with the stand-in, and keeps it.
func (b *bodies) render(k bodyKey) (*body, error) {
	s := b.s
	data := map[string]any{"Lang": k.lang, "Name": k.name, "Reminder": k.reminder, "Repermission": k.repermission,
		"ConsentText": k.consentText, "Link": s.BaseURL + "/confirm/" + b.stand, "ValidUntil": k.validUntil, "Sender": k.from}
	text, html, err := s.Mail.Render("double_opt_in", data)
	if err != nil {
		return nil, fmt.Errorf("optin: render email: %w", err)
	}
	if !strings.Contains(text, b.stand) || !strings.Contains(html, b.stand) {
		return nil, fmt.Errorf("optin: render email: the template has no confirmation link")
	}
	subject := i18n.T(k.lang, "email.doi.subject")
	switch {
	case k.repermission && k.reminder:
		subject = i18n.T(k.lang, "email.repermission.reminder_subject")
	case k.repermission:
		subject = i18n.T(k.lang, "email.repermission.subject")
	case k.reminder:
		subject = i18n.T(k.lang, "email.reminder.subject")
	}
	out := &body{subject: subject, text: strings.Split(text, b.stand), html: strings.Split(html, b.stand)}
	b.mu.Lock()
	if len(b.memo) >= maxBodies {
		clear(b.memo)
	}
	b.memo[k] = out
	b.mu.Unlock()
	return out, nil
}

// worthWarming reports whether rendering ahead is worth its query: it is
// unless the last batch found every email it needed already rendered and
// the last rendering ahead rendered nothing new (every first name on the
// list seen already, say). A batch that renders again turns it back on.
func (b *bodies) worthWarming() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	worth := b.missed > 0 || b.ahead > 0
	b.missed, b.ahead = 0, 0
	return worth
}

// warm renders ahead the invitations of the contacts in ids, reading
// their first names and languages outside any transaction, with the
// consent texts and expiry date the last batch showed. Nothing here is
// relied on: the batch's transaction reads the contacts again and renders
// what it does not find (a contact renamed meanwhile, a new consent
// text). Errors are left for that transaction to meet.
func (b *bodies) warm(ctx context.Context, ids []string) {
	b.mu.Lock()
	texts := make(map[string]string, len(b.texts))
	for l, t := range b.texts {
		texts[l] = t
	}
	validUntil, from, repermission := b.validUntil.Format("2006-01-02"), b.from, b.repermission
	b.mu.Unlock()
	if len(texts) == 0 || len(ids) == 0 {
		return
	}
	cond, args := store.Among(b.s.DB.Dialect, 1, ids)
	people, err := store.QueryAll(ctx, b.s.DB.Read, func(row store.Scanner) ([2]string, error) {
		var p [2]string
		return p, row.Scan(&p[0], &p[1])
	}, `SELECT DISTINCT first_name, language FROM contacts WHERE id `+cond, args...)
	if err != nil {
		return
	}
	for _, p := range people {
		lang := i18n.Match(p[1], "")
		text, ok := texts[lang]
		if !ok {
			continue
		}
		k := bodyKey{lang: lang, name: p[0], consentText: text, validUntil: validUntil, repermission: repermission, from: from}
		b.mu.Lock()
		done := b.memo[k] != nil
		b.mu.Unlock()
		if !done {
			if _, err := b.render(k); err != nil {
				return
			}
			b.mu.Lock()
			b.ahead++
			b.mu.Unlock()
		}
	}
}
