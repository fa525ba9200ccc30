// Package inbound reads requests that arrive by email (R19): a message to
// the operator's privacy address whose subject holds one of the erasure
// keywords (a setting; DELETE, ERASE, VERWIJDER, RADERA by default) is an
// erasure request from its sender's address.
//
// A sender's address is easily forged, so a request by email counts only
// once confirmed: the address is emailed a link, and only following it
// (a button that posts) marks the request verified, notes the erasure
// request on the contact and tells the operator. Whether the address is a
// contact's or not, the sender gets the same answer, the same email and
// the same page; nothing says which. At most one confirmation is emailed
// to an address a day, however many requests arrive in its name.
//
// Messages to the privacy address without a keyword are not requests
// Consentry can act on: they are counted and dropped (the operator reads
// the privacy mailbox itself; see docs/inbound-email.md). The SMTP
// listener (Listener) and the API route both hand raw messages to
// Service.Handle; the package speaks neither HTTP nor SMTP codes.
package inbound

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"time"
	"unicode"

	"golang.org/x/text/cases"

	"github.com/consentry/consentry/internal/auth"
	"github.com/consentry/consentry/internal/consent"
	"github.com/consentry/consentry/internal/contactstate"
	"github.com/consentry/consentry/internal/errs"
	"github.com/consentry/consentry/internal/i18n"
	"github.com/consentry/consentry/internal/mail"
	"github.com/consentry/consentry/internal/requests"
	"github.com/consentry/consentry/internal/settings"
	"github.com/consentry/consentry/internal/store"
)

// Outcomes of a message handled.
const (
	// OutcomeRequested: an erasure request was recorded (status received)
	// and a confirmation link queued for the sender's address.
	OutcomeRequested = "requested"
	// OutcomeLimited: a confirmation went to this address less than
	// ConfirmationInterval ago; nothing was recorded.
	OutcomeLimited = "limited"
	// OutcomeIgnored: no keyword in the subject, the privacy address not
	// in To or Cc, an automatic reply, or mail from the privacy address or
	// Consentry's own address; nothing was recorded.
	OutcomeIgnored = "ignored"
	// OutcomeBounced: a bounce of a campaign message came back to its
	// Return-Path and was recorded for its contact (see Bounces).
	OutcomeBounced = "bounced"
)

// Outcomes lists the outcomes, for counting.
var Outcomes = []string{OutcomeRequested, OutcomeLimited, OutcomeIgnored, OutcomeBounced}

// ConfirmationInterval is how long after a confirmation email the same
// address gets no other.
const ConfirmationInterval = 24 * time.Hour

// LinkValidity is how long a confirmation link works.
const LinkValidity = 7 * 24 * time.Hour

// actor records requests by email and refuses those never confirmed.
var actor = consent.Actor{Kind: consent.ActorSystem, ID: "inbound_email"}

// ErrOff is returned while requests by email are off: the privacy_address
// setting is empty.
var ErrOff = &errs.Error{Kind: errs.KindRefused, Code: "inbound_off", Field: "privacy_address",
	Message: "requests by email are off: set the privacy_address setting"}

// ErrNotConfirmed means a confirmation link is unknown, used, expired, or
// its request is no longer waiting for it. Pages show one neutral answer
// for all of these.
var ErrNotConfirmed = errors.New("inbound: nothing to confirm")

// Service handles inbound messages and their confirmations.
type Service struct {
	DB   *store.DB
	Mail *mail.Templates
	// Notify is told of each request once confirmed (requests.NotifyOperator
	// emails the privacy address): an unconfirmed request may be forged,
	// and the operator need not hear of those.
	Notify  requests.Notifier
	BaseURL string
	Sender  string
	// OwnAddress is the address Consentry's own email comes from
	// (CONSENTRY_MAIL_FROM): a message from it is ignored, so that the
	// operator's notifications never come back as requests.
	OwnAddress string
	// Bounces, when set, maps the Return-Path a bounce is sent to back to
	// the campaign message it is about, and records the bounce.
	Bounces Bounces
	Now     func() time.Time

	counts [4]atomic.Int64 // by index in Outcomes
}

// Bounces maps a campaign message's Return-Path back to the message and
// records what its bounce says (campaign.Bounces).
type Bounces interface {
	// Recipient returns the message an address names, and false for an
	// address that is not a Return-Path this installation made.
	Recipient(ctx context.Context, address string) (int64, bool, error)
	// Record records a bounce of the message for its contact, and
	// returns false when there is no such message or contact any more.
	Record(ctx context.Context, message int64, hard bool) (bool, error)
}

