package api

import (
	"context"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/consentry/consentry/internal/auth"
	"github.com/consentry/consentry/internal/consent"
	"github.com/consentry/consentry/internal/errs"
	"github.com/consentry/consentry/internal/httpx"
	"github.com/consentry/consentry/internal/imports"
)

// importRoutes serve imports of contacts from CSV and Excel files
// (docs/imports.md).
func (s *Server) importRoutes() []Route {
	const p, tag = "/api/v1/imports", "imports"
	id := p + "/{id}"
	return []Route{
		{Method: "POST", Path: p, Tag: tag, Status: 201, RawBody: "application/octet-stream", Response: imports.Import{}, LongBody: true,
			Query: []Param{{"name", "the file's name, for the list of imports", "string"}},
			Summary: "Upload a CSV (; , or tab; UTF-8, UTF-16 with BOM or Windows-1252) or Excel file of contacts, as the body, or as the part " +
				"named file of a multipart/form-data body, at most 1 GiB. It is read through at once: a file that cannot be read is refused with " +
				"the reason and row, and nothing is kept. A multipart body may carry a part named definition (the import's definition as JSON) " +
				"to start it at once, and a part named dry_run (true) to make that a dry run",
			handle: s.uploadImport},
		{Method: "GET", Path: p, Tag: tag, Status: 200, Response: []imports.Import{},
			Query:   []Param{{"limit", "1 to 200 (default 50)", "integer"}},
			Summary: "List the imports, newest first", handle: s.listImports},
		{Method: "GET", Path: id, Tag: tag, Status: 200, Response: imports.Import{},
			Summary: "Get an import: its file, definition, status and counts; position against total_rows is its progress", handle: s.getImport},
		{Method: "GET", Path: id + "/suggestion", Tag: tag, Status: 200, Response: []imports.Suggestion{},
			Summary: "What each of the file's columns holds, suggested from its header (English, Swedish and Dutch): a core or custom field, " +
				"a purpose's answer or collection date, or a list; only where the header says it unambiguously",
			handle: s.suggestImport},
		{Method: "POST", Path: id + "/preview", Tag: tag, Status: 200, Request: imports.Definition{}, Response: []imports.PreviewRow{},
			Query:   []Param{{"rows", "how many rows, 1 to 100 (default 20)", "integer"}},
			Summary: "The first rows as the definition would write them, or why each would fail; writes nothing", handle: s.previewImport},
		{Method: "POST", Path: id + "/dry-run", Tag: tag, Status: 202, Request: imports.Definition{}, Response: imports.Import{},
			Summary: "Check the definition and read every row as the import would, as a job, writing no contact: the counts and the report " +
				"say what the import would do and which rows would fail", handle: s.dryRunImport},
		{Method: "POST", Path: id + "/start", Tag: tag, Status: 202, Request: imports.Definition{}, Response: imports.Import{},
			Summary: "Check the definition (the source, and for each purpose the legal basis, when and how consent was collected, are " +
				"required) and run the import as a job", handle: s.startImport},
		{Method: "POST", Path: id + "/cancel", Tag: tag, Status: 200, Response: imports.Import{},
			Summary: "Stop a queued or running import between chunks; what it wrote stays (undo removes it)", handle: s.cancelImport},
		{Method: "POST", Path: id + "/undo", Tag: tag, Scope: auth.ScopeErasure, Status: 202, Response: imports.Import{},
			Summary: "Remove, as a job, the contacts the import created that nobody has changed since; each removal is recorded in the ledger. " +
				"It deletes contacts, so it needs the erasure scope",
			handle: s.undoImport},
		{Method: "GET", Path: id + "/rows", Tag: tag, Status: 200, Response: []imports.ReportRow{},
			Query:   []Param{{"after", "a row number: the rows after it", "integer"}, {"limit", "1 to 1000 (default 100)", "integer"}},
			Summary: "The rows that failed or were skipped, in file order, with the reason", handle: s.importRows},
		{Method: "GET", Path: id + "/report", Tag: tag, Status: 200, Files: []string{"text/csv"},
			Summary: "The rows that failed or were skipped as a CSV file: row number, outcome, code, field, reason, then the row's own cells",
			handle:  s.importReport},
		{Method: "GET", Path: "/api/v1/import-mappings", Tag: tag, Status: 200, Response: []imports.Mapping{},
			Summary: "List the saved import definitions", handle: s.listMappings},
		{Method: "POST", Path: "/api/v1/import-mappings", Tag: tag, Status: 200, Request: imports.MappingInput{}, Response: imports.Mapping{},
			Summary: "Save an import definition under a name, replacing one of that name", handle: s.saveMapping},
		{Method: "DELETE", Path: "/api/v1/import-mappings/{id}", Tag: tag, Status: 204,
			Summary: "Delete a saved import definition", handle: s.deleteMapping},
	}
}

