package campaign

import "strings"

// CheckTags reports the first tag in src that is not one of allowed, or
// an unclosed tag, as an invalid-input error naming field with the tag's
// position; nil when every tag is allowed. Other email written with tags
// (workflow rules) is checked with it, so that a tag means the same
// everywhere.
func CheckTags(field, src string, allowed []string) error { return checkTags(field, src, allowed) }

// FillTags returns src (HTML when isHTML, else plain text) with its tags
// replaced by the values in tags, as a campaign fills them in for each
// recipient: in HTML a value is escaped, and a tag inside a link's
// address (an href, or an address in plain text) is percent-encoded
// first, so that a value holding "&", "?", "#", spaces or any other
// character stays one value of that address. A tag that tags has no
// value for is left as written ({{name}}), for whoever fills it in later
// (the unsubscribe link, which the outbox fills in as the email is sent).
// Other email written with tags (workflow rules) is filled in with it, so
// that a tag means the same everywhere.
func FillTags(src string, isHTML bool, tags map[string]string) string {
	c := compile(src, isHTML)
	var sb strings.Builder
	c.render(&sb, values{tags: tags, keep: true}, isHTML)
	return sb.String()
}
