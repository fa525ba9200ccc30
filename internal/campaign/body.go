package campaign

import (
	"html"
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
	link int // index into compiled.links, or -1
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

// compile splits src (already checked) at its tags, and for HTML at the
// operator's links too.
func compile(src string, isHTML bool) compiled {
	var c compiled
	add := func(s string) {
		for len(s) > 0 {
			m := tagRE.FindStringSubmatchIndex(s)
			if m == nil {
				c.parts = append(c.parts, part{text: s, link: -1})
				return
			}
			if m[0] > 0 {
				c.parts = append(c.parts, part{text: s[:m[0]], link: -1})
			}
			c.parts = append(c.parts, part{tag: s[m[2]:m[3]], link: -1})
			s = s[m[1]:]
		}
	}
	if !isHTML {
		add(src)
		return c
	}
	rest := src
	for {
		m := hrefRE.FindStringSubmatchIndex(rest)
		if m == nil {
			add(rest)
			return c
		}
		add(rest[:m[4]+1]) // through the opening quote
		raw := rest[m[4]+1 : m[5]-1]
		c.parts = append(c.parts, part{link: len(c.links)})
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
}

// render writes c for one recipient. In HTML, tag values are escaped.
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
			if isHTML {
				sb.WriteString(html.EscapeString(v.tags[p.tag]))
			} else {
				sb.WriteString(v.tags[p.tag])
			}
		default:
			sb.WriteString(p.text)
		}
	}
}

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
