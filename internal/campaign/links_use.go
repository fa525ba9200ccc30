package campaign

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/consentry/consentry/internal/consent"
	"github.com/consentry/consentry/internal/lists"
	"github.com/consentry/consentry/internal/settings"
	"github.com/consentry/consentry/internal/store"
)

// What the links of a campaign message do once followed: unsubscribe from
// the campaign's lists (or opt out, for a campaign without lists), open
// the preferences page, show the message in the browser, and for tracked
// recipients count opens and clicks. The pages are in internal/public.

// ErrLinkExpired is what Target returns for a link older than the setting
// unsubscribe_link_days, counted from when the message was sent.
var ErrLinkExpired = errors.New("campaign: the link has expired")

// Event kinds in campaign_events.
const (
	EventOpen        = "open"
	EventClick       = "click"
	EventUnsubscribe = "unsubscribe"
)

// Target is what a followed link is about: the recipient row, its
// campaign and contact.
type Target struct {
	Recipient  int64
	CampaignNo int64
	CampaignID string
	ContactID  string
	ListIDs    []string // the campaign's lists; none for a condition audience
	Lists      []string // their names, in the same order
	Tracked    bool
	SentAt     time.Time
	// Language is the contact's, for the pages their links open.
	Language string
}

// Target reads the recipient row rid (from a link Links.Check accepted)
// with its campaign: one query, as opens and clicks need. It returns
// ErrBadLink when there is no such row, or its contact was erased since:
// every link of an erased contact stops working, as their preferences
// links do.
func (s *Service) Target(ctx context.Context, rid int64) (*Target, error) {
	t := &Target{Recipient: rid}
	var at *int64
	err := s.DB.Read.QueryRowContext(ctx, `SELECT r.campaign_no, r.contact_id, r.tracked, r.sent_at, c.id, ct.language FROM campaign_recipients r
		JOIN campaigns c ON c.no = r.campaign_no JOIN contacts ct ON ct.id = r.contact_id
		WHERE r.id = $1 AND ct.erased_at IS NULL`, rid).Scan(&t.CampaignNo, &t.ContactID, &t.Tracked, &at, &t.CampaignID, &t.Language)
	if err != nil {
		return nil, ErrBadLink
	}
	// A link has a valid signature only if its message was made; one
	// followed while the sender has not yet recorded the outcome counts
	// from now (and is not tracked yet).
	t.SentAt = s.now()
	if at != nil {
		t.SentAt = store.FromMicros(*at)
	}
	return t, nil
}

// Lasting is Target for the links that expire (unsubscribe, preferences,
// view): it returns ErrLinkExpired when the setting unsubscribe_link_days
// has passed since the message was sent, and fills in the campaign's
// lists.
func (s *Service) Lasting(ctx context.Context, rid int64) (*Target, error) {
	t, err := s.Target(ctx, rid)
	if err != nil {
		return nil, err
	}
	st, err := settings.Get(ctx, s.DB.Read)
	if err != nil {
		return nil, err
	}
	if s.now().After(t.SentAt.AddDate(0, 0, st.UnsubscribeLinkDays)) {
		return nil, ErrLinkExpired
	}
	c, err := get(s.DB.Read, t.CampaignID)
	if err != nil {
		return nil, err
	}
	for _, id := range c.ListIDs {
		l, err := s.Lists.Get(ctx, id)
		if err != nil {
			continue // deleted since
		}
		t.ListIDs = append(t.ListIDs, l.ID)
		t.Lists = append(t.Lists, l.Name)
	}
	return t, nil
}

