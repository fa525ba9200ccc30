package campaign

import (
	"context"
	"fmt"

	"github.com/consentry/consentry/internal/store"
)

// Report is what became of a campaign (B10).
type Report struct {
	Campaign *Campaign `json:"campaign"`
	Progress *Progress `json:"progress"`
	Sent     int64     `json:"sent" doc:"messages the mail server accepted"`
	// Bounced counts the sent messages whose address bounced afterwards,
	// and the addresses the mail server refused while sending.
	Bounced   int64 `json:"bounced"`
	Delivered int64 `json:"delivered" doc:"sent and not bounced"`
	// Tracked is how many recipients' opens and clicks could be tracked
	// (R22); the opens and clicks are of those only.
	Tracked      int64            `json:"tracked"`
	UniqueOpens  int64            `json:"unique_opens"`
	UniqueClicks int64            `json:"unique_clicks"`
	Unsubscribes int64            `json:"unsubscribes"`
	Suppressed   map[string]int64 `json:"suppressed" doc:"recipients stopped at the last moment, by reason"`
}

// Report counts a campaign's outcome. It returns a not-found error (field
// "campaign") for an unknown id.
func (s *Service) Report(ctx context.Context, id string) (*Report, error) {
	c, err := s.Get(ctx, id)
	if err != nil {
		return nil, err
	}
	p, err := s.Progress(ctx, id)
	if err != nil {
		return nil, err
	}
	r := &Report{Campaign: c, Progress: p, Sent: p.Recipients[RecipientSent]}
	q := s.DB.Read
	var refused int64
	err = q.QueryRowContext(ctx, `SELECT
		(SELECT count(*) FROM campaign_recipients r JOIN contacts c ON c.id = r.contact_id
			WHERE r.campaign_no = $1 AND r.status = 'sent' AND c.deliverability = 'bounced' AND c.updated_at >= r.sent_at),
		(SELECT count(*) FROM campaign_recipients WHERE campaign_no = $1 AND status = 'failed' AND reason LIKE 'bounced: %'),
		(SELECT count(*) FROM campaign_recipients WHERE campaign_no = $1 AND status = 'sent' AND tracked),
		(SELECT count(DISTINCT recipient_id) FROM campaign_events WHERE campaign_no = $1 AND kind = 'open'),
		(SELECT count(DISTINCT recipient_id) FROM campaign_events WHERE campaign_no = $1 AND kind = 'click'),
		(SELECT count(DISTINCT recipient_id) FROM campaign_events WHERE campaign_no = $1 AND kind = 'unsubscribe')`, c.no).
		Scan(&r.Bounced, &refused, &r.Tracked, &r.UniqueOpens, &r.UniqueClicks, &r.Unsubscribes)
	if err != nil {
		return nil, fmt.Errorf("campaign: report: %w", err)
	}
	r.Delivered = r.Sent - r.Bounced
	r.Bounced += refused
	if r.Suppressed, err = store.CountBy(ctx, q, `SELECT reason, count(*) FROM campaign_recipients
		WHERE campaign_no = $1 AND status = 'suppressed' GROUP BY reason`, c.no); err != nil {
		return nil, fmt.Errorf("campaign: report: %w", err)
	}
	return r, nil
}
