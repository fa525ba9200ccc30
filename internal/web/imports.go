package web

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/consentry/consentry/internal/auth"
	"github.com/consentry/consentry/internal/consent"
	"github.com/consentry/consentry/internal/contact"
	"github.com/consentry/consentry/internal/contactstate"
	"github.com/consentry/consentry/internal/errs"
	"github.com/consentry/consentry/internal/httpx"
	"github.com/consentry/consentry/internal/imports"
	"github.com/consentry/consentry/internal/lists"
	"github.com/consentry/consentry/internal/repermission"
	"github.com/consentry/consentry/internal/tabular"
)

// Imports bring contacts in from a CSV or Excel file (docs/imports.md):
// those who may create contacts and record consents upload a file, map
// its columns, preview, dry-run and start it, and follow it to its
// report; undoing one removes contacts, so it needs the permission to
// delete them. The mapping form is one form: Preview reads it by GET (it
// writes nothing), Dry run and Start post it.
func (s *Server) importRoutes() {
	im := func(h handler) http.HandlerFunc { return s.need(auth.PermEditContacts, h) }
	s.mux.HandleFunc("GET /admin/imports", im(s.importsPage))
	s.post("/admin/imports", maxUploadForm, im(s.uploadImport))
	s.mux.HandleFunc("GET /admin/imports/{id}", im(s.importPage))
	s.mux.HandleFunc("GET /admin/imports/{id}/preview", im(s.previewImport))
	s.post("/admin/imports/{id}/start", longForm, im(s.startImport))
	s.post("/admin/imports/{id}/cancel", smallForm, im(s.cancelImport))
	s.post("/admin/imports/{id}/undo", smallForm, s.need(auth.PermDelete, s.undoImport))
	s.mux.HandleFunc("GET /admin/imports/{id}/progress", im(s.importProgress))
	s.mux.HandleFunc("GET /admin/imports/{id}/report.csv", im(s.importReport))
}

// importScript follows a running import's progress; importPolicy is the
// admin policy with what it needs: this site's script, and its fetches
// of the progress.
const importScript = "import-progress.js"

var importPolicy = adminPolicy.CSP + "; script-src 'self'; connect-src 'self'"

// importDone are the notices shown after an import's form succeeded and
// redirected, by the done= the redirect carries.
var importDone = map[string]string{"started": "Import started.", "dry_run": "Dry run started: it writes nothing.",
	"cancelled": "Cancel requested: the import stops after the rows it is writing.", "undoing": "Undo started: the contacts the import created that nobody has changed since are being removed."}

// importStatusLabels name the statuses of an import for the operator.
var importStatusLabels = map[string]string{imports.StatusUploaded: "uploaded, not started", imports.StatusQueued: "queued",
	imports.StatusRunning: "running", imports.StatusDone: "done", imports.StatusFailed: "failed", imports.StatusCancelled: "cancelled",
	imports.StatusUndone: "undone", imports.StatusUndoing: "undoing", imports.StatusDiscarded: "discarded: its file held an erased contact's address"}

func init() {
	funcs["importStatus"] = func(imp *imports.Import) string {
		l := importStatusLabels[imp.Status]
		if l == "" {
			l = imp.Status
		}
		if imp.DryRun && imp.Status == imports.StatusUploaded {
			return "dry run done, not started"
		}
		if imp.DryRun {
			return "dry run " + l
		}
		return l
	}
	funcs["reason"] = func(code string) string { return strings.ReplaceAll(code, "_", " ") }
	funcs["hasPrefix"] = strings.HasPrefix
	funcs["upTo"] = func(n int) []int {
		out := make([]int, n)
		for i := range out {
			out[i] = i + 1
		}
		return out
	}
}

// importFail shows err; an unknown import is the not-found page.
func (s *Server) importFail(w http.ResponseWriter, err error, u *auth.User) {
	if e := errs.As(err); e != nil && e.Kind == errs.KindNotFound {
		s.render(w, http.StatusNotFound, "message", page{Title: "Not found", User: u, Nav: "imports",
			Data: "There is no such import; it may have been removed 30 days after it ended."})
		return
	}
	s.fail(w, err, u)
}

// importList is the imports page.
type importList struct {
	Imports []*imports.Import
}

func (s *Server) importsPage(w http.ResponseWriter, r *http.Request, u *auth.User) {
	s.showImports(w, r, u, http.StatusOK, nil)
}

func (s *Server) showImports(w http.ResponseWriter, r *http.Request, u *auth.User, status int, fe map[string]string) {
	all, err := s.Imports.List(r.Context(), 200)
	if err != nil {
		s.importFail(w, err, u)
		return
	}
	s.render(w, status, "imports", page{Title: "Imports", User: u, Nav: "imports", Errors: fe, Data: importList{Imports: all}})
}

