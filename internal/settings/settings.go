// Package settings holds the operator's settings that change how Consentry
// behaves (double opt-in timing, the right-to-be-informed email, the
// campaign opt-in policy, bounce handling), stored in the database so every
// instance sees the same.
package settings

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"net/mail"
	"slices"
	"strings"
	"time"
	"unicode"

	"github.com/consentry/consentry/internal/audit"
	"github.com/consentry/consentry/internal/contactstate"
	"github.com/consentry/consentry/internal/errs"
	"github.com/consentry/consentry/internal/i18n"
	"github.com/consentry/consentry/internal/store"
)

// Campaign opt-in policies: which opt-in statuses campaigns may reach.
const (
	PolicyDoubleOnly           = "double_only"
	PolicyDoubleAndUser        = "double_and_user"
	PolicyDoubleUserAndWebform = "double_user_and_webform"

	defaultReminderDays         = 3
	defaultExpiryDays           = 14
	defaultSoftBounceLimit      = 3
	maxDays                     = 365
	settingsKey                 = "settings"
	defaultCampaignOptInPolicy  = PolicyDoubleOnly
	defaultRightToBeInformed    = false
	defaultPreferencesLinkHours = 24 * 30
	// An unsubscribe link keeps working for at least a year: people
	// unsubscribe from old email, and a link that stops working while
	// saying nothing leaves them subscribed.
	minUnsubscribeLinkDays     = 365
	maxUnsubscribeLinkDays     = 3650
	defaultUnsubscribeLinkDays = minUnsubscribeLinkDays
	defaultRetentionGraceDays  = 30
	// Sent email keeps its content a month by default: long enough to
	// answer "what did you send me?" about recent email, short enough
	// that the outbox stays small.
	defaultSentBodyDays = 30
	maxSentBodyDays     = 3650
	maxErasureKeywords  = 20
)

// Policies lists the campaign opt-in policies, strictest first.
var Policies = []string{PolicyDoubleOnly, PolicyDoubleAndUser, PolicyDoubleUserAndWebform}

// Settings are the operator's choices. The zero value is never used: Get
// fills in defaults.
type Settings struct {
	DoubleOptInReminderDays int      `json:"double_opt_in_reminder_days" doc:"days after a double opt-in email before a reminder is sent"`
	DoubleOptInExpiryDays   int      `json:"double_opt_in_expiry_days" doc:"days after which an unconfirmed double opt-in invitation expires"`
	RightToBeInformed       bool     `json:"right_to_be_informed" doc:"email each newly registered contact what is stored and why, with a link to their preferences page"`
	CampaignOptInPolicy     string   `json:"campaign_opt_in_policy" enum:"@campaign_opt_in_policy"`
	SoftBounceLimit         int      `json:"soft_bounce_limit" doc:"soft bounces after which an address counts as bounced"`
	PreferencesLinkHours    int      `json:"preferences_link_hours" doc:"how long a preferences page link in an email stays valid"`
	UnsubscribeLinkDays     int      `json:"unsubscribe_link_days" doc:"how long the unsubscribe link of a marketing email keeps working, one-click included: 365 to 3650 days"`
	DefaultLanguage         string   `json:"default_language" enum:"@language" doc:"the language consent texts are written in; a new version of a consent text is in it, and a page or email in a language the version has no translation into shows it"`
	PrivacyAddress          string   `json:"privacy_address" doc:"the operator's privacy address: it is told of every data subject request, requests emailed to it are read, and pages and email give it to contacts as the privacy contact's (empty: no one is told)"`
	ErasureKeywords         []string `json:"erasure_keywords" doc:"words that make an email to the privacy address an erasure request when its subject holds one, in any case"`
	RetentionGraceDays      int      `json:"retention_grace_days" doc:"days a contact stays flagged retention_due, for review, before retention erases them"`
	KeptAfterErasure        []string `json:"kept_after_erasure" enum:"@kept_after_erasure" doc:"the core fields the operator marks non-identifying, kept in an erased contact's remainder (country, region)"`
	SentBodyDays            int      `json:"sent_body_days" doc:"days an email keeps its subject and bodies after it was queued, once sent, suppressed or failed; then only who, what kind, when and whether it went remain: 1 to 3650 days"`
	Identity
	Campaigns
	Receipts
}

// KeepableAfterErasure are the core fields an operator may keep in an
// erased contact's remainder: coarse enough, alone, to identify no one.
var KeepableAfterErasure = []string{"country", "region"}

// DefaultErasureKeywords are the subject words, in English, Dutch and
// Swedish, that make an email an erasure request.
var DefaultErasureKeywords = []string{"DELETE", "ERASE", "VERWIJDER", "RADERA"}

