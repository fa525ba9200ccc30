package campaign

import (
	"context"
	"fmt"
	"net/mail"
	"strconv"
	"strings"
	"time"

	"golang.org/x/text/language"

	cmail "github.com/consentry/consentry/internal/mail"
	"github.com/consentry/consentry/internal/settings"
	"github.com/consentry/consentry/internal/store"
)

// prepared is a campaign ready to render: its gate, each variant split at
// its tags and links, and what every message shares.
type prepared struct {
	c        *Campaign
	gate     *gate
	variants map[string]*compiledVariant
	// byBase holds the variants by base language ("sv" for a variant in
	// sv or sv-SE), the first of each in the campaign's order.
	byBase map[language.Base]*compiledVariant
	links  *Links
	key    []byte
	from   string
	bounce string
	listID string
	domain string
	now    func() time.Time
}

type compiledVariant struct {
	lang                string
	subject, html, text compiled
}

// prepare compiles c for sending or previewing.
func (x *Sender) prepare(ctx context.Context, c *Campaign) (*prepared, error) {
	return x.Service.prepare(ctx, c, x.Links, x.From, x.Domain)
}

func (s *Service) prepare(ctx context.Context, c *Campaign, links *Links, defaultFrom, domain string) (*prepared, error) {
	g, err := s.newGate(ctx, s.DB.Read, c)
	if err != nil {
		return nil, err
	}
	p, err := s.compose(ctx, c, links, defaultFrom, domain)
	if err != nil {
		return nil, err
	}
	p.gate = g
	return p, nil
}

// compose is prepare without the audience's gate: c's content compiled,
// and what every message shares. It is enough to render for a recipient
// given rather than read, as the editor's preview does for its example
// contact before the campaign has an audience.
func (s *Service) compose(ctx context.Context, c *Campaign, links *Links, defaultFrom, domain string) (*prepared, error) {
	st, err := settings.Get(ctx, s.DB.Read)
	if err != nil {
		return nil, err
	}
	layout, err := s.layout(ctx, c)
	if err != nil {
		return nil, err
	}
	key, err := links.load(ctx)
	if err != nil {
		return nil, err
	}
	p := &prepared{c: c, variants: map[string]*compiledVariant{}, byBase: map[language.Base]*compiledVariant{}, links: links, key: key, domain: domain, now: s.now}
	p.from = defaultFrom
	sender := st.CampaignSenderName()
	if st.SenderAddress != "" {
		p.from = (&mail.Address{Name: sender, Address: st.SenderAddress}).String()
	} else if sender != "" {
		if a, err := mail.ParseAddress(defaultFrom); err == nil {
			p.from = (&mail.Address{Name: sender, Address: a.Address}).String()
		}
	}
	p.bounce = st.BounceAddress
	if p.bounce == "" {
		if a, err := mail.ParseAddress(p.from); err == nil {
			p.bounce = a.Address
		}
	}
	p.listID = fmt.Sprintf("%s <c%d.%s>", strings.NewReplacer("<", "", ">", "", "\"", "").Replace(c.Name), c.no, domain)
	identity := strings.NewReplacer("{{"+TagSenderName+"}}", htmlEscape(sender), "{{"+TagPostalAddress+"}}", htmlEscape(st.PostalAddress),
		"{{"+TagPrivacyContact+"}}", htmlEscape(privacyLine(st)), "{{"+TagWebsite+"}}", websiteLink(st.Website))
	for _, v := range c.Variants {
		body := strings.Replace(normalizeTags(layout), "{{"+TagContent+"}}", v.HTML, 1)
		cv := &compiledVariant{lang: v.Language, subject: compile(v.Subject, false), html: compile(identity.Replace(body), true)}
		text := v.Text
		if text == "" {
			text = PlainText(v.HTML)
		}
		cv.text = compile(text+textFooter(st), false)
		p.variants[v.Language] = cv
		if t, err := language.Parse(v.Language); err == nil {
			if b, _ := t.Base(); p.byBase[b] == nil {
				p.byBase[b] = cv
			}
		}
	}
	return p, nil
}

// normalizeTags writes every tag as {{name}}, so that a layout's
// {{ content }} is found.
func normalizeTags(src string) string {
	return tagRE.ReplaceAllString(src, "{{$1}}")
}

func htmlEscape(s string) string {
	return strings.ReplaceAll(strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", "\"", "&#34;").Replace(s), "\n", "<br>")
}