// maxUploadForm bounds the upload form: the largest file an import takes,
// and room for the form around it.
const maxUploadForm = imports.MaxFileBytes + 1<<20

// uploadImport keeps the file of the upload form as a new import, read
// from the request as it arrives (it is never held whole), and leads to
// the import's page; a file that cannot be read is shown next to the
// file input, and nothing is kept.
func (s *Server) uploadImport(w http.ResponseWriter, r *http.Request, u *auth.User) {
	// A large file takes longer to arrive than the server's ReadTimeout
	// and WriteTimeout, which keep ordinary requests short.
	httpx.LongBody(w, 30*time.Minute)
	imp, err := s.receiveUpload(r, u)
	if fe := fieldErrors(err); fe != nil {
		s.showImports(w, r, u, httpx.Status(err), fe)
		return
	}
	if e := httpx.TooLarge(err); e != nil {
		s.showImports(w, r, u, httpx.Status(e), map[string]string{"file": "is larger than " + errs.Size(imports.MaxFileBytes)})
		return
	}
	if err != nil {
		s.importFail(w, err, u)
		return
	}
	s.Log.InfoContext(r.Context(), "import uploaded", "import", imp.ID, "rows", imp.TotalRows, "by", u.ID)
	http.Redirect(w, r, "/admin/imports/"+url.PathEscape(imp.ID), http.StatusSeeOther)
}

// receiveUpload reads the upload form's part named file into a new import.
func (s *Server) receiveUpload(r *http.Request, u *auth.User) (*imports.Import, error) {
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt != "multipart/form-data" {
		return nil, errs.Required("file")
	}
	mr, err := r.MultipartReader()
	if err != nil {
		return nil, errs.Invalid("file", "the form could not be read")
	}
	for {
		part, err := mr.NextPart()
		if err == io.EOF {
			return nil, errs.Invalid("file", "choose a file to upload")
		}
		if err != nil {
			return nil, err
		}
		if part.FormName() != "file" {
			continue
		}
		if part.FileName() == "" {
			return nil, errs.Invalid("file", "choose a file to upload")
		}
		return s.Imports.Upload(r.Context(), part.FileName(), part, actor(u))
	}
}

// importView is an import's page.
type importView struct {
	Import *imports.Import
	// CanAsk: the import has ended, so its contacts can be asked for
	// their marketing consent again; Repermissions are the runs that
	// asked them.
	CanAsk        bool
	Repermissions []*repermission.Run
	// Live is true while the import, or its undo, runs: the page shows
	// its progress. Follow asks it to reload itself (without JavaScript).
	Live, Follow bool
	// Percent is how far the import has read.
	Percent int
	// Report is the first rows that failed or were skipped; Skipped the
	// skipped rows by reason.
	Report  []imports.ReportRow
	Skipped []reasonCount
	// Mapping: shown while the import can be started.
	Mapping bool
	Form    url.Values
	Columns []importColumn
	// Wide: the file has more than wideFile columns. Its form lists only
	// the columns mapped to a field (Shown), offers addRows rows to map
	// others by name, and names a column for the opt-in status, an
	// answer, a date or a list in a text input with the page's one list
	// of the columns, rather than offering every column in every select.
	Wide    bool
	Shown   []importColumn
	Fields  []fieldOption
	Sources []*consent.Source
	// Purposes and Lists are those the form offers.
	Purposes []*consent.Purpose
	Lists    []*lists.List
	Mappings []*imports.Mapping
	Bases    []string
	OptIns   []string
	// Preview is the first rows as the form's definition would write
	// them, after Preview was pressed.
	Preview   []imports.PreviewRow
	Previewed bool
	// PurposeNames and ListNames name the ids a preview shows.
	PurposeNames, ListNames map[string]string
	// CanUndo says the user may undo this import, and it can be undone.
	CanUndo bool
	// load is the saved mapping to fill the form with.
	load *imports.Mapping
	// header holds the file's column names.
	header map[string]bool
}

// wideFile is the most columns a file's mapping form lists one by one,
// each with a select of every field; a select naming a column lists every
// column. A wider file (up to tabular.MaxColumns) would make a page of
// tens of megabytes.
const wideFile = 200

// addRows is how many columns a wide file's form can map by name at a
// time; Preview lists them with the mapped columns and offers as many
// again.
const addRows = 3

// columnSuffix ends the name of the text input that names a column for
// a select of a wide file's form whose value is "col" (the column named
// below): optin_column, p-ID-answer_column, l-ID_column.
const columnSuffix = "_column"

// importColumn is a column of the file, with the name of its control.
type importColumn struct {
	Index   int
	Name    string
	Control string
}

type fieldOption struct{ Name, Label string }

type reasonCount struct {
	Reason string
	N      int64
}

// reportRows is how many of the rows that failed or were skipped the
// page lists; the CSV report has them all.
const reportRows = 100

