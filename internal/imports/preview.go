package imports

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"hash/maphash"
	"io"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/consentry/consentry/internal/consent"
	"github.com/consentry/consentry/internal/errs"
	"github.com/consentry/consentry/internal/store"
	"github.com/consentry/consentry/internal/suppression"
	"github.com/consentry/consentry/internal/tabular"
)

// PreviewRow is one row as the import would store it, or why it cannot.
type PreviewRow struct {
	Row         int               `json:"row" doc:"the row's number in the file, the header being row 1"`
	Fields      map[string]string `json:"fields,omitempty" doc:"the fields the row sets, by field name; empty cells are left out"`
	OptInStatus string            `json:"opt_in_status,omitempty"`
	Consents    []PreviewConsent  `json:"consents,omitempty"`
	Lists       []string          `json:"lists,omitempty" doc:"the ids of the lists the row joins"`
	// Outcome is what the import would do with the row, decided as the
	// dry run decides, against the database as it stands now.
	Outcome string `json:"outcome,omitempty" enum:"created,updated,unchanged,skipped" doc:"what the import would do with the row as the contacts stand now, decided as a dry run decides: create a contact, update one (a field, a consent, the opt-in status or a list), leave it as it is, or skip the row (skip says why); absent for a row in error"`
	// Skip is why the row would be skipped; nil unless Outcome is
	// skipped.
	Skip *PreviewSkip `json:"skip,omitempty"`
	// KeptConsents counts the row's consents the import would not write
	// because the contact gave or withdrew that consent later than the
	// row says.
	KeptConsents int `json:"kept_consents,omitempty" doc:"how many of the row's consents would not be written because the contact's own is later"`
	// ConsentsBeforeErasure counts the row's consents the import would
	// leave out because they were collected on or before the erasure of
	// the address the row brings back.
	ConsentsBeforeErasure int         `json:"consents_before_erasure,omitempty" doc:"how many of the row's consents would not be written because they were collected on or before the erasure of the address, which comes back with a consent collected since"`
	Error                 *RowProblem `json:"error,omitempty"`
}

// PreviewConsent is a consent record a row would write.
type PreviewConsent struct {
	PurposeID   string    `json:"purpose_id"`
	State       string    `json:"state"`
	CollectedAt time.Time `json:"collected_at"`
}

// PreviewSkip is why the import would skip a row, as its report would say.
type PreviewSkip struct {
	Code   string `json:"code" doc:"erased_address, processing_stopped, duplicate or duplicate_in_file, as in the import's skipped_by"`
	Reason string `json:"reason"`
}

// RowProblem is why a row would fail.
type RowProblem struct {
	Field  string `json:"field,omitempty"`
	Reason string `json:"reason"`
}

// MaxPreview is the most rows a preview shows.
const MaxPreview = 100

// Preview reads the first n rows of the import's file (at most
// MaxPreview) as definition d would write them, writing nothing. A
// definition that does not hold together is refused as Start refuses it.
func (s *Service) Preview(ctx context.Context, id string, d Definition, n int) ([]PreviewRow, error) {
	imp, r, err := s.resolve(ctx, id, d)
	if err != nil {
		return nil, err
	}
	if imp.Status != StatusUploaded && imp.Status != StatusQueued {
		return nil, errs.Conflict("import_started", "status", "the file of an import that has run is no longer kept")
	}
	tr, err := s.open(ctx, id)
	if err != nil {
		return nil, err
	}
	defer tr.Close()
	n = min(max(n, 1), MaxPreview)
	out := []PreviewRow{}
	var planned []*readRow
	now := s.now()
	for len(out) < n {
		row, err := tr.Next()
		if err == io.EOF {
			break
		}
		var re *tabular.RowError
		if errors.As(err, &re) {
			out = append(out, PreviewRow{Row: re.Row, Error: &RowProblem{Reason: re.Reason}})
			if re.Fatal {
				break
			}
			continue
		}
		if err != nil {
			return nil, err
		}
		p, fail := r.plan(s, id, consent.Actor{Kind: consent.ActorSystem}, row.Number, row.Cells, now)
		if fail != nil {
			out = append(out, PreviewRow{Row: row.Number, Error: &RowProblem{Field: fail.field, Reason: fail.reason}})
			continue
		}
		out = append(out, p.preview())
		planned = append(planned, &readRow{number: row.Number, cells: row.Cells, plan: p})
	}
	if err := s.outcomes(ctx, id, r, planned, out); err != nil {
		return nil, err
	}
	return out, nil
}

