package web

import (
	"bytes"
	"html/template"
	"io/fs"
	"net/http"
	"path"
	"strings"

	"github.com/yuin/goldmark"
	"github.com/yuin/goldmark/extension"
	"github.com/yuin/goldmark/parser"

	"github.com/consentry/consentry/docs"
	"github.com/consentry/consentry/internal/auth"
)

// guide is one user guide rendered for the admin UI.
type guide struct {
	Title string
	Body  template.HTML
}

// loadGuides renders every embedded guide once, at start-up: they are the
// program's own text, so goldmark's default of leaving out raw HTML is
// all the escaping they need. A guide's links to another guide
// (retention.md) reach it at /admin/docs/retention.md.
func loadGuides() (map[string]*guide, error) {
	md := goldmark.New(goldmark.WithExtensions(extension.GFM), goldmark.WithParserOptions(parser.WithAutoHeadingID()))
	names, err := fs.Glob(docs.Guides, "*.md")
	if err != nil {
		return nil, err
	}
	out := map[string]*guide{}
	for _, n := range names {
		src, err := fs.ReadFile(docs.Guides, n)
		if err != nil {
			return nil, err
		}
		// The first line is the title, which the page shows as its
		// heading.
		title, body, _ := strings.Cut(string(src), "\n")
		var buf bytes.Buffer
		if err := md.Convert([]byte(body), &buf); err != nil {
			return nil, err
		}
		name := strings.TrimSuffix(path.Base(n), ".md")
		out[name] = &guide{Title: strings.TrimSpace(strings.TrimPrefix(title, "# ")), Body: template.HTML(buf.String())}
	}
	return out, nil
}

func (s *Server) guideRoutes() {
	s.mux.HandleFunc("GET /admin/docs/{name}", s.need(auth.PermViewContacts, s.guidePage))
}

// guidePage shows a guide by its name, with or without ".md".
func (s *Server) guidePage(w http.ResponseWriter, r *http.Request, u *auth.User) {
	g, ok := s.guides[strings.TrimSuffix(r.PathValue("name"), ".md")]
	if !ok {
		s.render(w, http.StatusNotFound, "message", page{Title: "No such guide", User: u,
			Data: "There is no guide by that name; the condition language is at /admin/docs/conditions."})
		return
	}
	s.render(w, http.StatusOK, "guide", page{Title: g.Title, User: u, Data: g})
}