// previewRows is how many rows a preview shows.
const previewRows = 20

func (s *Server) importPage(w http.ResponseWriter, r *http.Request, u *auth.User) {
	q := r.URL.Query()
	v := importView{Follow: q.Get("follow") == "1"}
	if id := q.Get("mapping"); id != "" {
		m, err := s.Imports.Mapping(r.Context(), id)
		if err != nil {
			s.showImport(w, r, u, http.StatusNotFound, "", map[string]string{"mapping": "there is no such saved mapping; it may have been deleted"}, v)
			return
		}
		v.load = m
	}
	s.showImport(w, r, u, http.StatusOK, importDone[q.Get("done")], nil, v)
}

// showImport shows the import of the request's path as its status says:
// its mapping form (with v.Form as typed, or as its last definition or
// suggested), its progress, or its report.
func (s *Server) showImport(w http.ResponseWriter, r *http.Request, u *auth.User, status int, flash string, fe map[string]string, v importView) {
	ctx := r.Context()
	imp, err := s.Imports.Get(ctx, r.PathValue("id"))
	if err != nil {
		s.importFail(w, err, u)
		return
	}
	v.Import = imp
	switch imp.Status {
	case imports.StatusQueued, imports.StatusRunning, imports.StatusUndoing:
		v.Live = true
	}
	if imp.TotalRows > 0 {
		v.Percent = int(imp.Position * 100 / imp.TotalRows)
	}
	if !v.Live && (imp.Status != imports.StatusUploaded || imp.DryRun) {
		if v.Report, err = s.Imports.ReportRows(ctx, imp.ID, 0, reportRows); err != nil {
			s.importFail(w, err, u)
			return
		}
		for reason, n := range imp.SkippedBy {
			v.Skipped = append(v.Skipped, reasonCount{reason, n})
		}
		sort.Slice(v.Skipped, func(i, j int) bool { return v.Skipped[i].Reason < v.Skipped[j].Reason })
	}
	v.CanUndo = u.Can(auth.PermDelete) && !imp.DryRun &&
		slices.Contains([]string{imports.StatusDone, imports.StatusCancelled, imports.StatusFailed}, imp.Status)
	v.CanAsk = !imp.DryRun && slices.Contains([]string{imports.StatusDone, imports.StatusCancelled, imports.StatusFailed}, imp.Status)
	if v.CanAsk && s.Repermission != nil {
		if v.Repermissions, err = s.Repermission.ForImport(ctx, imp.ID); err != nil {
			s.importFail(w, err, u)
			return
		}
	}
	// The mapping form's choices are built once: a preview or a refused
	// start built them when it read the form.
	if imp.Status == imports.StatusUploaded && !v.Mapping {
		if err := s.mappingChoices(ctx, &v); err != nil {
			s.importFail(w, err, u)
			return
		}
	}
	v.Mapping = imp.Status == imports.StatusUploaded
	p := page{Title: "Import: " + imp.FileName, User: u, Nav: "imports", Flash: flash, Errors: fe, Data: v}
	if v.Live {
		w.Header().Set("Content-Security-Policy", importPolicy)
		p.Script = importScript
		if v.Follow {
			p.Refresh = 5
		}
	}
	s.render(w, status, "import", p)
}

// mappingChoices fills in what the mapping form offers, and the form
// itself when v has none: the import's last definition (after a dry
// run), or the fields suggested from the file's header.
func (s *Server) mappingChoices(ctx context.Context, v *importView) error {
	imp := v.Import
	v.Mapping = true
	fields, err := s.Contacts.Fields(ctx)
	if err != nil {
		return err
	}
	for _, f := range contact.CoreFields {
		v.Fields = append(v.Fields, fieldOption{f.Name, f.Label})
	}
	for _, f := range fields {
		v.Fields = append(v.Fields, fieldOption{f.Name, f.Label})
	}
	v.header = make(map[string]bool, len(imp.Header))
	for i, h := range imp.Header {
		v.Columns = append(v.Columns, importColumn{Index: i, Name: h, Control: "col-" + strconv.Itoa(i)})
		v.header[h] = true
	}
	v.Wide = len(v.Columns) > wideFile
	sources, err := s.Consent.Sources(ctx)
	if err != nil {
		return err
	}
	for _, src := range sources {
		if src.Active {
			v.Sources = append(v.Sources, src)
		}
	}
	if v.Purposes, err = s.Consent.Purposes(ctx); err != nil {
		return err
	}
	if v.Lists, err = s.Lists.All(ctx); err != nil {
		return err
	}
	if v.Mappings, err = s.Imports.Mappings(ctx); err != nil {
		return err
	}
	v.Bases = consent.LegalBases
	v.OptIns = []string{contactstate.OptInNone, contactstate.SingleOptInUser, contactstate.OptOutUser}
	v.PurposeNames, v.ListNames = map[string]string{}, map[string]string{}
	for _, p := range v.Purposes {
		v.PurposeNames[p.ID] = p.Name
	}
	for _, l := range v.Lists {
		v.ListNames[l.ID] = l.Name
	}
	switch {
	case v.Form != nil:
	case v.load != nil:
		v.Form = formOf(v.load.Definition, v)
		v.Form.Set("mapping", v.load.ID)
		v.Form.Set("save_as", v.load.Name)
	case imp.Definition != nil:
		v.Form = formOf(*imp.Definition, v)
	default:
		suggested, err := s.Imports.Suggestions(ctx, imp.Header)
		if err != nil {
			return err
		}
		v.Form = suggestedForm(suggested, v)
	}
	v.shapeForm()
	return nil
}

