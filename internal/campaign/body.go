package campaign

import (
	"html"
	"net/url"
	"regexp"
	"slices"
	"strings"

	"github.com/consentry/consentry/internal/errs"
)

// Tags a campaign's subject and bodies may hold. Each is replaced per
// recipient as the message is sent; the links are the recipient's own.
const (
	TagFirstName      = "first_name"
	TagLastName       = "last_name"
	TagUnsubscribeURL = "unsubscribe_url"
	TagPreferencesURL = "preferences_url"
	TagViewURL        = "view_in_browser_url"
	// Only in templates: where the campaign's body goes, and the
	// operator's identity for the footer.
	TagContent       = "content"
	TagSenderName    = "sender_name"
	TagPostalAddress = "postal_address"
	// TagPrivacyContact is "Privacy contact: " and the operator's privacy
	// contact (name and address), or nothing when none is set.
	TagPrivacyContact = "privacy_contact"
	// TagWebsite is a link to the operator's own website, or nothing when
	// none is set.
	TagWebsite = "website"
)

// BodyTags are the tags a campaign's subject and bodies may hold.
var BodyTags = []string{TagFirstName, TagLastName, TagUnsubscribeURL, TagPreferencesURL, TagViewURL}

// TemplateTags are the tags a template may hold: the body tags, where the
// body goes and the operator's identity.
var TemplateTags = append([]string{TagContent, TagSenderName, TagPostalAddress, TagPrivacyContact, TagWebsite}, BodyTags...)

var tagRE = regexp.MustCompile(`\{\{\s*([^{}]*?)\s*\}\}`)

// part is a piece of a compiled body: literal text, a tag, or (in HTML) a
// link whose address is the operator's, which tracking may wrap.
type part struct {
	text string
	tag  string
	// inURL marks a tag written inside a link's address, such as
	// https://acme.example/offer?name={{first_name}}: its value is
	// percent-encoded there, so that a name with spaces, "&" or quotes
	// stays one value of the address.
	inURL bool
	link  int // index into compiled.links, or -1
}

// compiled is a subject or body split at its tags and links, so that each
// message is a concatenation rather than a template run.
type compiled struct {
	parts []part
	links []string // the original addresses, in order
}

// checkTags reports the first unknown tag in src, naming field, with its
// position, or nil. A tag is {{name}}, with optional spaces inside.
func checkTags(field, src string, allowed []string) error {
	for _, m := range tagRE.FindAllStringSubmatchIndex(src, -1) {
		name := src[m[2]:m[3]]
		if !slices.Contains(allowed, name) {
			e := errs.Invalid(field, "unknown tag {{%s}} at character %d; the tags are {{%s}}", name, m[0]+1, strings.Join(allowed, "}}, {{"))
			e.Code = "unknown_tag"
			return e
		}
	}
	if i := strings.Index(stripTags(src), "{{"); i >= 0 {
		e := errs.Invalid(field, "an unclosed tag: {{ without }}")
		e.Code = "unknown_tag"
		return e
	}
	return nil
}

func stripTags(src string) string { return tagRE.ReplaceAllString(src, "") }

// hrefRE finds the operator's links in an HTML body: http(s) addresses in
// href attributes. The tags' own links ({{unsubscribe_url}} and the like)
// are not wrapped: they are ours.
var hrefRE = regexp.MustCompile(`(?i)(<a\b[^>]*?\bhref\s*=\s*)("https?://[^"]*"|'https?://[^']*')`)

// textURLRE finds the addresses in a plain-text body.
var textURLRE = regexp.MustCompile(`(?i)https?://[^\s<>"]+`)

// compile splits src (already checked) at its tags, and for HTML at the
// operator's links too. A tag inside an address (an href, or an address
// in plain text) is marked inURL. An operator's link whose address holds
// a tag is personal: it is filled in for each recipient and not wrapped
// for tracking, though it keeps its number among the links, so that the
// numbers of the others do not depend on it.
func compile(src string, isHTML bool) compiled {
	var c compiled
	add := func(s string, inURL bool) {
		for len(s) > 0 {
			m := tagRE.FindStringSubmatchIndex(s)
			if m == nil {
				c.parts = append(c.parts, part{text: s, link: -1})
				return
			}
			if m[0] > 0 {
				c.parts = append(c.parts, part{text: s[:m[0]], link: -1})
			}
			c.parts = append(c.parts, part{tag: s[m[2]:m[3]], inURL: inURL, link: -1})
			s = s[m[1]:]
		}
	}
	if !isHTML {
		src = normalizeTags(src) // an address ends at a space
		for {
			m := textURLRE.FindStringIndex(src)
			if m == nil {
				add(src, false)
				return c
			}
			add(src[:m[0]], false)
			add(src[m[0]:m[1]], true)
			src = src[m[1]:]
		}
	}
	rest := src
	for {
		m := hrefRE.FindStringSubmatchIndex(rest)
		if m == nil {
			add(rest, false)
			return c
		}
		add(rest[:m[4]+1], false) // through the opening quote
		raw := rest[m[4]+1 : m[5]-1]
		if tagRE.MatchString(raw) {
			add(raw, true)
		} else {
			c.parts = append(c.parts, part{link: len(c.links)})
		}
		c.links = append(c.links, html.UnescapeString(raw))
		rest = rest[m[5]-1:]
	}
}

