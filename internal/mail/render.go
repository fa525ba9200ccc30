package mail

import (
	"bytes"
	"embed"
	"fmt"
	htmltemplate "html/template"
	"io/fs"
	"path"
	"strings"
	texttemplate "text/template"

	"github.com/consentry/consentry/internal/i18n"
)

//go:embed templates
var templateFS embed.FS

// Templates are the email templates, parsed once.
type Templates struct {
	text *texttemplate.Template
	// html holds each HTML template parsed with its own copy of the
	// layout (each defines "body" anew).
	html map[string]*htmltemplate.Template
}

// NewTemplates parses every email template: templates/NAME.txt, and
// NAME.html inside the shared layout. A broken template is an error at
// start-up, not when the first such email is written.
func NewTemplates() (*Templates, error) {
	funcs := map[string]any{"t": i18n.T}
	text, err := texttemplate.New("").Funcs(funcs).ParseFS(templateFS, "templates/*.txt")
	if err != nil {
		return nil, fmt.Errorf("mail: text templates: %w", err)
	}
	t := &Templates{text: text, html: map[string]*htmltemplate.Template{}}
	names, err := fs.Glob(templateFS, "templates/*.html")
	if err != nil {
		return nil, err
	}
	for _, n := range names {
		name := strings.TrimSuffix(path.Base(n), ".html")
		if name == "layout" {
			continue
		}
		if t.html[name], err = htmltemplate.New("layout.html").Funcs(funcs).ParseFS(templateFS, "templates/layout.html", n); err != nil {
			return nil, fmt.Errorf("mail: template %s: %w", n, err)
		}
	}
	return t, nil
}

// Render fills the email template name with data, which must have a Lang
// field used by the t function for the catalog. It returns the text and
// HTML bodies, or an error naming a template that does not exist.
func (t *Templates) Render(name string, data any) (text, html string, err error) {
	var tb bytes.Buffer
	if err := t.text.ExecuteTemplate(&tb, name+".txt", data); err != nil {
		return "", "", err
	}
	h, ok := t.html[name]
	if !ok {
		return "", "", fmt.Errorf("mail: no template %q", name)
	}
	var hb bytes.Buffer
	if err := h.ExecuteTemplate(&hb, "layout.html", data); err != nil {
		return "", "", err
	}
	return strings.TrimSpace(tb.String()) + "\n", hb.String(), nil
}