// suggestedForm is the mapping form holding what the file's header
// suggests: each column's field, the purposes the file answers (ticked,
// with their answer's column) and their date columns, the lists its
// columns say who joins. The rest (the source, a legal basis, the notice)
// is the user's to give.
func suggestedForm(suggested []imports.Suggestion, v *importView) url.Values {
	f := url.Values{"duplicates": {contact.DuplicateSkip}}
	purposes, joins := map[string]string{}, map[string]string{}
	for _, p := range v.Purposes {
		purposes[p.Name] = "p-" + p.ID + "-"
	}
	for _, l := range v.Lists {
		joins[l.Name] = "l-" + l.ID
	}
	for i, c := range suggested {
		if c.Field != "" {
			f.Set("col-"+strconv.Itoa(i), c.Field)
		}
		if k, ok := purposes[c.Consent]; ok {
			f.Set(k+"use", "on")
			f.Set(k+"answer", "col:"+c.Column)
		}
		if k, ok := purposes[c.ConsentDate]; ok {
			f.Set(k+"date_column", c.Column)
		}
		if k, ok := joins[c.List]; ok {
			f.Set(k, "col:"+c.Column)
		}
	}
	return f
}

// shapeForm fits the form to the file's width: a column chosen for the
// opt-in status, an answer or a list is "col:NAME" in a narrow file's
// select, and "col" with NAME in the text input after it in a wide one's.
// A wide file's form lists the columns mapped to a field, and those the
// form's rows for another column named, which are then cleared; a row
// naming a column the file does not have is kept, for its error.
func (v *importView) shapeForm() {
	f := v.Form
	for _, name := range v.pickers() {
		col, ok := columnChoice(f, name)
		switch {
		case !ok:
			f.Del(name + columnSuffix)
		case v.Wide:
			f.Set(name, "col")
			f.Set(name+columnSuffix, col)
		default:
			f.Set(name, "col:"+col)
			f.Del(name + columnSuffix)
		}
	}
	if !v.Wide {
		v.Shown = v.Columns
		return
	}
	for n := 1; n <= addRows; n++ {
		col, field := addRow(f, n)
		if i := slices.Index(v.Import.Header, col); i >= 0 && field != "" {
			f.Set("col-"+strconv.Itoa(i), field)
			f.Del(addControl(n, "column"))
			f.Del(addControl(n, "field"))
		}
	}
	v.Shown = nil
	for _, c := range v.Columns {
		if f.Get(c.Control) != "" {
			v.Shown = append(v.Shown, c)
		}
	}
}

// pickers are the names of the form's selects that may name a column:
// the opt-in status, each purpose's answer and each list.
func (v *importView) pickers() []string {
	names := []string{"optin"}
	for _, p := range v.Purposes {
		names = append(names, "p-"+p.ID+"-answer")
	}
	for _, l := range v.Lists {
		names = append(names, "l-"+l.ID)
	}
	return names
}

// columnChoice is the column the select name of form f names, either way
// (shapeForm); false when it names none.
func columnChoice(f url.Values, name string) (string, bool) {
	if f.Get(name) == "col" {
		return strings.TrimSpace(f.Get(name + columnSuffix)), true
	}
	return strings.CutPrefix(f.Get(name), "col:")
}

// EncodingName names the text encoding a file was read in for people.
func (importView) EncodingName(encoding string) string { return tabular.EncodingName(encoding) }

// AddRows is how many rows for another column a wide file's form has.
func (importView) AddRows() int { return addRows }

// addControl is the name of a control of a wide file's form's row n for
// another column: its column or its field.
func addControl(n int, part string) string { return "add-" + strconv.Itoa(n) + "-" + part }

// addRow is the column and the field of row n for another column.
func addRow(f url.Values, n int) (column, field string) {
	return strings.TrimSpace(f.Get(addControl(n, "column"))), f.Get(addControl(n, "field"))
}