// HandleBounce reads a message sent to the Return-Path of the campaign
// messages given (from Bounces.Recipient) and records the bounce it
// reports for each (OutcomeBounced); a message that reports no failure
// is OutcomeIgnored. A message that does not parse is an invalid-input
// error, and nothing is written.
func (s *Service) HandleBounce(ctx context.Context, raw []byte, messages []int64) (string, error) {
	b, err := ReadBounce(raw)
	if err != nil {
		return "", err
	}
	outcome := OutcomeIgnored
	if b != NotABounce && s.Bounces != nil {
		for _, m := range messages {
			found, err := s.Bounces.Record(ctx, m, b == HardBounce)
			if err != nil {
				return "", err
			}
			if found {
				outcome = OutcomeBounced
			}
		}
	}
	s.counts[slices.Index(Outcomes, outcome)].Add(1)
	return outcome, nil
}

// Counts returns how many messages had each outcome since start.
func (s *Service) Counts() map[string]int64 {
	out := make(map[string]int64, len(Outcomes))
	for i, o := range Outcomes {
		out[o] = s.counts[i].Load()
	}
	return out
}

// Accepts reports whether mail to address is read as requests: it is the
// privacy address (in any case). With no privacy address set, none is.
func (s *Service) Accepts(ctx context.Context, address string) (bool, error) {
	st, err := settings.Get(ctx, s.DB.Read)
	if err != nil {
		return false, err
	}
	return st.PrivacyAddress != "" && Normalize(address) == Normalize(st.PrivacyAddress), nil
}

// Handle reads a raw RFC 5322 message and acts on it: a bounce whose To
// or Cc names campaign messages' Return-Paths (as a mail provider's
// inbound route passes it on, without the envelope) goes to HandleBounce,
// anything else to HandleMessage. A message that does not parse is an
// invalid-input error naming the part (ErrTooLarge for one over
// MaxMessageBytes), and nothing is written.
func (s *Service) Handle(ctx context.Context, raw []byte) (string, error) {
	m, err := Parse(raw)
	if err != nil {
		return "", err
	}
	if s.Bounces != nil {
		var bounced []int64
		for _, r := range m.Recipients {
			id, ok, err := s.Bounces.Recipient(ctx, r)
			if err != nil {
				return "", err
			}
			if ok {
				bounced = append(bounced, id)
			}
		}
		if len(bounced) > 0 {
			return s.HandleBounce(ctx, raw, bounced)
		}
	}
	return s.HandleMessage(ctx, m)
}

// HandleMessage records an erasure request for a message to the privacy
// address whose subject holds an erasure keyword, and queues the
// confirmation link for its sender, in one transaction; see the outcomes
// for what else can happen. It returns ErrOff while no privacy address is
// set. The outcome is the same whether the sender is a contact or not.
func (s *Service) HandleMessage(ctx context.Context, m *Message) (string, error) {
	var outcome string
	err := s.DB.Write(ctx, func(tx *store.Tx) error {
		var err error
		outcome, err = s.handleTx(tx, m, store.Now(s.Now))
		return err
	})
	if err != nil {
		return "", err
	}
	s.counts[slices.Index(Outcomes, outcome)].Add(1)
	return outcome, nil
}

func (s *Service) handleTx(tx *store.Tx, m *Message, now time.Time) (string, error) {
	st, err := settings.InTx(tx)
	if err != nil {
		return "", err
	}
	if st.PrivacyAddress == "" {
		return "", ErrOff
	}
	privacy := Normalize(st.PrivacyAddress)
	if !slices.Contains(m.Recipients, privacy) || m.AutoReplied || m.From == privacy || m.From == Normalize(s.OwnAddress) {
		return OutcomeIgnored, nil
	}
	keyword, ok := Keyword(m.Subject, st.ErasureKeywords)
	if !ok {
		return OutcomeIgnored, nil
	}
	if ok, err := takeConfirmation(tx, m.From, now); err != nil || !ok {
		return OutcomeLimited, err
	}
	known, err := contactstate.LoadByEmail(tx, m.From)
	if err != nil && !errs.Is(err, errs.KindNotFound) {
		return "", err
	}
	in := requests.New{Kind: requests.KindErasure, Channel: requests.ChannelEmail, ContactID: known.ID, Address: m.From,
		Note:  "Emailed to the privacy address (subject keyword " + keyword + "). The sender's address is proven only once the request is verified through the link emailed back to it.",
		Actor: actor}
	r, err := requests.CreateTx(tx, in, nil, now)
	if err != nil {
		return "", err
	}
	lang := keywordLanguage(keyword, st.DefaultLanguage)
	if err := s.sendConfirmation(tx, r.ID, known.ID, m.From, lang, now); err != nil {
		return "", err
	}
	return OutcomeRequested, nil
}

