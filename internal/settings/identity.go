package settings

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"slices"

	"github.com/consentry/consentry/internal/errs"
	"github.com/consentry/consentry/internal/store"
)

// LogoPath is where the operator's logo is served, from the server's own
// origin, so that pages keep a Content-Security-Policy of img-src 'self'.
const LogoPath = "/logo"

// maxWebsite bounds the operator's website address.
const maxWebsite = 500

// MaxLogoBytes bounds the logo: a header image, not a photograph.
const MaxLogoBytes = 256 << 10

// LogoTypes are the image types a logo may be. SVG is not among them: an
// SVG can carry script, and the logo is served from the pages' own origin.
var LogoTypes = []string{"image/png", "image/jpeg", "image/webp"}

// Identity is who the operator is, as the controller of contacts' data
// (GDPR Art. 13): named on every public page and in every email, so that a
// contact knows who holds their data and how to reach them. The privacy
// contact's address is PrivacyAddress, the one address data subject
// requests go to: one address for contacts to write to and for requests
// to arrive at.
type Identity struct {
	OrganisationName   string `json:"organisation_name" doc:"the operator's name, the controller of contacts' data: in the header and footer of public pages, and the sender and footer of email (empty: the name of the server's CONSENTRY_MAIL_FROM)"`
	PostalAddress      string `json:"postal_address" doc:"the operator's postal address: in the footer of public pages, email and every campaign"`
	PrivacyContactName string `json:"privacy_contact_name" doc:"the privacy contact or data protection officer named to contacts, reached at privacy_address (empty: the address alone)"`
	Website            string `json:"website" doc:"the operator's own website, an https address: linked from the header of public pages and the footer of email, by the organisation name (empty: no link)"`
	LogoURL            string `json:"logo_url" doc:"read only: where the operator's logo is served on this server (/logo, with its version), shown in the header of public pages; empty: no logo. Set it with logo in a PATCH"`
}

// IdentityPatch changes some of the operator's identity; nil fields stay.
type IdentityPatch struct {
	OrganisationName   *string `json:"organisation_name"`
	PostalAddress      *string `json:"postal_address"`
	PrivacyContactName *string `json:"privacy_contact_name"`
	Website            *string `json:"website"`
	// LogoURL is read only: it is accepted, and ignored, when it is the
	// current value, so that a client may send back the settings it read
	// whole; the logo changes with Logo.
	LogoURL *string `json:"logo_url" doc:"read only: accepted when it equals the current value (ignored), so that the settings read can be sent back whole; to change the logo, send logo"`
	// Logo is a PNG, JPEG or WebP image of at most 256 KiB, recognised by
	// its content; empty removes the logo.
	Logo *[]byte `json:"logo" doc:"a PNG, JPEG or WebP image of at most 256 KiB, in base64; an empty string removes the logo"`
}

// Logo is the operator's logo as it is served.
type Logo struct {
	ContentType string
	Data        []byte
	ETag        string // quoted, as the header carries it
}

// applyIdentity checks and applies the identity settings, and returns the
// logo to store: nil when it does not change, empty to remove it.
func (p *IdentityPatch) applyIdentity(s *Identity) (*Logo, error) {
	if v := p.OrganisationName; v != nil {
		if err := errs.OptionalLine("organisation_name", v, 200); err != nil {
			return nil, err
		}
		s.OrganisationName = *v
	}
	if v := p.PostalAddress; v != nil {
		if err := errs.OptionalText("postal_address", v, 300); err != nil {
			return nil, err
		}
		s.PostalAddress = *v
	}
	if v := p.PrivacyContactName; v != nil {
		if err := errs.OptionalLine("privacy_contact_name", v, 200); err != nil {
			return nil, err
		}
		s.PrivacyContactName = *v
	}
	if v := p.Website; v != nil {
		w, err := errs.WebAddress("website", *v, maxWebsite, "https://example.org")
		if err != nil {
			return nil, err
		}
		s.Website = w
	}
	if v := p.LogoURL; v != nil && *v != s.LogoURL {
		return nil, errs.Invalid("logo_url", "is read only: it is where this server serves the logo (now %q); "+
			"to change the logo send the image, in base64, as logo, or an empty logo to remove it", s.LogoURL)
	}
	if p.Logo == nil {
		return nil, nil
	}
	data := *p.Logo
	if len(data) == 0 {
		s.LogoURL = ""
		return &Logo{}, nil
	}
	if len(data) > MaxLogoBytes {
		return nil, errs.Invalid("logo", "must be at most %d KiB, this one is %d KiB", MaxLogoBytes>>10, (len(data)+1023)>>10)
	}
	// The content decides, never a file name or a type the client claims.
	ct := http.DetectContentType(data)
	if !slices.Contains(LogoTypes, ct) {
		return nil, errs.Invalid("logo", "must be a PNG, JPEG or WebP image (not SVG), this is %s", ct)
	}
	sum := sha256.Sum256(data)
	l := &Logo{ContentType: ct, Data: data, ETag: `"` + hex.EncodeToString(sum[:16]) + `"`}
	s.LogoURL = LogoPath + "?v=" + l.Version()
	return l, nil
}

