// Package campaign holds email campaigns: their content in each language,
// their audience with the contacts it excludes and why, and their sending
// through the send gate at scale.
//
// A campaign's bodies are stored once per language; each recipient has a
// small row (who, the outcome, when) and nothing more. Sending re-reads
// every recipient's state as it opens a hand-over for the batch
// (store.DB.StartHandOver) and begins each message through it, so no
// message leaves after a change that stops it (an opt-out, a withdrawal,
// an unsubscribe) has committed, and no such change waits for the mail
// server on another recipient's behalf.
package campaign

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/consentry/consentry/internal/audit"
	"github.com/consentry/consentry/internal/consent"
	"github.com/consentry/consentry/internal/errs"
	"github.com/consentry/consentry/internal/filter"
	"github.com/consentry/consentry/internal/i18n"
	"github.com/consentry/consentry/internal/lists"
	"github.com/consentry/consentry/internal/settings"
	"github.com/consentry/consentry/internal/store"
)

// Campaign statuses.
const (
	StatusDraft     = "draft"
	StatusScheduled = "scheduled"
	StatusSending   = "sending"
	StatusPaused    = "paused"
	StatusSent      = "sent"
	StatusCancelled = "cancelled"
)

// Statuses lists the campaign statuses in the order a campaign passes them.
var Statuses = []string{StatusDraft, StatusScheduled, StatusSending, StatusPaused, StatusSent, StatusCancelled}

// DefaultPurpose is the purpose a new campaign serves unless told.
const DefaultPurpose = "E-marketing"

// Campaign is an email to an audience.
type Campaign struct {
	ID              string     `json:"id"`
	Name            string     `json:"name"`
	Status          string     `json:"status" enum:"draft,scheduled,sending,paused,sent,cancelled"`
	PurposeID       string     `json:"purpose_id" doc:"the purpose the campaign serves: a contact without consent to it (or who objected, for another legal basis) is excluded"`
	Purpose         string     `json:"purpose"`
	TemplateID      string     `json:"template_id" doc:"the layout around the body; empty: the built-in one"`
	ListIDs         []string   `json:"list_ids" doc:"the lists whose subscribers are the audience; unsubscribing from the campaign's email unsubscribes from these lists only"`
	Condition       string     `json:"condition" doc:"a condition in the condition language: the audience, or with lists, narrows it"`
	OptInPolicy     string     `json:"opt_in_policy" doc:"empty: the setting campaign_opt_in_policy; or a policy as strict or stricter"`
	DefaultLanguage string     `json:"default_language" enum:"@language" doc:"the variant for contacts whose language has none"`
	Variants        []Variant  `json:"variants,omitempty" doc:"the content per language; absent in the list of campaigns"`
	Audience        *Audience  `json:"audience,omitempty" doc:"who the campaign reached and who it excluded, by reason, once sending started"`
	ScheduledAt     *time.Time `json:"scheduled_at"`
	StartedAt       *time.Time `json:"started_at"`
	FinishedAt      *time.Time `json:"finished_at"`
	CreatedBy       string     `json:"created_by"`
	CreatedAt       time.Time  `json:"created_at"`
	UpdatedAt       time.Time  `json:"updated_at"`

	no int64 // the number recipient rows and links carry
}

// Variant is a campaign's content in one language.
type Variant struct {
	Language string `json:"language" required:"true" enum:"@language"`
	Subject  string `json:"subject" required:"true"`
	HTML     string `json:"html" required:"true" doc:"the body as HTML; tags: {{first_name}}, {{last_name}}, {{unsubscribe_url}}, {{preferences_url}}, {{view_in_browser_url}}"`
	Text     string `json:"text" doc:"the plain-text part; empty: made from the HTML"`
}

// Input creates or changes a campaign; nil fields stay as they are.
type Input struct {
	Name            *string    `json:"name" required:"create"`
	Purpose         *string    `json:"purpose" doc:"the purpose's id or name; default E-marketing"`
	TemplateID      *string    `json:"template_id"`
	Lists           *[]string  `json:"lists" doc:"list ids or names"`
	Condition       *string    `json:"condition"`
	OptInPolicy     *string    `json:"opt_in_policy"`
	DefaultLanguage *string    `json:"default_language" enum:"@language"`
	Variants        *[]Variant `json:"variants" required:"create"`
}