func (s *Server) uploadImport(r *http.Request, caller consent.Actor) (int, any, error) {
	ctx := r.Context()
	name := r.URL.Query().Get("name")
	mt, params, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if mt != "multipart/form-data" {
		imp, err := s.Imports.Upload(ctx, name, r.Body, caller)
		return 201, imp, err
	}
	mr, err := r.MultipartReader()
	if err != nil || params["boundary"] == "" {
		return 0, nil, errs.Invalid("Content-Type", "a multipart body needs its boundary")
	}
	imp, err := s.uploadParts(ctx, mr, name, caller)
	return 201, imp, err
}

// uploadParts reads a multipart upload's parts: the file, and the
// definition and dry_run that start it at once. A request refused after
// its file was kept, for a later part or a definition that does not hold,
// keeps nothing: the upload is discarded.
func (s *Server) uploadParts(ctx context.Context, mr *multipart.Reader, name string, caller consent.Actor) (imp *imports.Import, err error) {
	defer func() { // imp is the upload kept so far
		if err != nil && imp != nil {
			s.Imports.Discard(ctx, imp.ID)
			imp = nil
		}
	}()
	var def *imports.Definition
	dryRun := false
	for {
		part, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			return imp, errs.Invalid("body", "is not a readable multipart body")
		}
		switch part.FormName() {
		case "file":
			if imp != nil {
				return imp, errs.Invalid("file", "is given twice")
			}
			if name == "" {
				name = part.FileName()
			}
			if imp, err = s.Imports.Upload(ctx, name, part, caller); err != nil {
				return imp, err
			}
		case "definition":
			data, err := io.ReadAll(io.LimitReader(part, maxBody+1))
			if err != nil || len(data) > maxBody {
				return imp, errs.Invalid("definition", "must be at most %d bytes", maxBody)
			}
			d, err := imports.ParseDefinition(data)
			if err != nil {
				return imp, err
			}
			def = &d
		case "dry_run":
			data, _ := io.ReadAll(io.LimitReader(part, 16))
			if dryRun, err = strconv.ParseBool(strings.TrimSpace(string(data))); err != nil {
				return imp, errs.Invalid("dry_run", "must be true or false")
			}
		default:
			return imp, errs.Invalid(part.FormName(), "is not a part an upload takes (file, definition, dry_run)")
		}
	}
	if imp == nil {
		return nil, errs.Required("file")
	}
	if def == nil {
		return imp, nil
	}
	started, err := s.Imports.Start(ctx, imp.ID, *def, dryRun)
	if err != nil {
		return imp, err
	}
	return started, nil
}

func (s *Server) listImports(r *http.Request, _ consent.Actor) (int, any, error) {
	limit, err := queryLimitUpTo(r.URL.Query(), 50, 200)
	if err != nil {
		return 0, nil, err
	}
	list, err := s.Imports.List(r.Context(), limit)
	return 200, list, err
}

func (s *Server) getImport(r *http.Request, _ consent.Actor) (int, any, error) {
	imp, err := s.Imports.Get(r.Context(), r.PathValue("id"))
	return pathResult(200, imp, err)
}

func (s *Server) suggestImport(r *http.Request, _ consent.Actor) (int, any, error) {
	imp, err := s.Imports.Get(r.Context(), r.PathValue("id"))
	if err != nil {
		return 0, nil, inPath(err)
	}
	out, err := s.Imports.Suggestions(r.Context(), imp.Header)
	return 200, out, err
}

