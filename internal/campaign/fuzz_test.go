package campaign

import (
	"html"
	"strings"
	"testing"
)

// FuzzTags: whatever an operator writes, checking its tags never panics;
// a body that passes renders every tag (nothing of the form {{...}} is left
// of an accepted tag), writes a contact's name escaped in HTML (and
// percent-encoded first inside an address), and keeps the operator's
// links.
func FuzzTags(f *testing.F) {
	for _, s := range []string{
		"Hello {{first_name}}", "{{ last_name }} {{unsubscribe_url}}", "{{nope}}", "{{", "}}{{first_name",
		`<a href="https://acme.example/a?b=1&amp;c=2">x</a> {{view_in_browser_url}}`, "{{{first_name}}}", "<p>{{preferences_url}}</p>",
		`<a href="https://acme.example/o?n={{ first_name }}">o</a> https://acme.example/t/{{last_name}}`, `<a href='{{unsubscribe_url}}'>x</a>`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, src string) {
		if err := checkTags("html", src, BodyTags); err != nil {
			return
		}
		name := `<b>"Ann" & co</b>`
		v := values{tags: map[string]string{TagFirstName: name, TagLastName: name, TagUnsubscribeURL: "U", TagPreferencesURL: "P", TagViewURL: "V"}}
		for _, isHTML := range []bool{false, true} {
			c := compile(src, isHTML)
			var sb strings.Builder
			c.render(&sb, v, isHTML)
			out := sb.String()
			for _, tag := range BodyTags {
				if strings.Contains(out, "{{"+tag+"}}") && !strings.Contains(src, "{{{{"+tag) {
					t.Fatalf("%q left {{%s}} in %q", src, tag, out)
				}
			}
			if isHTML && strings.Contains(out, name) && !strings.Contains(src, name) {
				t.Fatalf("%q wrote a name unescaped: %q", src, out)
			}
			if isHTML && strings.Contains(src, "{{first_name}}") && !strings.Contains(out, html.EscapeString(name)) &&
				!strings.Contains(out, html.EscapeString(inAddress(name))) {
				t.Fatalf("%q lost the name: %q", src, out)
			}
			for _, l := range c.links {
				if !strings.HasPrefix(strings.ToLower(l), "http") {
					t.Fatalf("%q: link %q", src, l)
				}
			}
		}
	})
}

// TestPlainText: the plain-text part keeps paragraphs, lists and links.
func TestPlainText(t *testing.T) {
	got := PlainText(`<html><head><style>p{}</style></head><body><h1>Spring</h1><p>Hi {{first_name}},</p>
		<ul><li>One</li><li>Two &amp; three</li></ul><p>See <a href="https://acme.example/s">our offer</a>.</p></body></html>`)
	want := "Spring\n\nHi {{first_name}},\n\n- One\n- Two & three\n\nSee our offer (https://acme.example/s).\n"
	if got != want {
		t.Fatalf("got\n%q\nwant\n%q", got, want)
	}
}