// Version names this logo in its address (LogoURL), so that pages showing
// a new logo ask for it anew while browsers keep the old one cached.
func (l *Logo) Version() string { return l.ETag[1:13] }

// saveLogo stores l, or removes the logo when l is empty.
func saveLogo(tx *store.Tx, l *Logo, now int64) error {
	if len(l.Data) == 0 {
		if _, err := tx.Exec(`DELETE FROM operator_logo`); err != nil {
			return fmt.Errorf("settings: remove logo: %w", err)
		}
		return nil
	}
	_, err := tx.Exec(`INSERT INTO operator_logo (id, content_type, data, etag, updated_at) VALUES (1, $1, $2, $3, $4)
		ON CONFLICT (id) DO UPDATE SET content_type = excluded.content_type, data = excluded.data, etag = excluded.etag, updated_at = excluded.updated_at`,
		l.ContentType, l.Data, l.ETag, now)
	if err != nil {
		return fmt.Errorf("settings: save logo: %w", err)
	}
	return nil
}

// GetLogo returns the operator's logo, or errs.NotFound("logo") when none
// is set.
func GetLogo(ctx context.Context, q store.Querier) (*Logo, error) {
	var l Logo
	err := q.QueryRowContext(ctx, `SELECT content_type, data, etag FROM operator_logo WHERE id = 1`).Scan(&l.ContentType, &l.Data, &l.ETag)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, errs.NotFound("logo", "")
	}
	if err != nil {
		return nil, fmt.Errorf("settings: read logo: %w", err)
	}
	return &l, nil
}

// Controller is the operator as contacts meet them on pages and in email:
// the controller of their data, with how to reach them. Name is never
// empty.
type Controller struct {
	Name          string
	PostalAddress string
	PrivacyName   string
	PrivacyEmail  string
	LogoURL       string
	Website       string // the operator's own site, or ""
}

// Controller returns the operator as contacts meet them; fallback, the
// name the server is configured to send email under, names them when no
// organisation name is set.
func (s Settings) Controller(fallback string) Controller {
	name := s.OrganisationName
	if name == "" {
		name = fallback
	}
	return Controller{Name: name, PostalAddress: s.PostalAddress, PrivacyName: s.PrivacyContactName,
		PrivacyEmail: s.PrivacyAddress, LogoURL: s.LogoURL, Website: s.Website}
}

// CampaignSenderName is the name campaign email comes from: the campaign
// sender name, else the organisation name; empty when neither is set.
func (s Settings) CampaignSenderName() string {
	if s.SenderName != "" {
		return s.SenderName
	}
	return s.OrganisationName
}

// PrivacyContact is how contacts reach the privacy contact: "Name
// <address>", the address or the name alone; empty when neither is set.
func (c Controller) PrivacyContact() string {
	switch {
	case c.PrivacyName != "" && c.PrivacyEmail != "":
		return c.PrivacyName + " <" + c.PrivacyEmail + ">"
	case c.PrivacyEmail != "":
		return c.PrivacyEmail
	}
	return c.PrivacyName
}

// ControllerInTx is Controller with the settings read inside a write, for
// an email queued there.
func ControllerInTx(tx *store.Tx, fallback string) (Controller, error) {
	s, err := InTx(tx)
	if err != nil {
		return Controller{}, err
	}
	return s.Controller(fallback), nil
}