// Service keeps campaigns.
type Service struct {
	DB       *store.DB
	Now      func() time.Time
	Purposes *consent.Service
	Lists    *lists.Service
	// Condition compiles an audience condition; an invalid one is an
	// errs.Error on the field "filter".
	Condition func(ctx context.Context, src string) (*filter.Condition, error)
}

func (s *Service) now() time.Time { return store.Now(s.Now) }

const (
	maxName    = 200
	maxSubject = 250
	maxBody    = 512 << 10
)

// check validates in against c (the campaign as it would be) and fills in
// the ids it resolves. Every problem names its field.
func (s *Service) check(ctx context.Context, c *Campaign, in Input) error {
	if in.Name != nil {
		if err := errs.TrimLine("name", in.Name, maxName); err != nil {
			return err
		}
		c.Name = *in.Name
	}
	if c.Name == "" {
		return errs.Required("name")
	}
	if err := s.checkRules(ctx, c, in); err != nil {
		return err
	}
	if in.Variants != nil {
		c.Variants = slices.Clone(*in.Variants)
	}
	if err := checkVariants(c); err != nil {
		return err
	}
	return s.checkUnsubscribe(ctx, c)
}

// checkUnsubscribe makes sure that every message of c carries the
// recipient's unsubscribe link in its HTML part, not only in the
// List-Unsubscribe header (which some mail clients do not show): the
// layout has it ({{unsubscribe_url}}, as the built-in one has in its
// footer), or else every variant's HTML body must. The plain-text part
// always ends with the link (textFooter). A body without it is an invalid
// error on variants[i].html that says what is missing and where.
func (s *Service) checkUnsubscribe(ctx context.Context, c *Campaign) error {
	layout, name := DefaultLayout, "the built-in layout"
	if c.TemplateID != "" {
		t, err := s.Template(ctx, c.TemplateID)
		if errs.Is(err, errs.KindNotFound) {
			return errs.Invalid("template_id", "no template %q", c.TemplateID)
		}
		if err != nil {
			return err
		}
		layout, name = t.HTML, fmt.Sprintf("the template %q", t.Name)
	}
	if countTag(layout, TagUnsubscribeURL) > 0 {
		return nil
	}
	for i, v := range c.Variants {
		if countTag(v.HTML, TagUnsubscribeURL) == 0 {
			return errUnsubscribeMissing(fmt.Sprintf("variants[%d].html", i), "the %s HTML body has no unsubscribe link, and %s has none in its footer: put {{%s}} in the body (for example <a href=\"{{%s}}\">Unsubscribe</a>), or choose a template that has it",
				v.Language, name, TagUnsubscribeURL, TagUnsubscribeURL)
		}
	}
	return nil
}

// errUnsubscribeMissing is the invalid-input error of content that would
// reach a recipient without their unsubscribe link.
func errUnsubscribeMissing(field, format string, args ...any) error {
	e := errs.Invalid(field, format, args...)
	e.Code = "unsubscribe_link_missing"
	return e
}