// unknownColumns are the errors of the columns a wide file's form names in
// its text inputs that the file does not have, by control; nil when there
// is none. The import would refuse them too, listing every column.
func unknownColumns(f url.Values, v *importView) map[string]string {
	if !v.Wide {
		return nil
	}
	var fe map[string]string
	miss := func(control, col string) {
		if col != "" && !v.header[col] {
			if fe == nil {
				fe = map[string]string{}
			}
			fe[control] = "the file has no column “" + col + "”; choose one of the list"
		}
	}
	for _, name := range v.pickers() {
		if strings.HasSuffix(name, "-answer") && !checkboxOn(f, strings.TrimSuffix(name, "answer")+"use") {
			continue
		}
		if col, ok := columnChoice(f, name); ok {
			miss(name+columnSuffix, col)
			if col == "" {
				if fe == nil {
					fe = map[string]string{}
				}
				fe[name+columnSuffix] = "is required: name the column, or choose another answer above"
			}
		}
	}
	for _, p := range v.Purposes {
		if !checkboxOn(f, "p-"+p.ID+"-use") {
			continue
		}
		miss("p-"+p.ID+"-date_column", strings.TrimSpace(f.Get("p-"+p.ID+"-date_column")))
	}
	for n := 1; n <= addRows; n++ {
		col, field := addRow(f, n)
		miss(addControl(n, "column"), col)
		if col != "" && field == "" {
			if fe == nil {
				fe = map[string]string{}
			}
			fe[addControl(n, "field")] = "is required: choose the field the column fills"
		}
	}
	return fe
}

// unofferedChoices are the errors of the mapping form's values that none
// of its controls offers, by control; nil when there is none. A form
// posted by hand (or by a page older than the file) could otherwise map a
// column the file does not have, or choose an opt-in status, a list's
// rows or a consent text in a way the definition has no word for, and
// the import would leave it out unsaid.
func unofferedChoices(f url.Values, v *importView) map[string]string {
	fe := map[string]string{}
	for k := range f {
		n, ok := strings.CutPrefix(k, "col-")
		if !ok {
			continue
		}
		if i, err := strconv.Atoi(n); err != nil || i < 0 || i >= len(v.Columns) || v.Columns[i].Control != k {
			fe["form"] = fmt.Sprintf("the form maps a column the file does not have (%s); the file has %d columns, listed below", k, len(v.Columns))
		}
	}
	choice := func(control string, prefixes ...string) {
		val := f.Get(control)
		if val == "" || val == "col" && v.Wide {
			return
		}
		for _, p := range prefixes {
			if rest, ok := strings.CutPrefix(val, p); ok && (p == "all" && rest == "" || p != "all") {
				return
			}
		}
		fe[control] = "is not one of the choices offered; choose one of the list"
	}
	choice("optin", "col:", "value:")
	for _, l := range v.Lists {
		choice("l-"+l.ID, "all", "col:")
	}
	for _, p := range v.Purposes {
		k := "p-" + p.ID + "-"
		if !checkboxOn(f, k+"use") {
			continue
		}
		choice(k+"answer", "col:", "state:")
		if tv := f.Get(k + "text_version"); tv != "" {
			if n, err := strconv.Atoi(tv); err != nil || n < 1 || n > p.TextVersion {
				versions := "version 1"
				if p.TextVersion > 1 {
					versions = fmt.Sprintf("one of versions 1 to %d", p.TextVersion)
				}
				fe[k+"text_version"] = "is not a version of the consent text of " + p.Name + ": choose " + versions + ", or none and describe the notice"
			}
		}
	}
	if len(fe) == 0 {
		return nil
	}
	return fe
}

// formOf is the mapping form holding d, against the file's header and
// the purposes, lists and sources of v.
func formOf(d imports.Definition, v *importView) url.Values {
	f := url.Values{"duplicates": {d.Duplicates}}
	if d.Duplicates == "" {
		f.Set("duplicates", contact.DuplicateSkip)
	}
	f.Set("source", d.Source)
	for _, src := range v.Sources {
		if src.ID == d.Source || strings.EqualFold(src.Name, d.Source) {
			f.Set("source", src.ID)
		}
	}
	// A saved mapping meets a file by its column names: for an import's
	// own page, the columns are its header's.
	for _, c := range d.Columns {
		f.Set("col:"+c.Column, c.Field)
	}
	if o := d.OptIn; o != nil {
		if o.Column != "" {
			f.Set("optin", "col:"+o.Column)
		} else if o.Value != "" {
			f.Set("optin", "value:"+o.Value)
		}
	}
	for _, c := range d.Consents {
		for _, p := range v.Purposes {
			if p.ID != c.Purpose && !strings.EqualFold(p.Name, c.Purpose) {
				continue
			}
			k := "p-" + p.ID + "-"
			f.Set(k+"use", "on")
			if c.Column != "" {
				f.Set(k+"answer", "col:"+c.Column)
			} else if c.State != "" {
				f.Set(k+"answer", "state:"+c.State)
			}
			f.Set(k+"legal_basis", c.LegalBasis)
			f.Set(k+"date_column", c.CollectedAtColumn)
			f.Set(k+"date", c.CollectedAt)
			if c.TextVersion > 0 {
				f.Set(k+"text_version", strconv.Itoa(c.TextVersion))
			}
			f.Set(k+"notice", c.Notice)
		}
	}
	for _, l := range d.Lists {
		for _, list := range v.Lists {
			if list.ID != l.List && !strings.EqualFold(list.Name, l.List) {
				continue
			}
			if l.Column != "" {
				f.Set("l-"+list.ID, "col:"+l.Column)
			} else {
				f.Set("l-"+list.ID, "all")
			}
		}
	}
	return byColumnIndex(f, v.Import.Header)
}

