package preferences

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/consentry/consentry/internal/audit"
	"github.com/consentry/consentry/internal/errs"
	"github.com/consentry/consentry/internal/jobs"
	"github.com/consentry/consentry/internal/store"
)

// configKey is the row of the settings table the page's settings live in.
const configKey = "preferences_page"

// Config is how the operator set up the preferences page (R15, R16). It is
// replaced as a whole, so every part is required (tag required), and a
// request that leaves one out is refused rather than emptying it.
type Config struct {
	// AccessCondition selects the contacts who may use the whole page, e.g.
	// region == "EU". Empty lets every contact in. The others see only the
	// email section (R17).
	AccessCondition string `json:"access_condition" required:"true" doc:"a condition on the profile (docs/conditions.md); empty lets every contact use the page"`
	// Offers are the consents the page asks for, each to the contacts its
	// condition selects.
	Offers []Offer `json:"offers" required:"true"`
	// Statement is the operator's text at the top of the page, shown as
	// plain text with its links made clickable.
	Statement string `json:"statement" required:"true" doc:"plain text; links become clickable"`
	// Policies are links to the operator's privacy policy and the like.
	Policies []Link `json:"policies" required:"true"`
	// Footer is added to emails written by users, with the contact's
	// personal link to the page (R15).
	Footer Footer `json:"footer" required:"true"`
	// AccessEmail sends every contact who gains access to the page an email
	// with a link to it (R15).
	AccessEmail bool `json:"access_email" required:"true" doc:"email each contact who gains access to the page a link to it"`
	// AllowStopProcessing and AllowErasure show the "Stop processing" and
	// "Erase my data" buttons.
	AllowStopProcessing bool `json:"allow_stop_processing" required:"true"`
	AllowErasure        bool `json:"allow_erasure" required:"true"`
}

// Offer is one consent the page asks for.
type Offer struct {
	Purpose string `json:"purpose" required:"true" doc:"purpose id (a name is accepted and stored as the id)"`
	// Condition selects who is asked; empty asks everyone with access.
	Condition string `json:"condition" doc:"e.g. stage == \"ready to buy\"; empty asks everyone with access"`
	// DefaultSelected overrides the purpose's default, which decides only
	// whether "Yes" is listed before "No": no answer is ever preselected
	// (R12). Nil keeps the purpose's.
	DefaultSelected *bool `json:"default_selected,omitempty" doc:"true lists \"Yes\" first, false \"No\" first; no answer is ever preselected; absent: as the purpose"`
}

// Link is a titled link on the page.
type Link struct {
	Title string `json:"title" required:"true"`
	URL   string `json:"url" required:"true"`
}

// Footer is the text added to emails written by users, followed by the
// contact's link to the page.
type Footer struct {
	Enabled  bool   `json:"enabled" required:"true"`
	Text     string `json:"text" doc:"e.g. \"You can see and change what we keep about you:\""`
	LinkText string `json:"link_text" doc:"the text of the link, e.g. \"Your privacy preferences\""`
}

// Default is the set-up of a new installation: the page is open to every
// contact, asks for nothing beyond email preferences, and offers both
// buttons.
func Default() Config {
	return Config{AllowStopProcessing: true, AllowErasure: true, Offers: []Offer{}, Policies: []Link{}}
}

// GetConfig returns the page's settings, with the defaults when the operator
// never changed them.
func GetConfig(ctx context.Context, q store.Querier) (Config, error) {
	c := Default()
	var raw string
	err := q.QueryRowContext(ctx, `SELECT value FROM settings WHERE key = $1`, configKey).Scan(&raw)
	if errors.Is(err, sql.ErrNoRows) {
		return c, nil
	}
	if err != nil {
		return c, fmt.Errorf("preferences: read settings: %w", err)
	}
	if err := json.Unmarshal([]byte(raw), &c); err != nil {
		return c, fmt.Errorf("preferences: decode settings: %w", err)
	}
	return c, nil
}