// Defaults are the settings of a new installation.
func Defaults() Settings {
	return Settings{DoubleOptInReminderDays: defaultReminderDays, DoubleOptInExpiryDays: defaultExpiryDays,
		RightToBeInformed: defaultRightToBeInformed, CampaignOptInPolicy: defaultCampaignOptInPolicy,
		SoftBounceLimit: defaultSoftBounceLimit, PreferencesLinkHours: defaultPreferencesLinkHours,
		UnsubscribeLinkDays: defaultUnsubscribeLinkDays, DefaultLanguage: i18n.Languages[0],
		ErasureKeywords: slices.Clone(DefaultErasureKeywords), RetentionGraceDays: defaultRetentionGraceDays,
		KeptAfterErasure: []string{}, SentBodyDays: defaultSentBodyDays, Campaigns: defaultCampaigns()}
}

// Patch changes some settings; nil fields stay as they are.
type Patch struct {
	DoubleOptInReminderDays *int      `json:"double_opt_in_reminder_days"`
	DoubleOptInExpiryDays   *int      `json:"double_opt_in_expiry_days"`
	RightToBeInformed       *bool     `json:"right_to_be_informed"`
	CampaignOptInPolicy     *string   `json:"campaign_opt_in_policy" enum:"@campaign_opt_in_policy"`
	SoftBounceLimit         *int      `json:"soft_bounce_limit"`
	PreferencesLinkHours    *int      `json:"preferences_link_hours"`
	UnsubscribeLinkDays     *int      `json:"unsubscribe_link_days"`
	DefaultLanguage         *string   `json:"default_language" enum:"@language"`
	PrivacyAddress          *string   `json:"privacy_address"`
	ErasureKeywords         *[]string `json:"erasure_keywords"`
	RetentionGraceDays      *int      `json:"retention_grace_days"`
	KeptAfterErasure        *[]string `json:"kept_after_erasure" enum:"@kept_after_erasure"`
	SentBodyDays            *int      `json:"sent_body_days"`
	IdentityPatch
	CampaignsPatch
	ReceiptsPatch
}

// Get returns the current settings, with defaults for any never set.
func Get(ctx context.Context, q store.Querier) (Settings, error) {
	s := Defaults()
	var raw string
	err := q.QueryRowContext(ctx, `SELECT value FROM settings WHERE key = $1`, settingsKey).Scan(&raw)
	if errors.Is(err, sql.ErrNoRows) {
		return s, nil
	}
	if err != nil {
		return s, fmt.Errorf("settings: read: %w", err)
	}
	if err := json.Unmarshal([]byte(raw), &s); err != nil {
		return s, fmt.Errorf("settings: decode: %w", err)
	}
	return s, nil
}

// inTxKey keeps, in a write transaction (store.Tx.Local), the settings
// read there: the writes grouped into one transaction (a burst of webform
// posts, say) then read them once, not once each, which on PostgreSQL is a
// round trip each. Update, the only writer, replaces the kept value.
type inTxKey struct{}

// InTx reads the settings inside a write, so that the change it makes and
// the settings it used are one consistent state.
func InTx(tx *store.Tx) (Settings, error) {
	if s, ok := tx.Local(inTxKey{}).(Settings); ok {
		return s, nil
	}
	s := Defaults()
	var raw string
	err := tx.QueryRow(`SELECT value FROM settings WHERE key = $1`, settingsKey).Scan(&raw)
	if errors.Is(err, sql.ErrNoRows) {
		tx.SetLocal(inTxKey{}, s)
		return s, nil
	}
	if err != nil {
		return s, fmt.Errorf("settings: read: %w", err)
	}
	if err := json.Unmarshal([]byte(raw), &s); err != nil {
		return s, err
	}
	tx.SetLocal(inTxKey{}, s)
	return s, nil
}