// textFooter is the plain-text part's footer: who sends, their postal
// address, their privacy contact, and the links to leave.
func textFooter(st settings.Settings) string {
	var b strings.Builder
	b.WriteString("\n--\n")
	if name := st.CampaignSenderName(); name != "" {
		b.WriteString(name + "\n")
	}
	if st.Website != "" {
		b.WriteString(st.Website + "\n")
	}
	if st.PostalAddress != "" {
		b.WriteString(st.PostalAddress + "\n")
	}
	if l := privacyLine(st); l != "" {
		b.WriteString(l + "\n")
	}
	b.WriteString("Unsubscribe: {{" + TagUnsubscribeURL + "}}\nYour preferences: {{" + TagPreferencesURL + "}}\n")
	return b.String()
}

// websiteLink is a link to the operator's website for an HTML footer,
// showing the address without its scheme; empty when none is set.
func websiteLink(site string) string {
	if site == "" {
		return ""
	}
	shown := strings.TrimSuffix(strings.TrimPrefix(strings.TrimPrefix(site, "https://"), "http://"), "/")
	return `<a href="` + htmlEscape(site) + `">` + htmlEscape(shown) + `</a>`
}

// privacyLine names the operator's privacy contact in a campaign footer;
// empty when none is set.
func privacyLine(st settings.Settings) string {
	if c := st.Controller("").PrivacyContact(); c != "" {
		return "Privacy contact: " + c
	}
	return ""
}

// variantFor returns the compiled content for a contact's language: the
// variant in that language, else one in the same language of another
// region (a contact in sv-SE reads the sv variant), else the campaign's
// default language's.
func (p *prepared) variantFor(lang string) *compiledVariant {
	if v, ok := p.variants[lang]; ok {
		return v
	}
	if t, err := language.Parse(lang); err == nil {
		if b, _ := t.Base(); p.byBase[b] != nil {
			return p.byBase[b]
		}
	}
	return p.variants[p.c.DefaultLanguage]
}

// content renders the subject and bodies for recipient id; tracked adds
// the open pixel and wraps the operator's links.
func (p *prepared) content(id int64, r *recipient) (subject, text, html string) {
	v := p.variantFor(r.lang)
	vals := values{tags: map[string]string{
		TagFirstName:      r.first,
		TagLastName:       r.last,
		TagUnsubscribeURL: p.links.url(p.key, LinkUnsubscribe, id, 0),
		TagPreferencesURL: p.links.url(p.key, LinkPreferences, id, 0),
		TagViewURL:        p.links.url(p.key, LinkView, id, 0),
	}}
	if r.tracked {
		vals.link = func(i int, _ string) string { return p.links.url(p.key, LinkClick, id, i) }
	}
	var sb strings.Builder
	v.subject.render(&sb, vals, false)
	subject = sb.String()
	sb.Reset()
	v.text.render(&sb, vals, false)
	text = sb.String()
	sb.Reset()
	v.html.render(&sb, vals, true)
	html = sb.String()
	if r.tracked {
		pixel := `<img src="` + p.links.url(p.key, LinkOpen, id, 0) + `" width="1" height="1" alt="">`
		if i := strings.LastIndex(strings.ToLower(html), "</body>"); i >= 0 {
			html = html[:i] + pixel + html[i:]
		} else {
			html += pixel
		}
	}
	return subject, text, html
}

// envelope is recipient r's message, ready for the transport.
func (p *prepared) envelope(id int64, r *recipient) *cmail.Envelope {
	subject, text, html := p.content(id, r)
	unsub := p.links.url(p.key, LinkUnsubscribe, id, 0)
	return &cmail.Envelope{
		OutboxID: "c" + strconv.FormatInt(p.c.no, 10) + "." + strconv.FormatInt(id, 10),
		From:     p.from, To: r.email, Subject: subject, Text: text, HTML: html,
		MessageID:  "c" + strconv.FormatInt(p.c.no, 10) + "." + strconv.FormatInt(id, 10) + "@" + p.domain,
		Date:       p.now(),
		ReturnPath: returnPath(p.bounce, p.c.no, id, bounceTag(p.key, id)),
		Headers: map[string]string{
			"List-Id":               p.listID,
			"List-Unsubscribe":      "<" + unsub + ">",
			"List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
			"Precedence":            "bulk",
		},
	}
}

// recipientOf reads one recipient row's campaign and contact, for the
// links' pages. It returns ErrBadLink when the row does not exist.
func recipientOf(ctx context.Context, q store.Querier, id int64) (no int64, contactID string, sentAt *time.Time, err error) {
	var at *int64
	err = q.QueryRowContext(ctx, `SELECT campaign_no, contact_id, sent_at FROM campaign_recipients WHERE id = $1`, id).Scan(&no, &contactID, &at)
	if err != nil {
		return 0, "", nil, ErrBadLink
	}
	if at != nil {
		t := store.FromMicros(*at)
		sentAt = &t
	}
	return no, contactID, sentAt, nil
}
