package export

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/consentry/consentry/internal/cells"
	"github.com/consentry/consentry/internal/contact"
	"github.com/consentry/consentry/internal/errs"
	"github.com/consentry/consentry/internal/store"
)

// The contact list's export: the contacts a condition selects, as the
// contact list shows them, one row each, in the columns the operator
// chose, as CSV or as an Excel sheet (docs/export.md, "Exporting the
// contact list"). Sensitive values are masked as the list shows them and
// never decrypted, whoever asks. Rows are read a page at a time and
// written as they are read, so a million contacts are never in memory.

// ListAccessField is the field the access-log entry of a contact list
// export names. The entry names no one contact; its reason says what was
// exported: the format, how many contacts, the columns and the condition.
const ListAccessField = "(contact list)"

// MaxXLSXRows is how many contacts an Excel sheet holds below its header
// row (Excel's limit is 1,048,576 rows).
const MaxXLSXRows = 1_048_575

// maxListColumns bounds the columns one export may ask for: every core
// field, and room for many custom fields and purposes.
const maxListColumns = 300

// listPageSize is how many contacts are read at a time.
const listPageSize = 1000

// ListFormats are the formats of the contact list's export.
var ListFormats = []string{string(CSV), string(XLSX)}

// ParseListFormat reads the format of a contact list export; empty is
// CSV. Anything else is an invalid-input error on "format".
func ParseListFormat(s string) (Format, error) {
	if s == "" {
		return CSV, nil
	}
	if !slices.Contains(ListFormats, s) {
		return "", errs.Invalid("format", "must be csv or xlsx")
	}
	return Format(s), nil
}

// ListCSVType is the media type of the contact list as CSV.
const ListCSVType = "text/csv; charset=utf-8"

// Column is a column the contact list's export can hold.
type Column struct {
	// Key names the column in a request (columns=) and in the file's
	// header row: a core field's name, a custom field's name, or
	// consent. followed by a purpose's name.
	Key string
	// Label is the column in words, for the admin's column chooser.
	Label string
	// Group is what the column holds: "core", "field" (a custom field)
	// or "consent" (the current consent state for a purpose).
	Group string
	// Default columns are exported when none are chosen: those the
	// contact list shows.
	Default bool
	// Masked is set for a sensitive field: its values are masked.
	Masked bool
	// value is the cell of contact c, whose current consent states by
	// purpose id are states.
	value func(c *contact.Contact, states map[string]string) string
}

// coreColumns are the core fields as columns, in the order the chooser
// offers them: what the list shows first.
var coreColumns = []Column{
	{Key: "email", Default: true},
	{Key: "first_name", Default: true},
	{Key: "last_name", Default: true},
	{Key: "kind", Label: "Kind (lead or contact)", Default: true,
		value: func(c *contact.Contact, _ map[string]string) string { return c.Kind }},
	{Key: "opt_in_status", Label: "Opt-in status", Default: true,
		value: func(c *contact.Contact, _ map[string]string) string { return c.OptInStatus }},
	{Key: "deliverability", Label: "Deliverability",
		value: func(c *contact.Contact, _ map[string]string) string { return c.Deliverability }},
	{Key: "phone"}, {Key: "country"}, {Key: "region"}, {Key: "language"}, {Key: "stage"}, {Key: "owner"},
	{Key: "id", Label: "Id",
		value: func(c *contact.Contact, _ map[string]string) string { return c.ID }},
	{Key: "created_at", Label: "Created",
		value: func(c *contact.Contact, _ map[string]string) string { return timeText(c.CreatedAt) }},
	{Key: "updated_at", Label: "Last changed",
		value: func(c *contact.Contact, _ map[string]string) string { return timeText(c.UpdatedAt) }},
}

func init() {
	for i := range coreColumns {
		col := &coreColumns[i]
		col.Group = "core"
		if col.value != nil {
			continue
		}
		f, ok := contact.LookupCoreField(col.Key)
		if !ok {
			panic("export: no core field " + col.Key)
		}
		col.Label, col.value = f.Label, func(c *contact.Contact, _ map[string]string) string { return f.Value(c) }
	}
}

// consentPrefix starts the key of a consent column.
const consentPrefix = "consent."

// ListColumns returns every column the contact list's export can hold,
// in the order they are offered: the core fields, the custom fields by
// name, and the current consent state for each purpose.
func (s *Service) ListColumns(ctx context.Context) ([]Column, error) {
	cols, _, err := s.listColumns(ctx)
	return cols, err
}

