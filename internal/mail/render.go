package mail

import (
	"bytes"
	"embed"
	htmltemplate "html/template"
	"strings"
	texttemplate "text/template"

	"github.com/consentry/consentry/internal/i18n"
)

//go:embed templates
var templateFS embed.FS

var funcs = map[string]any{"t": i18n.T}

var textTemplates = texttemplate.Must(texttemplate.New("").Funcs(funcs).ParseFS(templateFS, "templates/*.txt"))

// Render fills the email template name (templates/name.txt, and name.html
// inside the shared layout) with data, which must have a Lang field used by
// the t function for the catalog. It returns the text and HTML bodies.
func Render(name string, data any) (text, html string, err error) {
	var tb bytes.Buffer
	if err := textTemplates.ExecuteTemplate(&tb, name+".txt", data); err != nil {
		return "", "", err
	}
	// Each HTML template defines "body" anew, so each is parsed with its
	// own copy of the layout.
	h, err := htmltemplate.New("layout.html").Funcs(funcs).ParseFS(templateFS, "templates/layout.html", "templates/"+name+".html")
	if err != nil {
		return "", "", err
	}
	var hb bytes.Buffer
	if err := h.ExecuteTemplate(&hb, "layout.html", data); err != nil {
		return "", "", err
	}
	return strings.TrimSpace(tb.String()) + "\n", hb.String(), nil
}
