package consent

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/consentry/consentry/internal/audit"
	"github.com/consentry/consentry/internal/errs"
	"github.com/consentry/consentry/internal/store"
)

// Source is how data or consent arrived (web form, meeting, import, ...).
// Consent records keep the source's name as it was when they were written,
// so renaming a source never rewrites history.
type Source struct {
	ID        string    `json:"id"`
	Name      string    `json:"name"`
	Active    bool      `json:"active" doc:"inactive sources stay on old records but cannot be used for new ones"`
	CreatedAt time.Time `json:"created_at"`
}

// SourceInput creates or changes a source; nil fields are left as they are.
type SourceInput struct {
	Name   *string `json:"name" required:"create"`
	Active *bool   `json:"active"`
}

func (in *SourceInput) validate(create bool) error {
	if in.Name == nil && create {
		return errs.Required("name")
	}
	return errs.TrimLine("name", in.Name, 100)
}

// auditedSource is what the audit log keeps of a source.
type auditedSource struct {
	Name   string `json:"name"`
	Active bool   `json:"active"`
}

// auditTx writes the audit log's entries of a change of src by by, from
// before (nil for a creation) to src as it now is: deactivating and
// reactivating are actions of their own, apart from a new name.
func (src *Source) auditTx(tx *store.Tx, by audit.Actor, before *auditedSource, now time.Time) error {
	obj := audit.Object{Kind: audit.KindSource, ID: src.ID, Name: src.Name}
	after := auditedSource{Name: src.Name, Active: src.Active}
	if before == nil {
		return audit.RecordTx(tx, by, obj, audit.ActionSourceCreated, audit.Changes(nil, after), now)
	}
	for _, c := range audit.Changes(*before, after) {
		action := audit.ActionSourceChanged
		if c.Name == "active" {
			action = audit.ActionSourceDeactivated
			if src.Active {
				action = audit.ActionSourceReactivated
			}
		}
		if err := audit.RecordTx(tx, by, obj, action, []audit.Change{c}, now); err != nil {
			return err
		}
	}
	return nil
}

// CreateSource adds a source, active unless the input says otherwise,
// made by by, who the audit log names.
func (s *Service) CreateSource(ctx context.Context, by audit.Actor, in SourceInput) (*Source, error) {
	if err := in.validate(true); err != nil {
		return nil, err
	}
	src := &Source{ID: uuid.Must(uuid.NewV7()).String(), Name: *in.Name, Active: true, CreatedAt: s.now()}
	if in.Active != nil {
		src.Active = *in.Active
	}
	err := s.DB.Write(ctx, func(tx *store.Tx) error {
		_, err := tx.Exec(`INSERT INTO sources (id, name, name_key, active, created_at) VALUES ($1, $2, $3, $4, $5)`,
			src.ID, src.Name, strings.ToLower(src.Name), src.Active, store.Micros(src.CreatedAt))
		if store.IsUniqueViolation(err) {
			return errs.Conflict("source_name_taken", "name", "a source named %q already exists", src.Name)
		}
		if err != nil {
			return fmt.Errorf("consent: create source: %w", err)
		}
		return src.auditTx(tx, by, nil, src.CreatedAt)
	})
	if err != nil {
		return nil, err
	}
	return src, nil
}

// Built-in sources that flows record by id, so that renaming them changes
// nothing there. They can be renamed, not deactivated.
const (
	// SourceDoubleOptInEmail: every double opt-in confirmation.
	SourceDoubleOptInEmail = "01930000-0000-7000-8001-00000000000a"
	// SourcePreferencesPage: changes confirmed from the preferences page.
	SourcePreferencesPage = "01930000-0000-7000-8001-000000000009"
	// SourceEmail: what the contact did through a link in an email, such
	// as unsubscribing.
	SourceEmail = "01930000-0000-7000-8001-000000000004"
	// SourceAPI: what an API client recorded or relayed.
	SourceAPI = "01930000-0000-7000-8001-000000000008"
)

// UpdateSource renames, deactivates or reactivates a source, by by, who
// the audit log names for each field that changed. It returns a
// not-found error (field "source") when there is no such source.
func (s *Service) UpdateSource(ctx context.Context, by audit.Actor, id string, in SourceInput) (*Source, error) {
	if err := in.validate(false); err != nil {
		return nil, err
	}
	var out *Source
	err := s.DB.Write(ctx, func(tx *store.Tx) error {
		src, err := scanSource(tx.QueryRow(sourceSelect+" WHERE id = $1", id))
		if err != nil {
			return err
		}
		before := auditedSource{Name: src.Name, Active: src.Active}
		if in.Name != nil {
			src.Name = *in.Name
		}
		if in.Active != nil {
			src.Active = *in.Active
		}
		if (src.ID == SourceDoubleOptInEmail || src.ID == SourcePreferencesPage || src.ID == SourceEmail) && !src.Active {
			return errs.Refused("source_in_use", "active", "this source is recorded by the contact's own actions (confirmations, the preferences page, unsubscribing); rename it if you like, but it stays active")
		}
		_, err = tx.Exec(`UPDATE sources SET name = $2, name_key = $3, active = $4 WHERE id = $1`,
			src.ID, src.Name, strings.ToLower(src.Name), src.Active)
		if store.IsUniqueViolation(err) {
			return errs.Conflict("source_name_taken", "name", "a source named %q already exists", src.Name)
		}
		if err != nil {
			return fmt.Errorf("consent: update source: %w", err)
		}
		out = src
		return src.auditTx(tx, by, &before, s.now())
	})
	return out, err
}

const sourceSelect = `SELECT id, name, active, created_at FROM sources`

// scanSource returns a not-found error (field "source") when the row is missing.
func scanSource(row store.Scanner) (*Source, error) {
	var src Source
	var at int64
	err := row.Scan(&src.ID, &src.Name, &src.Active, &at)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, errs.NotFound("source", "source")
	}
	if err != nil {
		return nil, fmt.Errorf("consent: read source: %w", err)
	}
	src.CreatedAt = store.FromMicros(at)
	return &src, nil
}

// Sources lists every source by name.
func (s *Service) Sources(ctx context.Context) ([]*Source, error) {
	out, err := store.QueryAll(ctx, s.DB.Read, scanSource, sourceSelect+" ORDER BY name_key")
	if err != nil {
		return nil, fmt.Errorf("consent: list sources: %w", err)
	}
	return out, nil
}

// ActiveSource finds an active source by id or by name regardless of case.
// It returns a not-found error (field "source") when there is none, and a
// refused error when the source exists but was deactivated.
func (s *Service) ActiveSource(ctx context.Context, idOrName string) (*Source, error) {
	src, err := scanSource(s.DB.ReadRow(ctx, sourceSelect+" WHERE id = $1 OR name_key = $2 ORDER BY id = $1 DESC LIMIT 1",
		idOrName, strings.ToLower(strings.TrimSpace(idOrName))))
	if err != nil {
		return nil, err
	}
	if !src.Active {
		return nil, errs.Refused("source_inactive", "source", "source %q is no longer active", src.Name)
	}
	return src, nil
}
