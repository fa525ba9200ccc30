package api

import (
	"net/http"
	"strconv"

	"github.com/consentry/consentry/internal/auth"
	"github.com/consentry/consentry/internal/consent"
	"github.com/consentry/consentry/internal/export"
	"github.com/consentry/consentry/internal/httpx"
)

func (s *Server) exportRoutes() []Route {
	return []Route{
		{Method: "GET", Path: "/api/v1/contacts/{id}/export", Tag: "contacts", Status: 200, Response: export.Export{},
			Files: []string{export.CSV.ContentType(), export.XLSX.ContentType()},
			Query: []Param{{"format", "json (the default), csv (a zip with one CSV file per section) or xlsx (an Excel workbook with one sheet per section)", "string"}},
			Summary: "Export everything held about the contact, for an access request (GDPR Art. 15 and 20; docs/export.md), as a file: " +
				"sensitive values are masked unless the token has the reveal scope, and then each value is written to the access log, as is the export itself",
			handle: s.exportContact},
	}
}

func (s *Server) exportContact(r *http.Request, caller consent.Actor) (int, any, error) {
	f, err := export.ParseFormat(r.URL.Query().Get("format"))
	if err != nil {
		return 0, nil, err
	}
	e, err := s.Export.Build(r.Context(), r.PathValue("id"), export.Viewer{Actor: caller, Clear: hasScope(r, auth.ScopeReveal), IP: s.ip(r)})
	if err != nil {
		return 0, nil, inPath(err)
	}
	return 200, exportFile{e, f}, nil
}

// exportFile is an export sent as a file to save.
type exportFile struct {
	e *export.Export
	f export.Format
}

func (x exportFile) writeFile(w http.ResponseWriter, status int) error {
	httpx.Attachment(w, x.f.ContentType(), x.e.FileName(x.f))
	w.Header().Set("X-Export-Schema", export.SchemaVersion)
	w.Header().Set("X-Export-Masked", strconv.FormatBool(x.e.Masked))
	w.WriteHeader(status)
	return x.e.Write(w, x.f)
}
