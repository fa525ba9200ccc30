package campaign

import (
	"context"
	"crypto/hmac"
	"database/sql"
	"encoding/base32"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/consentry/consentry/internal/contactstate"
	"github.com/consentry/consentry/internal/errs"
	"github.com/consentry/consentry/internal/settings"
	"github.com/consentry/consentry/internal/store"
)

// A campaign message's envelope sender (its Return-Path, where bounces
// go) is the bounce address with the message named after a +:
// bounces+c12-3456-<tag>@acme.example for recipient row 3456 of campaign
// 12. The tag is the first 128 bits of the HMAC of the row under the link
// key, in lower-case base32 (mail systems may change the case of a local
// part): without it anyone could mail a made-up bounce for any row and
// stop a contact's email. It is shorter than a link's hash so that the
// local part stays within SMTP's 64 characters.

// LinkBounce is what a Return-Path's tag is for.
const LinkBounce = "b"

var tagEncoding = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

func bounceTag(key []byte, recipient int64) string {
	return tagEncoding.EncodeToString(mac(key, LinkBounce, recipient, 0)[:16])
}

// returnPath is the bounce address with the message's campaign, recipient
// row and tag after a + (see above), or "" for an address without @.
func returnPath(bounce string, no, id int64, tag string) string {
	at := strings.LastIndexByte(bounce, '@')
	if at < 0 {
		return ""
	}
	return bounce[:at] + "+c" + strconv.FormatInt(no, 10) + "-" + strconv.FormatInt(id, 10) + "-" + tag + bounce[at:]
}

// BounceRecipient reads a campaign message's Return-Path: it returns the
// recipient row the address names, and false for any address that is not
// one this installation made (no +c part, a bad number or a tag that does
// not match). It does not look at the part before the +, so a bounce
// still maps back after the operator changed the bounce address.
func (l *Links) BounceRecipient(ctx context.Context, address string) (int64, bool, error) {
	at := strings.LastIndexByte(address, '@')
	plus := strings.LastIndexByte(address[:max(at, 0)], '+')
	if at < 0 || plus < 0 {
		return 0, false, nil
	}
	parts := strings.Split(strings.ToLower(address[plus+1:at]), "-")
	if len(parts) != 3 || !strings.HasPrefix(parts[0], "c") {
		return 0, false, nil
	}
	if _, err := strconv.ParseInt(parts[0][1:], 10, 64); err != nil {
		return 0, false, nil
	}
	id, err := strconv.ParseInt(parts[1], 10, 64)
	if err != nil || id <= 0 {
		return 0, false, nil
	}
	key, err := l.load(ctx)
	if err != nil {
		return 0, false, err
	}
	if !hmac.Equal([]byte(parts[2]), []byte(bounceTag(key, id))) {
		return 0, false, nil
	}
	return id, true, nil
}

// RecordBounce records a bounce reported by mail for the contact a
// campaign message went to (recipient is its row, from BounceRecipient):
// a hard bounce marks the address bounced at once, a soft one counts
// towards the soft_bounce_limit setting, as a bounce reported through
// the API does; the campaign's report then counts the message as
// bounced. It returns false, and writes nothing, when the row is gone or
// its message was never handed over (then nothing bounced) or its
// contact was deleted.
func (s *Service) RecordBounce(ctx context.Context, recipient int64, hard bool) (bool, error) {
	found := false
	err := s.DB.Write(ctx, func(tx *store.Tx) error {
		found = false
		var contactID string
		err := tx.QueryRow(`SELECT contact_id FROM campaign_recipients WHERE id = $1 AND status IN ('sent', 'unknown')`, recipient).Scan(&contactID)
		if errors.Is(err, sql.ErrNoRows) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("campaign: record bounce: %w", err)
		}
		st, err := settings.InTx(tx)
		if err != nil {
			return err
		}
		cs, err := contactstate.Load(tx, contactID)
		if errs.Is(err, errs.KindNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		found = true
		return contactstate.RecordBounceTx(tx, &cs, hard, st.SoftBounceLimit, s.now())
	})
	return found, err
}

// Bounces reads the bounces that come back to campaign messages'
// Return-Paths by mail (the inbound SMTP listener's inbound.Bounces).
type Bounces struct {
	Service *Service
	Links   *Links
}

// Recipient is Links.BounceRecipient.
func (b *Bounces) Recipient(ctx context.Context, address string) (int64, bool, error) {
	return b.Links.BounceRecipient(ctx, address)
}

// Record is Service.RecordBounce.
func (b *Bounces) Record(ctx context.Context, message int64, hard bool) (bool, error) {
	return b.Service.RecordBounce(ctx, message, hard)
}