// checkRules is check without the name and the content: it validates the
// purpose, template, audience, opt-in policy and default language of in
// against c and fills in the ids it resolves.
func (s *Service) checkRules(ctx context.Context, c *Campaign, in Input) error {
	if in.Purpose != nil || c.PurposeID == "" {
		name := DefaultPurpose
		if in.Purpose != nil && strings.TrimSpace(*in.Purpose) != "" {
			name = strings.TrimSpace(*in.Purpose)
		}
		p, err := s.Purposes.Purpose(ctx, name)
		if errs.Is(err, errs.KindNotFound) {
			return errs.Invalid("purpose", "no purpose %q", name)
		}
		if err != nil {
			return err
		}
		c.PurposeID, c.Purpose = p.ID, p.Name
	}
	if in.TemplateID != nil {
		c.TemplateID = strings.TrimSpace(*in.TemplateID)
		if c.TemplateID != "" {
			if _, err := s.Template(ctx, c.TemplateID); errs.Is(err, errs.KindNotFound) {
				return errs.Invalid("template_id", "no template %q", c.TemplateID)
			} else if err != nil {
				return err
			}
		}
	}
	if in.Lists != nil {
		c.ListIDs = []string{}
		for _, name := range *in.Lists {
			l, err := s.Lists.Get(ctx, strings.TrimSpace(name))
			if errs.Is(err, errs.KindNotFound) {
				return errs.Invalid("lists", "no list %q", name)
			}
			if err != nil {
				return err
			}
			if !slices.Contains(c.ListIDs, l.ID) {
				c.ListIDs = append(c.ListIDs, l.ID)
			}
		}
	}
	if in.Condition != nil {
		c.Condition = strings.TrimSpace(*in.Condition)
		if c.Condition != "" {
			if _, err := s.Condition(ctx, c.Condition); err != nil {
				return errs.WithField(err, errs.Field("condition"))
			}
		}
	}
	if in.OptInPolicy != nil {
		c.OptInPolicy = strings.TrimSpace(*in.OptInPolicy)
		if c.OptInPolicy != "" && !slices.Contains(settings.Policies, c.OptInPolicy) {
			return errs.Invalid("opt_in_policy", "must be empty (the setting) or one of %s", strings.Join(settings.Policies, ", "))
		}
	}
	if in.DefaultLanguage != nil {
		c.DefaultLanguage = *in.DefaultLanguage
	}
	if !slices.Contains(i18n.Languages, c.DefaultLanguage) {
		return errs.Invalid("default_language", "must be one of %s", strings.Join(i18n.Languages, ", "))
	}
	return nil
}

// checkVariants checks each language's content, and that the default
// language has one.
func checkVariants(c *Campaign) error {
	if len(c.Variants) == 0 {
		return errs.Invalid("variants", "give the content in at least the default language")
	}
	seen := map[string]bool{}
	for i := range c.Variants {
		v := &c.Variants[i]
		field := fmt.Sprintf("variants[%d]", i)
		if !slices.Contains(i18n.Languages, v.Language) {
			return errs.Invalid(field+".language", "must be one of %s", strings.Join(i18n.Languages, ", "))
		}
		if seen[v.Language] {
			return errs.Invalid(field+".language", "%s is given twice", v.Language)
		}
		seen[v.Language] = true
		if err := errs.TrimLine(field+".subject", &v.Subject, maxSubject); err != nil {
			return err
		}
		if v.Subject == "" {
			return errs.Required(field + ".subject")
		}
		if strings.TrimSpace(v.HTML) == "" {
			return errs.Required(field + ".html")
		}
		if err := checkContent(field, v); err != nil {
			return err
		}
	}
	if !seen[c.DefaultLanguage] {
		return errs.Invalid("variants", "there is no variant in the default language (%s)", c.DefaultLanguage)
	}
	return nil
}

// checkContent checks what a variant's subject and bodies may hold: their
// size, and no tag but BodyTags. field is the variant's, variants[i].
func checkContent(field string, v *Variant) error {
	if len(v.HTML) > maxBody || len(v.Text) > maxBody {
		return errs.Invalid(field, "a body may be at most %d KiB", maxBody>>10)
	}
	for _, f := range []struct{ name, src string }{{"subject", v.Subject}, {"html", v.HTML}, {"text", v.Text}} {
		if err := checkTags(field+"."+f.name, f.src, BodyTags); err != nil {
			return err
		}
	}
	return nil
}