// byColumnIndex turns the form's col:NAME keys into the col-N keys of the
// header's columns; a column the header does not have is dropped.
func byColumnIndex(f url.Values, header []string) url.Values {
	for k, vs := range f {
		name, ok := strings.CutPrefix(k, "col:")
		if !ok {
			continue
		}
		delete(f, k)
		if i := slices.Index(header, name); i >= 0 {
			f["col-"+strconv.Itoa(i)] = vs
		}
	}
	return f
}

// definitionOf reads the mapping form into a definition, with the control
// of each part of it (consents[0] is the control block p-ID- of the
// purpose the form listed first, say), so that an error about a part is
// shown next to its control.
func definitionOf(f url.Values, v *importView) (imports.Definition, map[string]string) {
	d := imports.Definition{Source: f.Get("source"), Duplicates: f.Get("duplicates")}
	controls := map[string]string{}
	for _, c := range v.Columns {
		field := strings.TrimSpace(f.Get(c.Control))
		if field == "" {
			continue
		}
		controls["columns["+strconv.Itoa(len(d.Columns))+"]"] = c.Control
		d.Columns = append(d.Columns, imports.Column{Column: c.Name, Field: field})
	}
	if col, ok := columnChoice(f, "optin"); ok {
		d.OptIn = &imports.OptIn{Column: col}
	} else if val, ok := strings.CutPrefix(f.Get("optin"), "value:"); ok {
		d.OptIn = &imports.OptIn{Value: val}
	}
	for _, p := range v.Purposes {
		k := "p-" + p.ID + "-"
		if !checkboxOn(f, k+"use") {
			continue
		}
		c := imports.Consent{Purpose: p.ID, LegalBasis: f.Get(k + "legal_basis"), Notice: strings.TrimSpace(f.Get(k + "notice"))}
		if col, ok := columnChoice(f, k+"answer"); ok {
			c.Column = col
		} else {
			c.State = strings.TrimPrefix(f.Get(k+"answer"), "state:")
		}
		if col := strings.TrimSpace(f.Get(k + "date_column")); col != "" {
			c.CollectedAtColumn = col
		} else {
			c.CollectedAt = strings.TrimSpace(f.Get(k + "date"))
		}
		if n, err := strconv.Atoi(f.Get(k + "text_version")); err == nil {
			c.TextVersion = n
		}
		controls["consents["+strconv.Itoa(len(d.Consents))+"]"] = "p-" + p.ID
		d.Consents = append(d.Consents, c)
	}
	for _, l := range v.Lists {
		how := f.Get("l-" + l.ID)
		if how == "" {
			continue
		}
		controls["lists["+strconv.Itoa(len(d.Lists))+"]"] = "l-" + l.ID
		in := imports.List{List: l.ID}
		if col, ok := columnChoice(f, "l-"+l.ID); ok {
			in.Column = col
		}
		d.Lists = append(d.Lists, in)
	}
	// A purpose or list the form names that the page did not offer (a
	// list deleted since the page was loaded) is kept in the definition,
	// for the import to refuse rather than to leave it out unsaid.
	purposes, lists := unoffered(f, v)
	for _, id := range purposes {
		d.Consents = append(d.Consents, imports.Consent{Purpose: id})
	}
	for _, id := range lists {
		d.Lists = append(d.Lists, imports.List{List: id})
	}
	return d, controls
}

// unoffered are the ids of the purposes ticked, and the lists chosen, in
// the form f that v does not offer, in order.
func unoffered(f url.Values, v *importView) (purposes, lists []string) {
	offered := map[string]bool{}
	for _, p := range v.Purposes {
		offered["p-"+p.ID+"-use"] = true
	}
	for _, l := range v.Lists {
		offered["l-"+l.ID] = true
	}
	for k := range f {
		if offered[k] {
			continue
		}
		if id, ok := strings.CutSuffix(strings.TrimPrefix(k, "p-"), "-use"); ok && id != "" && strings.HasPrefix(k, "p-") && checkboxOn(f, k) {
			purposes = append(purposes, id)
		} else if id, ok := strings.CutPrefix(k, "l-"); ok && id != "" && !strings.HasSuffix(id, columnSuffix) && f.Get(k) != "" {
			lists = append(lists, id)
		}
	}
	slices.Sort(purposes)
	slices.Sort(lists)
	return purposes, lists
}