// readImportDefinition reads a definition body, refusing unknown keys.
func readImportDefinition(r *http.Request) (imports.Definition, error) {
	var d imports.Definition
	return d, decode(r, &d)
}

func (s *Server) previewImport(r *http.Request, _ consent.Actor) (int, any, error) {
	d, err := readImportDefinition(r)
	if err != nil {
		return 0, nil, err
	}
	n := 20
	if v := r.URL.Query().Get("rows"); v != "" {
		if n, err = strconv.Atoi(v); err != nil || n < 1 || n > imports.MaxPreview {
			return 0, nil, errs.Invalid("rows", "must be 1 to %d", imports.MaxPreview)
		}
	}
	rows, err := s.Imports.Preview(r.Context(), r.PathValue("id"), d, n)
	return 200, rows, err // an unknown import is a 404; a source, purpose or list the definition names, a 422 on its field
}

func (s *Server) dryRunImport(r *http.Request, _ consent.Actor) (int, any, error) {
	return s.startWith(r, true)
}

func (s *Server) startImport(r *http.Request, _ consent.Actor) (int, any, error) {
	return s.startWith(r, false)
}

func (s *Server) startWith(r *http.Request, dryRun bool) (int, any, error) {
	d, err := readImportDefinition(r)
	if err != nil {
		return 0, nil, err
	}
	imp, err := s.Imports.Start(r.Context(), r.PathValue("id"), d, dryRun)
	return 202, imp, err // as previewImport
}

func (s *Server) cancelImport(r *http.Request, _ consent.Actor) (int, any, error) {
	imp, err := s.Imports.Cancel(r.Context(), r.PathValue("id"))
	return pathResult(200, imp, err)
}

func (s *Server) undoImport(r *http.Request, caller consent.Actor) (int, any, error) {
	imp, err := s.Imports.Undo(r.Context(), r.PathValue("id"), caller)
	return pathResult(202, imp, err)
}

func (s *Server) importRows(r *http.Request, _ consent.Actor) (int, any, error) {
	q := r.URL.Query()
	var after int64
	if v := q.Get("after"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			return 0, nil, errs.Invalid("after", "must be a row number, 0 or more")
		}
		after = n
	}
	limit, err := queryLimitUpTo(q, 100, 1000)
	if err != nil {
		return 0, nil, err
	}
	if _, err := s.Imports.Get(r.Context(), r.PathValue("id")); err != nil {
		return 0, nil, inPath(err)
	}
	rows, err := s.Imports.ReportRows(r.Context(), r.PathValue("id"), after, limit)
	return 200, rows, err
}

func (s *Server) importReport(r *http.Request, _ consent.Actor) (int, any, error) {
	imp, err := s.Imports.Get(r.Context(), r.PathValue("id"))
	if err != nil {
		return 0, nil, inPath(err)
	}
	return 200, importReport{s: s.Imports, r: r, imp: imp}, nil
}

// importReport is an import's report sent as a CSV file.
type importReport struct {
	s   *imports.Service
	r   *http.Request
	imp *imports.Import
}

func (x importReport) writeFile(w http.ResponseWriter, status int) error {
	httpx.Attachment(w, "text/csv; charset=utf-8", "import-report-"+x.imp.ID+".csv")
	w.WriteHeader(status)
	return x.s.WriteReport(x.r.Context(), x.imp.ID, httpx.KeptWriting(w, time.Minute))
}

func (s *Server) listMappings(r *http.Request, _ consent.Actor) (int, any, error) {
	list, err := s.Imports.Mappings(r.Context())
	return 200, list, err
}

func (s *Server) saveMapping(r *http.Request, _ consent.Actor) (int, any, error) {
	var in imports.MappingInput
	if err := decode(r, &in); err != nil {
		return 0, nil, err
	}
	m, err := s.Imports.SaveMapping(r.Context(), in)
	return 200, m, err
}

func (s *Server) deleteMapping(r *http.Request, _ consent.Actor) (int, any, error) {
	return pathResult(204, any(nil), s.Imports.DeleteMapping(r.Context(), r.PathValue("id")))
}