// Create saves a new campaign as a draft, made by by, who the audit log
// names.
func (s *Service) Create(ctx context.Context, by audit.Actor, in Input) (*Campaign, error) {
	now := s.now()
	st, err := settings.Get(ctx, s.DB.Read)
	if err != nil {
		return nil, err
	}
	c := &Campaign{ID: uuid.Must(uuid.NewV7()).String(), Status: StatusDraft, ListIDs: []string{},
		DefaultLanguage: st.DefaultLanguage, CreatedBy: createdBy(by), CreatedAt: now, UpdatedAt: now}
	if err := s.check(ctx, c, in); err != nil {
		return nil, err
	}
	err = s.DB.Write(ctx, func(tx *store.Tx) error {
		if err := tx.QueryRow(`SELECT COALESCE(MAX(no), 0) + 1 FROM campaigns`).Scan(&c.no); err != nil {
			return fmt.Errorf("campaign: number: %w", err)
		}
		lists, _ := json.Marshal(c.ListIDs)
		if _, err := tx.Exec(`INSERT INTO campaigns (id, no, name, status, purpose_id, template_id, list_ids, condition, opt_in_policy,
			default_language, created_by, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $12)`,
			c.ID, c.no, c.Name, c.Status, c.PurposeID, nullable(c.TemplateID), string(lists), c.Condition, c.OptInPolicy,
			c.DefaultLanguage, c.CreatedBy, store.Micros(now)); err != nil {
			return fmt.Errorf("campaign: create: %w", err)
		}
		if err := writeVariants(tx, c); err != nil {
			return err
		}
		return c.auditTx(tx, by, audit.ActionCampaignCreated, audit.Changes(nil, c.audited()), now)
	})
	if err != nil {
		return nil, err
	}
	return c, nil
}

func nullable(s string) any {
	if s == "" {
		return nil
	}
	return s
}

func writeVariants(tx *store.Tx, c *Campaign) error {
	if _, err := tx.Exec(`DELETE FROM campaign_variants WHERE campaign_id = $1`, c.ID); err != nil {
		return fmt.Errorf("campaign: save variants: %w", err)
	}
	for _, v := range c.Variants {
		if _, err := tx.Exec(`INSERT INTO campaign_variants (campaign_id, language, subject, html, text) VALUES ($1, $2, $3, $4, $5)`,
			c.ID, v.Language, v.Subject, v.HTML, v.Text); err != nil {
			return fmt.Errorf("campaign: save variants: %w", err)
		}
	}
	return nil
}