// sendConfirmation queues the email with the confirmation link, the same
// text for a contact and for an address that is no contact's. A contact's
// goes to the contact, through the send gate as any confirmation of a
// change they asked for (a bounced or blocklisted address gets nothing); an
// unknown sender's goes to the address. The link's token is issued as the
// email is sent and bound to the request (auth.PurposeRequestConfirmation).
func (s *Service) sendConfirmation(tx *store.Tx, requestID, contactID, address, lang string, now time.Time) error {
	expires := now.Add(LinkValidity)
	link := mail.NewLink(auth.PurposeRequestConfirmation, requestID, expires)
	from, err := settings.ControllerInTx(tx, s.Sender)
	if err != nil {
		return err
	}
	text, html, err := s.Mail.Render("request_confirm", map[string]any{"Lang": lang, "Sender": from,
		"Link":       strings.TrimRight(s.BaseURL, "/") + "/r/" + link.Placeholder + "?lang=" + lang,
		"ValidUntil": expires.Format(time.DateOnly)})
	if err != nil {
		return fmt.Errorf("inbound: render email: %w", err)
	}
	msg := mail.Message{Kind: mail.KindConfirmation, ContactID: contactID, Language: lang, Subject: i18n.T(lang, "email.request_confirm.subject"),
		Text: text, HTML: html, SubjectID: requestID, Links: []mail.Link{link}}
	if contactID == "" {
		msg.Kind, msg.To = mail.KindRequestConfirmation, address
	}
	_, err = mail.Enqueue(tx, msg, now)
	return err
}

// takeConfirmation reports whether a confirmation may go to address now,
// and if so records that one does: at most one an address per
// ConfirmationInterval. The address is kept only as a hash.
func takeConfirmation(tx *store.Tx, address string, now time.Time) (bool, error) {
	// One statement: the row is written only when there was none or it
	// is a day old, and returned only when written.
	rows, err := tx.Query(`INSERT INTO inbound_confirmations (address_hash, sent_at) VALUES ($1, $2)
		ON CONFLICT (address_hash) DO UPDATE SET sent_at = excluded.sent_at WHERE inbound_confirmations.sent_at <= $3
		RETURNING sent_at`, addressKey(address), store.Micros(now), store.Micros(now.Add(-ConfirmationInterval)))
	if err != nil {
		return false, fmt.Errorf("inbound: limit: %w", err)
	}
	defer rows.Close()
	taken := rows.Next()
	if err := rows.Err(); err != nil {
		return false, fmt.Errorf("inbound: limit: %w", err)
	}
	return taken, nil
}

// addressKey is what inbound_confirmations keeps of an address.
func addressKey(address string) string {
	h := sha256.Sum256([]byte("consentry inbound confirmation\x00" + Normalize(address)))
	return hex.EncodeToString(h[:])
}

// PurgeTx deletes the confirmation limits that have run out by now: they
// hold nothing more once a day has passed.
func PurgeTx(tx *store.Tx, now time.Time) error {
	if _, err := tx.Exec(`DELETE FROM inbound_confirmations WHERE sent_at < $1`, store.Micros(now.Add(-ConfirmationInterval))); err != nil {
		return fmt.Errorf("inbound: purge limits: %w", err)
	}
	return nil
}

var fold = cases.Fold()

// Keyword returns the first of keywords that subject holds as a word,
// regardless of case ("Please radera my data" holds RADERA, "Deleted"
// does not hold DELETE), as it is written in keywords. Words are runs of
// letters, digits and hyphens; a keyword without a hyphen also matches a
// hyphen-separated part of one ("RE-DELETE"). It reports false when
// subject holds none.
func Keyword(subject string, keywords []string) (string, bool) {
	words := strings.FieldsFunc(subject, func(r rune) bool { return !unicode.IsLetter(r) && !unicode.IsDigit(r) && r != '-' })
	for i, w := range words {
		words[i] = fold.String(w)
	}
	for _, k := range keywords {
		fk := fold.String(k)
		for _, w := range words {
			if w == fk || (!strings.Contains(fk, "-") && slices.Contains(strings.Split(w, "-"), fk)) {
				return k, true
			}
		}
	}
	return "", false
}

// keywordLanguages are the languages of the default keywords: the
// confirmation is written in the language the request was, for contacts
// and strangers alike (a contact's own language would tell that the
// address is known). Other keywords get the default language.
var keywordLanguages = map[string]string{"delete": "en", "erase": "en", "verwijder": "nl", "radera": "sv"}

func keywordLanguage(keyword, fallback string) string {
	if l, ok := keywordLanguages[fold.String(keyword)]; ok {
		return l
	}
	return i18n.Match(fallback, "")
}