// outcomes sets in out (a preview, holding a row for each of planned and
// rows in error) what the import would do with each planned row: the dry
// run's decisions (writer.rows), one row at a time in a transaction that
// writes nothing, so that a row meets an earlier row of the file with its
// address as the import would.
func (s *Service) outcomes(ctx context.Context, id string, r *resolved, planned []*readRow, out []PreviewRow) error {
	if len(planned) == 0 {
		return nil
	}
	w := &writer{s: s, imp: &Import{ID: id, DryRun: true}, r: r, seen: map[uint64]uint8{}, seed: maphash.MakeSeed()}
	var err error
	if w.armed, err = suppression.Armed(ctx, s.DB); err != nil {
		return err
	}
	byNumber := map[int]*PreviewRow{}
	for i := range out {
		if out[i].Error == nil {
			byNumber[out[i].Row] = &out[i]
		}
	}
	return s.DB.Write(ctx, func(tx *store.Tx) error {
		now := s.now()
		clear(w.seen) // the function may run again
		for _, row := range planned {
			t := tally{skippedBy: map[string]int64{}, keep: func(*readRow, string) []string { return nil }}
			if err := w.rows(tx, &t, []*readRow{row}, now); err != nil {
				return err
			}
			pr := byNumber[row.number]
			pr.KeptConsents, pr.ConsentsBeforeErasure = int(t.kept), int(t.beforeErasure)
			switch {
			case t.created > 0:
				pr.Outcome = "created"
			case t.updated > 0:
				pr.Outcome = "updated"
			case t.unchanged > 0:
				pr.Outcome = "unchanged"
			case t.skipped > 0:
				last := t.report[len(t.report)-1] // reportRow: import, row, outcome, code, field, reason, cells
				pr.Outcome, pr.Skip = OutcomeSkipped, &PreviewSkip{Code: last[3].(string), Reason: last[5].(string)}
			case t.failed > 0:
				last := t.report[len(t.report)-1]
				pr.Error = &RowProblem{Field: last[4].(string), Reason: last[5].(string)}
			}
		}
		return nil
	})
}

// preview is the row as PreviewRow shows it.
func (p *rowPlan) preview() PreviewRow {
	pr := PreviewRow{Row: p.number, Fields: p.incoming.Values(), OptInStatus: p.incoming.OptInStatus}
	for _, l := range p.lists {
		pr.Lists = append(pr.Lists, l.ID)
	}
	for _, c := range p.consents {
		pr.Consents = append(pr.Consents, PreviewConsent{PurposeID: c.purposeID, State: c.state, CollectedAt: c.collected})
	}
	return pr
}

// Mapping is a definition saved under a name for the next file of the
// same kind.
type Mapping struct {
	ID         string     `json:"id"`
	Name       string     `json:"name"`
	Definition Definition `json:"definition"`
	CreatedAt  time.Time  `json:"created_at"`
	UpdatedAt  time.Time  `json:"updated_at"`
}

// MappingInput is a mapping to save.
type MappingInput struct {
	Name       string     `json:"name"`
	Definition Definition `json:"definition"`
}

// SaveMapping keeps in under its name, replacing a mapping of that name
// (regardless of case). The definition is checked as an import's start
// checks it, but for the file: its source, purposes and lists must exist
// and its provenance be complete, while whether a file has the columns
// it names is checked when an import starts with it. An error names the
// field under "definition." and why.
func (s *Service) SaveMapping(ctx context.Context, in MappingInput) (*Mapping, error) {
	name := strings.TrimSpace(in.Name)
	if name == "" {
		return nil, errs.Required("name")
	}
	if err := errs.TrimLine("name", &name, 200); err != nil {
		return nil, err
	}
	if _, err := s.check(ctx, in.Definition, in.Definition.columnsNamed()); err != nil {
		return nil, errs.WithField(err, func(f string) string { return "definition." + f })
	}
	def, err := json.Marshal(in.Definition)
	if err != nil {
		return nil, err
	}
	now := store.Micros(s.now())
	id := uuid.Must(uuid.NewV7()).String()
	err = s.DB.Write(ctx, func(tx *store.Tx) error {
		_, err := tx.Exec(`INSERT INTO import_mappings (id, name, name_key, definition, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $5)
			ON CONFLICT (name_key) DO UPDATE SET name = excluded.name, definition = excluded.definition, updated_at = excluded.updated_at`,
			id, name, strings.ToLower(name), string(def), now)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("imports: save mapping: %w", err)
	}
	return s.mapping(ctx, `name_key = $1`, strings.ToLower(name))
}

// Mappings lists the saved mappings by name.
func (s *Service) Mappings(ctx context.Context) ([]*Mapping, error) {
	return store.QueryAll(ctx, s.DB.Read, scanMapping, mappingSelect+` ORDER BY name_key`)
}

// Mapping returns one saved mapping by id or name, or a not-found error.
func (s *Service) Mapping(ctx context.Context, idOrName string) (*Mapping, error) {
	return s.mapping(ctx, `id = $1 OR name_key = lower($1)`, idOrName)
}

// DeleteMapping deletes a saved mapping; an unknown one is not found.
func (s *Service) DeleteMapping(ctx context.Context, id string) error {
	return s.DB.Write(ctx, func(tx *store.Tx) error {
		res, err := tx.Exec(`DELETE FROM import_mappings WHERE id = $1`, id)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return errs.NotFound("import mapping", "")
		}
		return nil
	})
}

const mappingSelect = `SELECT id, name, definition, created_at, updated_at FROM import_mappings`

func (s *Service) mapping(ctx context.Context, where string, arg string) (*Mapping, error) {
	m, err := scanMapping(s.DB.Read.QueryRowContext(ctx, mappingSelect+` WHERE `+where, arg))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, errs.NotFound("import mapping", "")
	}
	return m, err
}

func scanMapping(row store.Scanner) (*Mapping, error) {
	var m Mapping
	var def string
	var created, updated int64
	if err := row.Scan(&m.ID, &m.Name, &def, &created, &updated); err != nil {
		return nil, err
	}
	m.CreatedAt, m.UpdatedAt = store.FromMicros(created), store.FromMicros(updated)
	return &m, json.Unmarshal([]byte(def), &m.Definition)
}