// validate checks c and resolves purpose names to ids. Conditions are
// compiled against the current fields and purposes, so a typo is refused
// with its position.
func (s *Service) validate(ctx context.Context, c *Config) error {
	if c.AccessCondition != "" {
		if _, err := s.compile(ctx, c.AccessCondition); err != nil {
			return errs.WithField(err, errs.Field("access_condition"))
		}
	}
	seen := map[string]bool{}
	for i := range c.Offers {
		o := &c.Offers[i]
		at := fmt.Sprintf("offers[%d]", i)
		if strings.TrimSpace(o.Purpose) == "" {
			return errs.Required(at + ".purpose")
		}
		p, err := s.Consent.Purpose(ctx, o.Purpose)
		if err != nil {
			return errs.NotFound("purpose", at+".purpose")
		}
		if seen[p.ID] {
			return errs.Invalid(at+".purpose", "purpose %q is offered twice", p.Name)
		}
		seen[p.ID] = true
		o.Purpose = p.ID
		if o.Condition != "" {
			if _, err := s.compile(ctx, o.Condition); err != nil {
				return errs.WithField(err, errs.Field(at+".condition"))
			}
		}
	}
	if err := errs.OptionalText("statement", &c.Statement, 10000); err != nil {
		return err
	}
	for i := range c.Policies {
		l := &c.Policies[i]
		at := fmt.Sprintf("policies[%d]", i)
		if err := errs.OptionalLine(at+".title", &l.Title, 200); err != nil {
			return err
		}
		if l.Title == "" {
			return errs.Required(at + ".title")
		}
		if err := checkURL(at+".url", l.URL); err != nil {
			return err
		}
	}
	if err := errs.OptionalText("footer.text", &c.Footer.Text, 1000); err != nil {
		return err
	}
	if err := errs.OptionalLine("footer.link_text", &c.Footer.LinkText, 200); err != nil {
		return err
	}
	if c.Footer.Enabled && c.Footer.LinkText == "" {
		return errs.Invalid("footer.link_text", "is required when the footer is enabled")
	}
	if c.Offers == nil {
		c.Offers = []Offer{}
	}
	if c.Policies == nil {
		c.Policies = []Link{}
	}
	return nil
}

// checkURL accepts absolute http(s) addresses only, so a policy link cannot
// run script on the page.
func checkURL(field, raw string) error {
	if raw == "" {
		return errs.Required(field)
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || len(raw) > 2000 {
		return errs.Invalid(field, "must be an absolute http or https address")
	}
	return nil
}

// SetConfig replaces the page's settings with c, as by, after validating
// it, and returns what was stored. Each part it changes gets an entry in
// the audit log, named preferences_page.PART, in the same transaction.
// When access emails are on, contacts who now have access are emailed by
// the next access sweep, which this change schedules at once.
func (s *Service) SetConfig(ctx context.Context, c Config, by audit.Actor) (Config, error) {
	if err := s.validate(ctx, &c); err != nil {
		return c, err
	}
	raw, err := json.Marshal(c)
	if err != nil {
		return c, err
	}
	err = s.DB.Write(ctx, func(tx *store.Tx) error {
		now := s.now()
		old, err := GetConfig(ctx, tx)
		if err != nil {
			return err
		}
		if _, err := tx.Exec(`INSERT INTO settings (key, value, updated_at) VALUES ($1, $2, $3)
			ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at`,
			configKey, string(raw), store.Micros(now)); err != nil {
			return fmt.Errorf("preferences: save settings: %w", err)
		}
		changes := audit.Changes(old, c)
		for i := range changes {
			changes[i].Name = configKey + "." + changes[i].Name
		}
		if err := audit.WriteTx(tx, by, audit.ActionSettingChanged, changes, now); err != nil {
			return err
		}
		if !c.AccessEmail {
			return nil
		}
		// A sweep now, besides the periodic one, so that the contacts who
		// gain access with this change hear of it at once.
		return jobs.Enqueue(tx, jobs.Spec{Kind: AccessSweepJob, UniqueKey: "now:" + AccessSweepJob, Payload: struct{}{}}, now)
	})
	return c, err
}

func (s *Service) now() time.Time { return store.Now(s.Now) }
