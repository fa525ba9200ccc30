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

var funcs = map[string]any{"t": i18n.T}

var textTemplates = texttemplate.Must(texttemplate.New("").Funcs(funcs).ParseFS(templateFS, "templates/*.txt"))

// htmlTemplates holds each HTML template parsed once with its own copy of
// the layout (each defines "body" anew).
var htmlTemplates = map[string]*htmltemplate.Template{}

func init() {
	names, _ := fs.Glob(templateFS, "templates/*.html")
	for _, n := range names {
		name := strings.TrimSuffix(path.Base(n), ".html")
		if name == "layout" {
			continue
		}
		htmlTemplates[name] = htmltemplate.Must(htmltemplate.New("layout.html").Funcs(funcs).ParseFS(templateFS, "templates/layout.html", n))
	}
}

// Render fills the email template name (templates/name.txt, and name.html
// inside the shared layout) with data, which must have a Lang field used by
// the t function for the catalog. It returns the text and HTML bodies.
func Render(name string, data any) (text, html string, err error) {
	var tb bytes.Buffer
	if err := textTemplates.ExecuteTemplate(&tb, name+".txt", data); err != nil {
		return "", "", err
	}
	h, ok := htmlTemplates[name]
	if !ok {
		return "", "", fmt.Errorf("mail: no template %q", name)
	}
	var hb bytes.Buffer
	if err := h.ExecuteTemplate(&hb, "layout.html", data); err != nil {
		return "", "", err
	}
	return strings.TrimSpace(tb.String()) + "\n", hb.String(), nil
}