// Unsubscribe unsubscribes t's contact from the campaign's lists, and only
// those, withdrawing the consent to the purpose a list is bound to (as
// the contact's doing, with evidence ev); for a campaign without lists,
// optOut (the contact's own opt-out, inside the same transaction) is
// applied instead. The event is recorded in the same transaction. A
// contact deleted since changes nothing.
func (s *Service) Unsubscribe(ctx context.Context, t *Target, ev consent.Evidence, optOut func(tx *store.Tx, contactID string, now time.Time) error) error {
	withdraw := s.Purposes.PurposeWithdrawal(consent.Actor{Kind: consent.ActorContact}, ev)
	now := s.now()
	return s.DB.Write(ctx, func(tx *store.Tx) error {
		var n int
		if err := tx.QueryRow(`SELECT count(*) FROM contacts WHERE id = $1`, t.ContactID).Scan(&n); err != nil {
			return fmt.Errorf("campaign: unsubscribe: %w", err)
		}
		if n == 0 {
			return nil
		}
		if len(t.ListIDs) == 0 {
			if err := optOut(tx, t.ContactID, now); err != nil {
				return err
			}
		}
		for _, id := range t.ListIDs {
			if err := lists.UnsubscribeTx(tx, t.ContactID, id, lists.SourceCampaign, now, withdraw); err != nil {
				return err
			}
		}
		_, err := tx.Exec(`INSERT INTO campaign_events (campaign_no, recipient_id, contact_id, kind, link, at) VALUES ($1, $2, $3, $4, -1, $5)`,
			t.CampaignNo, t.Recipient, t.ContactID, EventUnsubscribe, store.Micros(now))
		if err != nil {
			return fmt.Errorf("campaign: record unsubscribe: %w", err)
		}
		return nil
	})
}

// View renders the message of recipient t as their variant reads now, for
// the browser: no open pixel and the operator's links as they are. A
// contact deleted since is ErrBadLink.
func (x *Sender) View(ctx context.Context, t *Target) (subject, html string, err error) {
	c, err := x.Service.Get(ctx, t.CampaignID)
	if err != nil {
		return "", "", err
	}
	p, err := x.prepare(ctx, c)
	if err != nil {
		return "", "", err
	}
	rs, err := p.read(ctx, x.Service.DB.Read, []*outcome{{contactID: t.ContactID}})
	if err != nil {
		return "", "", err
	}
	r, ok := rs[t.ContactID]
	if !ok {
		return "", "", ErrBadLink
	}
	r.tracked = false
	subject, _, html = p.content(t.Recipient, r)
	return subject, html, nil
}

// ClickTarget returns the operator's link n in the variant recipient t
// got, taken from the stored content (never from the request, so a click
// link cannot lead anywhere else). It returns ErrBadLink when there is no
// link n.
func (x *Sender) ClickTarget(ctx context.Context, t *Target, n int) (string, error) {
	links, err := x.links(ctx, t)
	if err != nil {
		return "", err
	}
	if n < 0 || n >= len(links) {
		return "", ErrBadLink
	}
	return links[n], nil
}

// linkCache keeps each sent campaign's compiled links per language: a
// campaign's content does not change once sent, and clicks come by the
// thousand.
type linkCache struct {
	mu sync.Mutex
	m  map[string]map[string][]string // campaign id → language → links
}

func (x *Sender) links(ctx context.Context, t *Target) ([]string, error) {
	var lang string
	if err := x.Service.DB.Read.QueryRowContext(ctx, `SELECT language FROM contacts WHERE id = $1`, t.ContactID).Scan(&lang); err != nil {
		lang = ""
	}
	clickLinks := &x.clicks
	clickLinks.mu.Lock()
	byLang, ok := clickLinks.m[t.CampaignID]
	clickLinks.mu.Unlock()
	if !ok {
		c, err := x.Service.Get(ctx, t.CampaignID)
		if err != nil {
			return nil, err
		}
		p, err := x.prepare(ctx, c)
		if err != nil {
			return nil, err
		}
		byLang = map[string][]string{"": p.variantFor("").html.links}
		for l, v := range p.variants {
			byLang[l] = v.html.links
		}
		clickLinks.mu.Lock()
		if clickLinks.m == nil || len(clickLinks.m) > 100 {
			clickLinks.m = map[string]map[string][]string{}
		}
		clickLinks.m[t.CampaignID] = byLang
		clickLinks.mu.Unlock()
	}
	if l, ok := byLang[lang]; ok {
		return l, nil
	}
	return byLang[""], nil
}

// ForgetContactsTx deletes, inside tx, the opens, clicks and unsubscribes
// recorded for the contacts in ids, who are erased or deleted. Their
// recipient rows stay: they hold only the contact's id.
func ForgetContactsTx(tx *store.Tx, ids []string) error {
	if len(ids) == 0 {
		return nil
	}
	ph, args := store.In(1, ids)
	return tx.ExecLater(store.Prefix("campaign: forget contacts"), `DELETE FROM campaign_events WHERE contact_id IN (`+ph+`)`, args...)
}