// listColumns is ListColumns, with the purposes' names by their lower-case
// name and id, for a consent column named either way.
func (s *Service) listColumns(ctx context.Context) ([]Column, map[string]string, error) {
	defs, err := s.Contacts.Fields(ctx)
	if err != nil {
		return nil, nil, err
	}
	purposes, err := s.Contacts.Consent.Purposes(ctx)
	if err != nil {
		return nil, nil, err
	}
	out := slices.Clone(coreColumns)
	for _, d := range defs {
		name := d.Name
		out = append(out, Column{Key: name, Label: d.Label, Group: "field", Masked: d.Sensitive,
			value: func(c *contact.Contact, _ map[string]string) string { return fieldText(c.Fields[name]) }})
	}
	names := map[string]string{}
	for _, p := range purposes {
		id := p.ID
		names[strings.ToLower(p.Name)], names[strings.ToLower(p.ID)] = p.Name, p.Name
		out = append(out, Column{Key: consentPrefix + p.Name, Label: "Consent: " + p.Name, Group: "consent", Default: true,
			value: func(_ *contact.Contact, states map[string]string) string {
				if st := states[id]; st != "" {
					return st
				}
				return "none"
			}})
	}
	return out, names, nil
}

// chooseColumns returns the columns keys name, in their order; no keys
// is the default columns. A consent column may name its purpose by name,
// in any case, or by id. An unknown, repeated or empty key is an
// invalid-input error on "columns".
func chooseColumns(all []Column, purposeIDs map[string]string, keys []string) ([]Column, error) {
	if len(keys) == 0 {
		var out []Column
		for _, c := range all {
			if c.Default {
				out = append(out, c)
			}
		}
		return out, nil
	}
	if len(keys) > maxListColumns {
		return nil, errs.Invalid("columns", "names %d columns; at most %d can be exported at once", len(keys), maxListColumns)
	}
	out := make([]Column, 0, len(keys))
	for i, k := range keys {
		k = strings.TrimSpace(k)
		if k == "" {
			return nil, errs.Invalid("columns", "column %d is empty; name the columns separated by commas", i+1)
		}
		if p, ok := strings.CutPrefix(k, consentPrefix); ok {
			if name, ok := purposeIDs[strings.ToLower(p)]; ok {
				k = consentPrefix + name
			}
		}
		j := slices.IndexFunc(all, func(c Column) bool { return c.Key == k })
		if j < 0 {
			if len(k) > 100 {
				k = k[:100] + "…"
			}
			return nil, errs.Invalid("columns", "%q is not a column; the columns are the core fields (%s), the custom fields by name, "+
				"and consent.<purpose> for each purpose", k, strings.Join(coreKeys(), ", "))
		}
		if slices.ContainsFunc(out, func(c Column) bool { return c.Key == k }) {
			return nil, errs.Invalid("columns", "names %q twice", k)
		}
		out = append(out, all[j])
	}
	return out, nil
}

func coreKeys() []string {
	out := make([]string, len(coreColumns))
	for i, c := range coreColumns {
		out[i] = c.Key
	}
	return out
}

// SplitColumns reads the columns of a request: each value a key or keys
// separated by commas (columns=email,first_name, or columns given once per
// key, as a form's checkboxes send them). An empty value names nothing
// (columns= is the default columns); an empty key between commas is
// kept, for PrepareList to refuse.
func SplitColumns(values []string) []string {
	var out []string
	for _, v := range values {
		if v != "" {
			out = append(out, strings.Split(v, ",")...)
		}
	}
	return out
}

// ListRequest asks for an export of the contact list.
type ListRequest struct {
	// Format is csv or xlsx; empty is csv.
	Format string
	// Filter is a condition (docs/conditions.md); empty exports every
	// contact.
	Filter string
	// Columns are the keys of the columns to export, in order
	// (ListColumns); none exports the default columns.
	Columns []string
	// Asker is who exports, for the access log. Asker.MayReveal lets the
	// condition compare sensitive values (through their blind index);
	// the export shows them masked all the same.
	Asker contact.Asker
}

// ListExport is an export of the contact list, checked, counted and
// logged, ready to be written.
type ListExport struct {
	Format      Format
	Columns     []Column
	GeneratedAt time.Time
	// Contacts is how many contacts the condition selected when the
	// export was logged; those created or deleted while it is written
	// may change how many rows it has.
	Contacts int64

	sel *contact.Selection
	svc *Service
	// withStates is set when a column shows consent states, which are
	// then read for each page.
	withStates bool
}