// Update changes a draft or scheduled campaign, by by, who the audit log
// names for each field that changed; one that is sending or done is a
// conflict. It returns a not-found error (field "campaign") for an
// unknown id.
func (s *Service) Update(ctx context.Context, by audit.Actor, id string, in Input) (*Campaign, error) {
	c, err := s.Get(ctx, id)
	if err != nil {
		return nil, err
	}
	if err := s.check(ctx, c, in); err != nil {
		return nil, err
	}
	now := s.now()
	err = s.DB.Write(ctx, func(tx *store.Tx) error {
		before, err := get(tx, id) // as it is now, should it have changed since it was read
		if err != nil {
			return err
		}
		if before.Variants, err = variants(ctx, tx, id); err != nil {
			return fmt.Errorf("campaign: read variants: %w", err)
		}
		lists, _ := json.Marshal(c.ListIDs)
		res, err := tx.Exec(`UPDATE campaigns SET name = $2, purpose_id = $3, template_id = $4, list_ids = $5, condition = $6,
			opt_in_policy = $7, default_language = $8, updated_at = $9 WHERE id = $1 AND status IN ('draft', 'scheduled')`,
			c.ID, c.Name, c.PurposeID, nullable(c.TemplateID), string(lists), c.Condition, c.OptInPolicy, c.DefaultLanguage, store.Micros(now))
		if err != nil {
			return fmt.Errorf("campaign: update: %w", err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return errs.Conflict("campaign_not_editable", "status", "a campaign can be changed only as a draft or while scheduled")
		}
		if err := writeVariants(tx, c); err != nil {
			return err
		}
		return c.auditTx(tx, by, audit.ActionCampaignChanged, audit.Changes(before.audited(), c.audited()), now)
	})
	if err != nil {
		return nil, err
	}
	c.UpdatedAt = now
	return c, nil
}

// Delete removes a draft, by by, who the audit log names with what the
// campaign was. Anything sent or sending is kept as proof of what went to
// whom: cancel it instead. It returns a not-found error (field
// "campaign") for an unknown id.
func (s *Service) Delete(ctx context.Context, by audit.Actor, id string) error {
	return s.DB.Write(ctx, func(tx *store.Tx) error {
		c, err := get(tx, id)
		if err != nil {
			return err
		}
		if c.Variants, err = variants(ctx, tx, id); err != nil {
			return fmt.Errorf("campaign: read variants: %w", err)
		}
		res, err := tx.Exec(`DELETE FROM campaigns WHERE id = $1 AND status = 'draft'`, id)
		if err != nil {
			return fmt.Errorf("campaign: delete: %w", err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return errs.Conflict("campaign_not_deletable", "status", "only a draft can be deleted; cancel a campaign instead")
		}
		return c.auditTx(tx, by, audit.ActionCampaignDeleted, audit.Changes(c.audited(), nil), s.now())
	})
}

const campaignColumns = `c.id, c.no, c.name, c.status, c.purpose_id, p.name, COALESCE(c.template_id, ''), c.list_ids, c.condition,
	c.opt_in_policy, c.default_language, c.audience, c.scheduled_at, c.started_at, c.finished_at, c.created_by, c.created_at, c.updated_at`

const campaignSelect = `SELECT ` + campaignColumns + ` FROM campaigns c JOIN purposes p ON p.id = c.purpose_id`

func scanCampaign(row store.Scanner) (*Campaign, error) {
	c := &Campaign{}
	var listIDs, audience string
	var scheduled, started, finished sql.NullInt64
	var created, updated int64
	if err := row.Scan(&c.ID, &c.no, &c.Name, &c.Status, &c.PurposeID, &c.Purpose, &c.TemplateID, &listIDs, &c.Condition,
		&c.OptInPolicy, &c.DefaultLanguage, &audience, &scheduled, &started, &finished, &c.CreatedBy, &created, &updated); err != nil {
		return nil, err
	}
	if err := json.Unmarshal([]byte(listIDs), &c.ListIDs); err != nil || c.ListIDs == nil {
		c.ListIDs = []string{}
	}
	var a Audience
	if json.Unmarshal([]byte(audience), &a) == nil && a.Resolved {
		c.Audience = &a
	}
	c.ScheduledAt, c.StartedAt, c.FinishedAt = optTime(scheduled), optTime(started), optTime(finished)
	c.CreatedAt, c.UpdatedAt = store.FromMicros(created), store.FromMicros(updated)
	return c, nil
}

func optTime(v sql.NullInt64) *time.Time {
	if !v.Valid {
		return nil
	}
	t := store.FromMicros(v.Int64)
	return &t
}

// get reads one campaign, without its variants, through q. It returns a
// not-found error (field "campaign") for an unknown id.
func get(q store.Querier, id string) (*Campaign, error) {
	c, err := scanCampaign(q.QueryRowContext(context.Background(), campaignSelect+` WHERE c.id = $1`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, errs.NotFound("campaign", "campaign")
	}
	if err != nil {
		return nil, fmt.Errorf("campaign: read: %w", err)
	}
	return c, nil
}

// Get returns a campaign with its variants, or a not-found error (field
// "campaign").
func (s *Service) Get(ctx context.Context, id string) (*Campaign, error) {
	c, err := get(s.DB.Read, id)
	if err != nil {
		return nil, err
	}
	c.Variants, err = variants(ctx, s.DB.Read, c.ID)
	return c, err
}

func variants(ctx context.Context, q store.Querier, id string) ([]Variant, error) {
	return store.QueryAll(ctx, q, func(row store.Scanner) (Variant, error) {
		var v Variant
		err := row.Scan(&v.Language, &v.Subject, &v.HTML, &v.Text)
		return v, err
	}, `SELECT language, subject, html, text FROM campaign_variants WHERE campaign_id = $1 ORDER BY language`, id)
}

// List returns the campaigns, newest first, without their variants; none
// is an empty slice.
func (s *Service) List(ctx context.Context) ([]*Campaign, error) {
	return store.QueryAll(ctx, s.DB.Read, scanCampaign, campaignSelect+` ORDER BY c.no DESC`)
}

// variant returns the content for a contact whose language is lang: theirs
// if the campaign has it, else the default language's.
func (c *Campaign) variant(lang string) *Variant {
	var def *Variant
	for i := range c.Variants {
		if c.Variants[i].Language == lang {
			return &c.Variants[i]
		}
		if c.Variants[i].Language == c.DefaultLanguage {
			def = &c.Variants[i]
		}
	}
	return def
}