// consentControls are the controls of a purpose's block, by the part of
// the definition they set.
var consentControls = map[string]string{"column": "answer", "state": "answer", "purpose": "use", "legal_basis": "legal_basis",
	"collected_at_column": "date_column", "collected_at": "date", "text_version": "text_version", "notice": "notice"}

// controlOf is the form control an error about a definition's field is
// shown next to; "form" for one the form has no control of.
func controlOf(field string, controls map[string]string) string {
	switch {
	case field == "source" || field == "duplicates" || field == "columns":
		return field
	case strings.HasPrefix(field, "opt_in_status"):
		return "optin"
	}
	part, rest, _ := strings.Cut(field, ".")
	base, ok := controls[part]
	switch {
	case !ok:
		return "form"
	case strings.HasPrefix(part, "consents["):
		if c, ok := consentControls[rest]; ok {
			return base + "-" + c
		}
		return base + "-use"
	}
	return base
}

// missingRefs are the errors of a definition naming a source, purpose or
// list that does not exist, by code: the field they are about when the
// error does not name one, and what the form says of them. Such a
// definition is the form's to put right, not a missing page.
var missingRefs = map[string]struct{ field, message string }{
	"source_not_found":  {"source", "there is no such source; choose one of those listed"},
	"purpose_not_found": {"", "the form names a purpose that does not exist; the purposes are shown as they are now"},
	"list_not_found":    {"", "the form names a list that does not exist, or no longer does; the lists are shown as they are now"},
}

// definitionErrors shows a refused definition's error next to its control
// and returns the status to show it with. It returns nil for an error
// that is not the form's to put right (the import is gone, the database
// is down), for the caller to show as such.
func definitionErrors(err error, controls map[string]string) (map[string]string, int) {
	e := errs.As(err)
	if e == nil || e.Kind == errs.KindUnavailable {
		return nil, 0
	}
	status := httpx.Status(err)
	if e.Kind == errs.KindNotFound {
		ref, ok := missingRefs[e.Code]
		if !ok {
			return nil, 0
		}
		field := e.Field
		if field == "" {
			field = ref.field
		}
		return map[string]string{controlOf(field, controls): ref.message}, http.StatusUnprocessableEntity
	}
	out := map[string]string{}
	for field, msg := range fieldErrors(err) {
		out[controlOf(field, controls)] = msg
	}
	return out, status
}

// mappingForm reads the posted, or previewed, mapping form against the
// import of the request's path.
func (s *Server) mappingForm(w http.ResponseWriter, r *http.Request, u *auth.User, f url.Values) (*importView, imports.Definition, map[string]string, bool) {
	v := &importView{Form: f}
	imp, err := s.Imports.Get(r.Context(), r.PathValue("id"))
	if err == nil {
		v.Import = imp
		err = s.mappingChoices(r.Context(), v)
	}
	if err != nil {
		s.importFail(w, err, u)
		return nil, imports.Definition{}, nil, false
	}
	if fe := unknownColumns(f, v); fe != nil {
		s.showImport(w, r, u, http.StatusBadRequest, "", fe, *v)
		return nil, imports.Definition{}, nil, false
	}
	if fe := unofferedChoices(f, v); fe != nil {
		s.showImport(w, r, u, http.StatusBadRequest, "", fe, *v)
		return nil, imports.Definition{}, nil, false
	}
	d, controls := definitionOf(f, v)
	return v, d, controls, true
}

// previewImport shows the import's page with the first rows as the
// mapping form, as typed, would write them; it writes nothing.
func (s *Server) previewImport(w http.ResponseWriter, r *http.Request, u *auth.User) {
	f := r.URL.Query()
	v, d, controls, ok := s.mappingForm(w, r, u, f)
	if !ok {
		return
	}
	rows, err := s.Imports.Preview(r.Context(), v.Import.ID, d, previewRows)
	if fe, status := definitionErrors(err, controls); fe != nil {
		s.showImport(w, r, u, status, "", fe, *v)
		return
	}
	if err != nil {
		s.importFail(w, err, u)
		return
	}
	v.Preview, v.Previewed = rows, true
	s.showImport(w, r, u, http.StatusOK, "", nil, *v)
}