// PrepareList checks r, counts the contacts it selects and writes the
// access-log entry of the export, with those of any sensitive value the
// condition compares, in one transaction; the export can then be
// written. A bad format, column or condition is an invalid-input error
// naming "format", "columns" or "filter", and so is an Excel export of
// more contacts than a sheet holds; nothing is written then.
func (s *Service) PrepareList(ctx context.Context, r ListRequest) (*ListExport, error) {
	f, err := ParseListFormat(r.Format)
	if err != nil {
		return nil, err
	}
	all, names, err := s.listColumns(ctx)
	if err != nil {
		return nil, err
	}
	cols, err := chooseColumns(all, names, r.Columns)
	if err != nil {
		return nil, err
	}
	sel, err := s.Contacts.Select(ctx, r.Filter, r.Asker)
	if err != nil {
		return nil, err
	}
	n, err := sel.Count(ctx)
	if err != nil {
		return nil, err
	}
	if f == XLSX && n > MaxXLSXRows {
		return nil, errs.Invalid("format", "an Excel sheet holds at most %d contacts and the condition selects %d; export as csv, or narrow the condition",
			MaxXLSXRows, n)
	}
	x := &ListExport{Format: f, Columns: cols, GeneratedAt: s.now(), Contacts: n, sel: sel, svc: s,
		withStates: slices.ContainsFunc(cols, func(c Column) bool { return c.Group == "consent" })}
	entry := contact.AccessEntry{At: x.GeneratedAt, Actor: r.Asker.Actor, Field: ListAccessField, IP: r.Asker.IP, Reason: x.describe(r.Filter)}
	err = s.DB.Write(ctx, func(tx *store.Tx) error {
		if err := sel.LogLookupsTx(tx, x.GeneratedAt); err != nil {
			return err
		}
		return contact.LogAccessTx(tx, entry)
	})
	if err != nil {
		return nil, fmt.Errorf("export: log the contact list export: %w", err)
	}
	return x, nil
}

// describe says what the export holds, for its access-log entry: the
// format, how many contacts, the columns and the condition, on one line.
func (x *ListExport) describe(filter string) string {
	keys := make([]string, len(x.Columns))
	for i, c := range x.Columns {
		keys[i] = c.Key
	}
	cond := strings.Join(strings.Fields(filter), " ")
	if cond == "" {
		cond = "none (every contact)"
	}
	many := "contacts"
	if x.Contacts == 1 {
		many = "contact"
	}
	return fmt.Sprintf("%d %s as %s; columns: %s; condition: %s", x.Contacts, many, x.Format, strings.Join(keys, ", "), cond)
}

// ContentType is the media type of the file.
func (x *ListExport) ContentType() string {
	if x.Format == XLSX {
		return XLSX.ContentType()
	}
	return ListCSVType
}

// FileName is the name to offer the file under:
// consentry-contacts-YYYYMMDD-hhmmss.csv or .xlsx, in UTC.
func (x *ListExport) FileName() string {
	return "consentry-contacts-" + x.GeneratedAt.UTC().Format("20060102-150405") + "." + string(x.Format)
}

// Header is the file's header row: the columns' keys.
func (x *ListExport) Header() []string {
	out := make([]string, len(x.Columns))
	for i, c := range x.Columns {
		out[i] = c.Key
	}
	return out
}

var errStopped = errors.New("export: the writer stopped")

// Write reads the contacts a page at a time and writes them to w as they
// come: CSV right away; Excel into excelize's stream writer (a temporary
// file), and the workbook to w once every row is in it. Every cell is
// defused (cells.Defuse), in Excel too: an operator may edit the sheet and
// save it as CSV. progress, when set, is called after each page, for the
// caller to keep a connection open while a long export goes on. It
// returns w's error or the one reading the contacts ended with; a CSV
// export that fails midway has written part of the file by then, and the
// caller must not let it pass for whole.
func (x *ListExport) Write(ctx context.Context, w io.Writer, progress func()) error {
	var readErr error
	rows := func(yield func([]string) bool) {
		row := make([]string, len(x.Columns)) // the writers are done with a row when yield returns
		after := ""                           // the last id of the page before
		readErr = x.sel.Pages(ctx, listPageSize, func(cs []*contact.Contact) error {
			states, err := x.states(ctx, after, cs)
			if err != nil {
				return err
			}
			after = cs[len(cs)-1].ID
			for _, c := range cs {
				for i, col := range x.Columns {
					row[i] = cells.Defuse(col.value(c, states[c.ID]))
				}
				if !yield(row) {
					return errStopped
				}
			}
			if progress != nil {
				progress()
			}
			return nil
		})
		if errors.Is(readErr, errStopped) {
			readErr = nil // the writer stopped on its own error, which it returns
		}
	}
	t := table{name: "contacts", header: x.Header(), rows: rows, err: func() error { return readErr }}
	if x.Format == XLSX {
		return writeWorkbook(w, []table{t})
	}
	return writeCSVTable(w, t)
}

// states returns the current consent states of a page of contacts, the
// first after the id after, by contact and purpose id, when a column
// shows them; nil otherwise.
func (x *ListExport) states(ctx context.Context, after string, cs []*contact.Contact) (map[string]map[string]string, error) {
	if !x.withStates {
		return nil, nil
	}
	return x.svc.Contacts.Consent.StatesBetween(ctx, after, cs[len(cs)-1].ID)
}
