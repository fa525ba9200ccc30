package api

import (
	"net/http"
	"strconv"
	"time"

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
		{Method: "GET", Path: "/api/v1/contacts/export", Tag: "contacts", Status: 200,
			Files: []string{"text/csv", export.XLSX.ContentType()},
			Query: []Param{{"format", "csv (the default) or xlsx (an Excel workbook with one sheet, at most 1,048,575 contacts)", "string"},
				{"filter", "a condition selecting the contacts, as for GET /api/v1/contacts (docs/conditions.md); empty exports every contact", "string"},
				{"columns", "the columns, in order, separated by commas: core fields (email, first_name, last_name, kind, opt_in_status, deliverability, " +
					"phone, country, region, language, stage, owner, id, created_at, updated_at), custom fields by name, and consent.<purpose name or id> " +
					"for the current consent state; default: the columns the contact list shows", "string"}},
			Summary: "Export the contact list, or the contacts a condition selects, as a CSV file or an Excel workbook, one row per contact " +
				"(docs/export.md): sensitive values are masked, whatever the token's scopes; cells that a spreadsheet would run as a formula " +
				"get an apostrophe in front; the rows are written as they are read. The export is written to the access log (field \"(contact list)\")",
			handle: s.exportContactList},
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

func (s *Server) exportContactList(r *http.Request, caller consent.Actor) (int, any, error) {
	q := r.URL.Query()
	x, err := s.Export.PrepareList(r.Context(), export.ListRequest{Format: q.Get("format"), Filter: q.Get("filter"),
		Columns: export.SplitColumns(q["columns"]), Asker: s.asker(r, caller)})
	if err != nil {
		return 0, nil, err
	}
	return 200, listFile{x, r}, nil
}

// listFile is the contact list's export, streamed as it is read.
type listFile struct {
	x *export.ListExport
	r *http.Request
}

// writeFile sends the headers with the first byte, not before: an Excel
// export is written to w only once every row is in the workbook.
func (f listFile) writeFile(w http.ResponseWriter, _ int) error {
	httpx.Attachment(w, f.x.ContentType(), f.x.FileName())
	keep := httpx.KeepWriting(w, time.Minute)
	keep()
	return f.x.Write(f.r.Context(), w, keep)
}