// startImport starts the import, or its dry run, with the mapping form,
// saving the mapping first when it is given a name; a definition that
// does not hold together is shown next to the control at fault, with
// the form as typed, and nothing is started or saved.
func (s *Server) startImport(w http.ResponseWriter, r *http.Request, u *auth.User) {
	if !s.parse(w, r, u) {
		return
	}
	f := r.PostForm
	v, d, controls, ok := s.mappingForm(w, r, u, f)
	if !ok {
		return
	}
	ctx, id := r.Context(), v.Import.ID
	var dryRun bool
	switch f.Get("action") {
	case "dry_run":
		dryRun = true
	case "start":
	default:
		s.showImport(w, r, u, http.StatusBadRequest, "", map[string]string{"form": "the form must say whether to start the import or run a dry run: press one of the buttons"}, *v)
		return
	}
	err := s.Imports.Check(ctx, id, d)
	if name := strings.TrimSpace(f.Get("save_as")); err == nil && name != "" {
		if _, serr := s.Imports.SaveMapping(ctx, imports.MappingInput{Name: name, Definition: d}); serr != nil {
			err = errs.WithField(serr, func(string) string { return "save_as" })
			controls["save_as"] = "save_as"
		}
	}
	if err == nil {
		_, err = s.Imports.Start(ctx, id, d, dryRun)
	}
	if fe, status := definitionErrors(err, controls); fe != nil {
		s.showImport(w, r, u, status, "", fe, *v)
		return
	}
	if err != nil {
		s.importFail(w, err, u)
		return
	}
	done := "started"
	if dryRun {
		done = "dry_run"
	}
	s.Log.InfoContext(r.Context(), "import started", "import", id, "dry_run", dryRun, "by", u.ID)
	http.Redirect(w, r, "/admin/imports/"+url.PathEscape(id)+"?done="+done, http.StatusSeeOther)
}

func (s *Server) cancelImport(w http.ResponseWriter, r *http.Request, u *auth.User) {
	id := r.PathValue("id")
	if _, err := s.Imports.Cancel(r.Context(), id); err != nil {
		s.importFail(w, err, u)
		return
	}
	s.Log.InfoContext(r.Context(), "import cancel requested", "import", id, "by", u.ID)
	http.Redirect(w, r, "/admin/imports/"+url.PathEscape(id)+"?done=cancelled", http.StatusSeeOther)
}

// undoImport queues the removal of the contacts the import created once
// the confirmation is ticked; without it the page says so and nothing
// changes.
func (s *Server) undoImport(w http.ResponseWriter, r *http.Request, u *auth.User) {
	if !s.parse(w, r, u) {
		return
	}
	if !checkboxOn(r.PostForm, "confirm") {
		s.showImport(w, r, u, http.StatusBadRequest, "", map[string]string{"confirm": "tick the box to confirm that the contacts the import created go"}, importView{})
		return
	}
	id := r.PathValue("id")
	if _, err := s.Imports.Undo(r.Context(), id, actor(u)); err != nil {
		s.importFail(w, err, u)
		return
	}
	s.Log.InfoContext(r.Context(), "import undo started", "import", id, "by", u.ID)
	http.Redirect(w, r, "/admin/imports/"+url.PathEscape(id)+"?done=undoing", http.StatusSeeOther)
}

// importProgress is what the import page's script polls while the import
// runs.
type importProgress struct {
	Status    string `json:"status"`
	Position  int64  `json:"position"`
	Total     int64  `json:"total"`
	Created   int64  `json:"created"`
	Updated   int64  `json:"updated"`
	Unchanged int64  `json:"unchanged"`
	Skipped   int64  `json:"skipped"`
	Failed    int64  `json:"failed"`
	Removed   int64  `json:"removed"`
}

func (s *Server) importProgress(w http.ResponseWriter, r *http.Request, u *auth.User) {
	imp, err := s.Imports.Get(r.Context(), r.PathValue("id"))
	if errs.Is(err, errs.KindNotFound) {
		http.Error(w, `{"error":"not found"}`, http.StatusNotFound)
		return
	}
	if err != nil {
		s.importFail(w, err, u)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(importProgress{Status: imp.Status, Position: imp.Position, Total: imp.TotalRows, Created: imp.Created,
		Updated: imp.Updated, Unchanged: imp.Unchanged, Skipped: imp.Skipped, Failed: imp.Failed, Removed: imp.Removed})
}

func (s *Server) importReport(w http.ResponseWriter, r *http.Request, u *auth.User) {
	imp, err := s.Imports.Get(r.Context(), r.PathValue("id"))
	if err != nil {
		s.importFail(w, err, u)
		return
	}
	httpx.Attachment(w, "text/csv; charset=utf-8", "import-report-"+imp.ID+".csv")
	if err := s.Imports.WriteReport(r.Context(), imp.ID, httpx.KeptWriting(w, time.Minute)); err != nil {
		s.Log.WarnContext(r.Context(), "import report download not completed", "import", imp.ID, "err", err)
	}
}