// Update applies p, as by, and returns the new settings. Each setting it
// changes gets an entry in the audit log, in the same transaction; a patch
// that changes nothing writes none.
func Update(ctx context.Context, db *store.DB, p Patch, by audit.Actor, now time.Time) (Settings, error) {
	var out Settings
	err := db.Write(ctx, func(tx *store.Tx) error {
		s, err := InTx(tx)
		if err != nil {
			return err
		}
		before := s
		days := func(field string, v *int, dst *int, min, max int) error {
			if v == nil {
				return nil
			}
			if *v < min || *v > max {
				return errs.Invalid(field, "must be between %d and %d", min, max)
			}
			*dst = *v
			return nil
		}
		if err := days("double_opt_in_reminder_days", p.DoubleOptInReminderDays, &s.DoubleOptInReminderDays, 1, maxDays); err != nil {
			return err
		}
		if err := days("double_opt_in_expiry_days", p.DoubleOptInExpiryDays, &s.DoubleOptInExpiryDays, 1, maxDays); err != nil {
			return err
		}
		if err := days("soft_bounce_limit", p.SoftBounceLimit, &s.SoftBounceLimit, 1, maxDays); err != nil {
			return err
		}
		if p.PreferencesLinkHours != nil {
			if *p.PreferencesLinkHours < 1 || *p.PreferencesLinkHours > 24*maxDays {
				return errs.Invalid("preferences_link_hours", "must be between 1 and %d", 24*maxDays)
			}
			s.PreferencesLinkHours = *p.PreferencesLinkHours
		}
		if v := p.UnsubscribeLinkDays; v != nil {
			if *v < minUnsubscribeLinkDays || *v > maxUnsubscribeLinkDays {
				return errs.Invalid("unsubscribe_link_days", "must be between %d (a year) and %d", minUnsubscribeLinkDays, maxUnsubscribeLinkDays)
			}
			s.UnsubscribeLinkDays = *v
		}
		if s.DoubleOptInReminderDays >= s.DoubleOptInExpiryDays {
			return errs.Invalid("double_opt_in_reminder_days", "must be fewer than double_opt_in_expiry_days (%d)", s.DoubleOptInExpiryDays)
		}
		if v := p.DefaultLanguage; v != nil {
			if !slices.Contains(i18n.Languages, *v) {
				return errs.Invalid("default_language", "must be one of %s", strings.Join(i18n.Languages, ", "))
			}
			s.DefaultLanguage = *v
		}
		if err := days("retention_grace_days", p.RetentionGraceDays, &s.RetentionGraceDays, 0, maxDays); err != nil {
			return err
		}
		if err := days("sent_body_days", p.SentBodyDays, &s.SentBodyDays, 1, maxSentBodyDays); err != nil {
			return err
		}
		if err := p.applyErasure(&s); err != nil {
			return err
		}
		logo, err := p.applyIdentity(&s.Identity)
		if err != nil {
			return err
		}
		if err := p.applyCampaigns(&s.Campaigns); err != nil {
			return err
		}
		if err := p.applyReceipts(&s.Receipts); err != nil {
			return err
		}
		if p.RightToBeInformed != nil {
			s.RightToBeInformed = *p.RightToBeInformed
		}
		if p.CampaignOptInPolicy != nil {
			switch *p.CampaignOptInPolicy {
			case PolicyDoubleOnly, PolicyDoubleAndUser, PolicyDoubleUserAndWebform:
				s.CampaignOptInPolicy = *p.CampaignOptInPolicy
			default:
				return errs.Invalid("campaign_opt_in_policy", "must be double_only, double_and_user or double_user_and_webform")
			}
		}
		if logo != nil {
			if err := saveLogo(tx, logo, store.Micros(now)); err != nil {
				return err
			}
		}
		raw, err := json.Marshal(s)
		if err != nil {
			return err
		}
		_, err = tx.Exec(`INSERT INTO settings (key, value, updated_at) VALUES ($1, $2, $3)
			ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at`,
			settingsKey, string(raw), store.Micros(now))
		if err != nil {
			return fmt.Errorf("settings: save: %w", err)
		}
		// No setting is a secret (mail server credentials and keys are
		// configuration, never settings), so every value is logged.
		if err := audit.WriteTx(tx, by, audit.ActionSettingChanged, audit.Changes(before, s), now); err != nil {
			return err
		}
		tx.SetLocal(inTxKey{}, s)
		out = s
		return nil
	})
	return out, err
}

// CampaignStatuses returns the opt-in statuses a campaign may reach under
// the policy.
func CampaignStatuses(policy string) []string {
	switch policy {
	case PolicyDoubleAndUser:
		return []string{contactstate.DoubleOptIn, contactstate.SingleOptInUser}
	case PolicyDoubleUserAndWebform:
		return []string{contactstate.DoubleOptIn, contactstate.SingleOptInUser, contactstate.SingleOptInWebform}
	}
	return []string{contactstate.DoubleOptIn}
}

// applyErasure checks and applies the data subject rights settings.
func (p *Patch) applyErasure(s *Settings) error {
	if v := p.PrivacyAddress; v != nil {
		a := strings.TrimSpace(*v)
		if a != "" {
			addr, err := mail.ParseAddress(a)
			if err != nil || addr.Name != "" || addr.Address != a || len(a) > 254 {
				return errs.Invalid("privacy_address", "must be a plain email address such as privacy@example.com, or empty")
			}
		}
		s.PrivacyAddress = a
	}
	if v := p.ErasureKeywords; v != nil {
		if len(*v) == 0 || len(*v) > maxErasureKeywords {
			return errs.Invalid("erasure_keywords", "must hold 1 to %d words", maxErasureKeywords)
		}
		out := make([]string, 0, len(*v))
		for _, w := range *v {
			w = strings.ToUpper(strings.TrimSpace(w))
			if w == "" || len(w) > 40 || strings.ContainsFunc(w, func(r rune) bool { return !unicode.IsLetter(r) && !unicode.IsDigit(r) && r != '-' }) {
				return errs.Invalid("erasure_keywords", "each word must be 1 to 40 letters, digits or hyphens, got %q", w)
			}
			if !slices.Contains(out, w) {
				out = append(out, w)
			}
		}
		s.ErasureKeywords = out
	}
	if v := p.KeptAfterErasure; v != nil {
		out := []string{}
		for _, f := range *v {
			if !slices.Contains(KeepableAfterErasure, f) {
				return errs.Invalid("kept_after_erasure", "may name only %s, got %q", strings.Join(KeepableAfterErasure, " and "), f)
			}
			if !slices.Contains(out, f) {
				out = append(out, f)
			}
		}
		s.KeptAfterErasure = out
	}
	return nil
}
