package settings

import (
	"net/mail"
	"slices"
	"strings"

	"github.com/consentry/consentry/internal/errs"
)

// Engagement tracking choices (R22): off for everyone; only for contacts
// who consented to the tracking purpose; or for everyone, the operator
// having decided their legal basis is legitimate interests.
const (
	TrackingOff        = "off"
	TrackingConsent    = "consent"
	TrackingLegitimate = "legitimate_interests"
)

// TrackingChoices lists the engagement tracking choices.
var TrackingChoices = []string{TrackingOff, TrackingConsent, TrackingLegitimate}

const (
	defaultTrackingPurpose = "Engagement tracking"
	maxCampaignRate        = 100000
)

// Campaigns are the settings of campaign email: who sends it, and how. The
// postal address in every campaign's footer is the operator's (Identity).
type Campaigns struct {
	SenderName         string `json:"sender_name" doc:"the name campaign email comes from"`
	SenderAddress      string `json:"sender_address" doc:"the address campaign email comes from; empty: the server's CONSENTRY_MAIL_FROM"`
	BounceAddress      string `json:"bounce_address" doc:"where bounces go: each campaign message's Return-Path is this address with the message's number and a tag after a +, so a bounce that reaches the inbound SMTP listener maps back (docs/campaigns.md); empty: the sender address"`
	CampaignRate       int    `json:"campaign_rate" doc:"campaign messages per second at most, per instance; 0: as fast as the mail server takes them"`
	EngagementTracking string `json:"engagement_tracking" enum:"off,consent,legitimate_interests" doc:"opens and clicks: off for everyone; consent: only for contacts who granted the tracking purpose; legitimate_interests: for everyone, on that legal basis"`
	TrackingPurpose    string `json:"tracking_purpose" doc:"the purpose whose consent allows engagement tracking, when engagement_tracking is consent"`
}

// CampaignsPatch changes some campaign settings; nil fields stay.
type CampaignsPatch struct {
	SenderName         *string `json:"sender_name"`
	SenderAddress      *string `json:"sender_address"`
	BounceAddress      *string `json:"bounce_address"`
	CampaignRate       *int    `json:"campaign_rate"`
	EngagementTracking *string `json:"engagement_tracking" enum:"off,consent,legitimate_interests"`
	TrackingPurpose    *string `json:"tracking_purpose"`
}

func defaultCampaigns() Campaigns {
	return Campaigns{EngagementTracking: TrackingOff, TrackingPurpose: defaultTrackingPurpose}
}

// address checks an optional address setting: empty, or a bare address.
func address(field string, p *string) error {
	if err := errs.OptionalLine(field, p, 254); err != nil {
		return err
	}
	if *p == "" {
		return nil
	}
	a, err := mail.ParseAddress(*p)
	if err != nil || a.Name != "" || a.Address != *p {
		return errs.Invalid(field, "must be an email address, like news@example.com")
	}
	return nil
}

// applyCampaigns checks and applies the campaign settings.
func (p *CampaignsPatch) applyCampaigns(s *Campaigns) error {
	if v := p.SenderName; v != nil {
		if err := errs.OptionalLine("sender_name", v, 100); err != nil {
			return err
		}
		s.SenderName = *v
	}
	for _, f := range []struct {
		name string
		in   *string
		dst  *string
	}{{"sender_address", p.SenderAddress, &s.SenderAddress}, {"bounce_address", p.BounceAddress, &s.BounceAddress}} {
		if f.in == nil {
			continue
		}
		if err := address(f.name, f.in); err != nil {
			return err
		}
		*f.dst = *f.in
	}
	if v := p.CampaignRate; v != nil {
		if *v < 0 || *v > maxCampaignRate {
			return errs.Invalid("campaign_rate", "must be between 0 (no limit) and %d messages per second", maxCampaignRate)
		}
		s.CampaignRate = *v
	}
	if v := p.EngagementTracking; v != nil {
		if !slices.Contains(TrackingChoices, *v) {
			return errs.Invalid("engagement_tracking", "must be one of %s", strings.Join(TrackingChoices, ", "))
		}
		s.EngagementTracking = *v
	}
	if v := p.TrackingPurpose; v != nil {
		if err := errs.TrimLine("tracking_purpose", v, 200); err != nil {
			return err
		}
		if *v == "" {
			return errs.Required("tracking_purpose")
		}
		s.TrackingPurpose = *v
	}
	return nil
}
