package campaign

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

// Template is a layout, with header and footer, around campaigns' bodies.
type Template struct {
	ID        string    `json:"id"`
	Name      string    `json:"name"`
	HTML      string    `json:"html" doc:"HTML with {{content}} where the campaign's body goes, and optionally {{sender_name}}, {{postal_address}}, {{privacy_contact}} and the body tags"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

// TemplateInput creates or changes a template; nil fields stay.
type TemplateInput struct {
	Name *string `json:"name" required:"create"`
	HTML *string `json:"html" required:"create"`
}

// DefaultLayout is the layout of a campaign without a template: the body,
// then a footer that names the sender, gives their postal address and
// website, their privacy contact and the links to unsubscribe and to the preferences page.
const DefaultLayout = `<!doctype html>
<html><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"></head>
<body style="margin:0;padding:0;background:#f4f4f4">
<div style="max-width:600px;margin:0 auto;padding:24px;background:#ffffff;font-family:Arial,sans-serif;font-size:16px;line-height:1.5;color:#222222">
{{content}}
</div>
<div style="max-width:600px;margin:0 auto;padding:16px 24px;font-family:Arial,sans-serif;font-size:12px;line-height:1.5;color:#555555">
<p>{{sender_name}}<br>{{postal_address}}<br>{{website}}</p>
<p>{{privacy_contact}}</p>
<p><a href="{{unsubscribe_url}}">Unsubscribe</a> | <a href="{{preferences_url}}">Your preferences</a> | <a href="{{view_in_browser_url}}">View in your browser</a></p>
</div>
</body></html>`

func (in *TemplateInput) check(t *Template) error {
	if in.Name != nil {
		if err := errs.TrimLine("name", in.Name, maxName); err != nil {
			return err
		}
		t.Name = *in.Name
	}
	if t.Name == "" {
		return errs.Required("name")
	}
	if in.HTML != nil {
		t.HTML = *in.HTML
	}
	if strings.TrimSpace(t.HTML) == "" {
		return errs.Required("html")
	}
	if len(t.HTML) > maxBody {
		return errs.Invalid("html", "may be at most %d KiB", maxBody>>10)
	}
	if err := checkTags("html", t.HTML, TemplateTags); err != nil {
		return err
	}
	if n := countTag(t.HTML, TagContent); n != 1 {
		return errs.Invalid("html", "must hold {{content}} exactly once, where the campaign's body goes (it holds it %d times)", n)
	}
	return nil
}

func countTag(src, tag string) int {
	n := 0
	for _, m := range tagRE.FindAllStringSubmatch(src, -1) {
		if m[1] == tag {
			n++
		}
	}
	return n
}

func templateTaken(err error, name string) error {
	if store.IsUniqueViolation(err) {
		return errs.Conflict("template_name_taken", "name", "a template named %q already exists", name)
	}
	if err != nil {
		return fmt.Errorf("campaign: save template: %w", err)
	}
	return nil
}

// CreateTemplate saves a new template, made by by, who the audit log
// names.
func (s *Service) CreateTemplate(ctx context.Context, by audit.Actor, in TemplateInput) (*Template, error) {
	now := s.now()
	t := &Template{ID: uuid.Must(uuid.NewV7()).String(), CreatedAt: now, UpdatedAt: now}
	if err := in.check(t); err != nil {
		return nil, err
	}
	err := s.DB.Write(ctx, func(tx *store.Tx) error {
		_, err := tx.Exec(`INSERT INTO campaign_templates (id, name, name_key, html, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $5)`,
			t.ID, t.Name, strings.ToLower(t.Name), t.HTML, store.Micros(now))
		if err := templateTaken(err, t.Name); err != nil {
			return err
		}
		return t.auditTx(tx, by, audit.ActionCampaignTemplateCreated, nil, t.audited(), now)
	})
	if err != nil {
		return nil, err
	}
	return t, nil
}

// UpdateTemplate changes a template, by by, who the audit log names for
// each field that changed; campaigns not yet sent use the change. It
// returns a not-found error (field "template") for an unknown id.
func (s *Service) UpdateTemplate(ctx context.Context, by audit.Actor, id string, in TemplateInput) (*Template, error) {
	t, err := s.Template(ctx, id)
	if err != nil {
		return nil, err
	}
	if err := in.check(t); err != nil {
		return nil, err
	}
	if err := s.keepsUnsubscribe(ctx, t); err != nil {
		return nil, err
	}
	t.UpdatedAt = s.now()
	err = s.DB.Write(ctx, func(tx *store.Tx) error {
		before, err := template(ctx, tx, id) // as it is now, should it have changed since it was read
		if err != nil {
			return err
		}
		_, err = tx.Exec(`UPDATE campaign_templates SET name = $2, name_key = $3, html = $4, updated_at = $5 WHERE id = $1`,
			t.ID, t.Name, strings.ToLower(t.Name), t.HTML, store.Micros(t.UpdatedAt))
		if err := templateTaken(err, t.Name); err != nil {
			return err
		}
		return t.auditTx(tx, by, audit.ActionCampaignTemplateChanged, before.audited(), t.audited(), t.UpdatedAt)
	})
	if err != nil {
		return nil, err
	}
	return t, nil
}

// keepsUnsubscribe refuses a template without {{unsubscribe_url}} while a
// campaign not yet sent uses it and relies on it: one of its HTML bodies
// has no unsubscribe link of its own (see Service.checkUnsubscribe).
func (s *Service) keepsUnsubscribe(ctx context.Context, t *Template) error {
	if countTag(t.HTML, TagUnsubscribeURL) > 0 {
		return nil
	}
	users, err := store.QueryAll(ctx, s.DB.Read, func(row store.Scanner) ([2]string, error) {
		var v [2]string
		return v, row.Scan(&v[0], &v[1])
	}, `SELECT c.name, v.html FROM campaigns c JOIN campaign_variants v ON v.campaign_id = c.id
		WHERE c.template_id = $1 AND c.status IN ('draft', 'scheduled', 'sending', 'paused') ORDER BY c.no, v.language`, t.ID)
	if err != nil {
		return fmt.Errorf("campaign: read the template's campaigns: %w", err)
	}
	for _, u := range users {
		if countTag(u[1], TagUnsubscribeURL) == 0 {
			return errUnsubscribeMissing("html", "the campaign %q uses this template and has a body without an unsubscribe link of its own: keep {{%s}} in the template, or put it in that campaign's bodies first",
				u[0], TagUnsubscribeURL)
		}
	}
	return nil
}

// DeleteTemplate removes a template no campaign uses, by by, who the
// audit log names with what the template was; one in use is a conflict.
// It returns a not-found error (field "template") for an unknown id.
func (s *Service) DeleteTemplate(ctx context.Context, by audit.Actor, id string) error {
	return s.DB.Write(ctx, func(tx *store.Tx) error {
		t, err := template(ctx, tx, id)
		if err != nil {
			return err
		}
		var n int
		if err := tx.QueryRow(`SELECT count(*) FROM campaigns WHERE template_id = $1`, id).Scan(&n); err != nil {
			return fmt.Errorf("campaign: delete template: %w", err)
		}
		if n > 0 {
			return errs.Conflict("template_in_use", "template", "%d campaign(s) use this template", n)
		}
		if _, err := tx.Exec(`DELETE FROM campaign_templates WHERE id = $1`, id); err != nil {
			return fmt.Errorf("campaign: delete template: %w", err)
		}
		return t.auditTx(tx, by, audit.ActionCampaignTemplateDeleted, t.audited(), nil, s.now())
	})
}

func scanTemplate(row store.Scanner) (*Template, error) {
	t := &Template{}
	var created, updated int64
	err := row.Scan(&t.ID, &t.Name, &t.HTML, &created, &updated)
	t.CreatedAt, t.UpdatedAt = store.FromMicros(created), store.FromMicros(updated)
	return t, err
}

// Template returns one template, or a not-found error (field "template").
func (s *Service) Template(ctx context.Context, id string) (*Template, error) {
	return template(ctx, s.DB.Read, id)
}

// template is Template read through q.
func template(ctx context.Context, q store.Querier, id string) (*Template, error) {
	t, err := scanTemplate(q.QueryRowContext(ctx, `SELECT id, name, html, created_at, updated_at FROM campaign_templates WHERE id = $1`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, errs.NotFound("template", "template")
	}
	if err != nil {
		return nil, fmt.Errorf("campaign: read template: %w", err)
	}
	return t, nil
}

// Templates returns every template by name; none is an empty slice.
func (s *Service) Templates(ctx context.Context) ([]*Template, error) {
	return store.QueryAll(ctx, s.DB.Read, scanTemplate, `SELECT id, name, html, created_at, updated_at FROM campaign_templates ORDER BY name_key`)
}

// layout returns the HTML the campaign's body goes into.
func (s *Service) layout(ctx context.Context, c *Campaign) (string, error) {
	if c.TemplateID == "" {
		return DefaultLayout, nil
	}
	t, err := s.Template(ctx, c.TemplateID)
	if err != nil {
		return "", err
	}
	return t.HTML, nil
}