// values are what one recipient's tags and links become.
type values struct {
	tags map[string]string
	// link returns the address for the operator's link i: the original,
	// or a tracked redirect.
	link func(i int, original string) string
	// keep leaves a tag that tags has no value for as it is written,
	// for whoever fills it in later; without it, such a tag is empty.
	keep bool
}

// render writes c for one recipient. In HTML, tag values are escaped; a
// tag inside an address is percent-encoded first.
func (c *compiled) render(sb *strings.Builder, v values, isHTML bool) {
	for _, p := range c.parts {
		switch {
		case p.link >= 0:
			addr := c.links[p.link]
			if v.link != nil {
				addr = v.link(p.link, addr)
			}
			sb.WriteString(html.EscapeString(addr))
		case p.tag != "":
			val, ok := v.tags[p.tag]
			if !ok && v.keep {
				sb.WriteString("{{" + p.tag + "}}")
				continue
			}
			if p.inURL {
				val = inAddress(val)
			}
			if isHTML {
				val = html.EscapeString(val)
			}
			sb.WriteString(val)
		default:
			sb.WriteString(p.text)
		}
	}
}

// inAddress percent-encodes a tag's value for its place inside an address
// (a path or a query alike): every byte but letters, digits and "-._~".
// A tag never begins an address there (the address begins with http), so
// even one of our own links is a value inside another address, such as
// https://acme.example/leave?next={{unsubscribe_url}}.
func inAddress(v string) string { return strings.ReplaceAll(url.QueryEscape(v), "+", "%20") }

var (
	blockRE   = regexp.MustCompile(`(?is)<(script|style|head)\b.*?</(script|style|head)>`)
	paraRE    = regexp.MustCompile(`(?i)<(/p|/h[1-6]|/ul|/ol|/table|hr)\b[^>]*>`)
	breakRE   = regexp.MustCompile(`(?i)<(br|/div|/tr)\b[^>]*>`)
	itemRE    = regexp.MustCompile(`(?i)<li\b[^>]*>`)
	anchorRE  = regexp.MustCompile(`(?is)<a\b[^>]*?\bhref\s*=\s*("([^"]*)"|'([^']*)')[^>]*>(.*?)</a>`)
	anyTagRE  = regexp.MustCompile(`(?s)<[^>]*>`)
	spacesRE  = regexp.MustCompile(`[ \t]+`)
	blanksRE  = regexp.MustCompile(`\n[ \t]*\n[\s]*`)
	lineEndRE = regexp.MustCompile(`[ \t]*\n[ \t]*`)
)

// PlainText makes the plain-text part of an HTML body: paragraphs and
// line breaks kept, list items as dashes, each link written as its text
// followed by its address, tags kept as they are (they are filled in
// later, in both parts alike).
func PlainText(src string) string {
	s := blockRE.ReplaceAllString(src, "")
	s = anchorRE.ReplaceAllStringFunc(s, func(a string) string {
		m := anchorRE.FindStringSubmatch(a)
		addr := m[2] + m[3]
		text := strings.TrimSpace(anyTagRE.ReplaceAllString(m[4], ""))
		if text == "" || html.UnescapeString(text) == html.UnescapeString(addr) {
			return addr
		}
		return text + " (" + addr + ")"
	})
	s = itemRE.ReplaceAllString(s, "\n- ")
	s = paraRE.ReplaceAllString(s, "\n\n")
	s = breakRE.ReplaceAllString(s, "\n")
	s = anyTagRE.ReplaceAllString(s, "")
	s = html.UnescapeString(s)
	s = spacesRE.ReplaceAllString(s, " ")
	s = lineEndRE.ReplaceAllString(s, "\n")
	s = blanksRE.ReplaceAllString(s, "\n\n")
	return strings.TrimSpace(s) + "\n"
}
