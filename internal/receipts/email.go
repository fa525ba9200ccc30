package receipts

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/consentry/consentry/internal/auth"
	"github.com/consentry/consentry/internal/consent"
	"github.com/consentry/consentry/internal/errs"
	"github.com/consentry/consentry/internal/i18n"
	"github.com/consentry/consentry/internal/mail"
	"github.com/consentry/consentry/internal/settings"
	"github.com/consentry/consentry/internal/store"
)

// LinkDays is how long the download link in a receipt email works.
const LinkDays = 30

// LinkPath is where the link in a receipt email points, the token after it.
const LinkPath = "/receipt/"

// The email is a readable summary with the signed receipt attached
// (AttachmentName) and a link to download it again. The attachment is
// signed in the transaction that writes the consent record, before the
// record's ledger event is committed, so no checkpoint covers the event
// yet and the attached receipt has no ledger_proof; the link gives the
// receipt with its proof (ByLink). The link's token is issued as the email
// is sent (mail.Link), so the outbox never holds a working link.

// AttachmentName is the file name of the receipt a receipt email carries.
func AttachmentName(recordID string) string { return "consent-receipt-" + recordID + ".json" }

// EmailTx queues, inside tx, the email that summarises consent record r
// to its contact, in lang, with the signed receipt attached and a link to
// download it with its ledger proof, when the setting email_receipts is
// on; otherwise it does nothing. Each way a contact confirms a consent
// calls it in the transaction that writes the record (a double opt-in
// confirmation, a webform post they confirmed, a change on their
// preferences page), so the email exists exactly when the consent does. The send gate decides at send time whether it still goes
// (mail.Gate).
func (s *Service) EmailTx(tx *store.Tx, r *consent.Record, lang string, now time.Time) error {
	st, err := settings.InTx(tx)
	if err != nil || !st.EmailReceipts {
		return err
	}
	if s.Mail == nil {
		return errors.New("receipts: email_receipts is on and no email templates are set")
	}
	lang = i18n.Match(lang, "")
	text, err := consent.TextInVia(context.Background(), tx, r.PurposeID, r.TextVersion, r.TextLanguage)
	if r.TextVersion == 0 {
		text, err = consent.ShownText{Language: r.TextLanguage, Text: r.Evidence.Notice}, nil
	}
	if err != nil {
		return fmt.Errorf("receipts: email of record %s: %w", r.ID, err)
	}
	link := mail.NewLink(auth.PurposeReceipt, r.ID, now.Add(LinkDays*24*time.Hour))
	data := map[string]any{"Lang": lang, "Purpose": r.PurposeName, "State": i18n.T(lang, "email.receipt.state."+r.State),
		"When": r.RecordedAt.UTC().Format("2006-01-02 15:04 UTC"), "ReceiptID": "urn:uuid:" + r.ID,
		"TextVersion": r.TextVersion, "Text": text.Text, "TextLanguage": text.Language,
		"Link": s.Issuer + LinkPath + link.Placeholder, "Days": LinkDays, "Sender": st.Controller(s.Sender)}
	textBody, html, err := s.Mail.Render("receipt", data)
	if err != nil {
		return fmt.Errorf("receipts: render email: %w", err)
	}
	p, err := s.BuildTx(tx, r)
	if err != nil {
		return err
	}
	issued, err := s.SignTx(tx, p)
	if err != nil {
		return err
	}
	file, err := json.Marshal(issued)
	if err != nil {
		return fmt.Errorf("receipts: encode receipt of record %s: %w", r.ID, err)
	}
	_, err = mail.Enqueue(tx, mail.Message{ContactID: r.ContactID, Kind: mail.KindNotification, Language: lang,
		Subject: i18n.T(lang, "email.receipt.subject"), Text: textBody, HTML: html, SubjectID: r.ID, Links: []mail.Link{link},
		Attachments: []mail.Attachment{{Filename: AttachmentName(r.ID), ContentType: "application/json", Data: file}}}, now)
	return err
}

// ErrNoLink is what ByLink returns for a link that gives no receipt:
// unknown or expired, or whose record is gone.
var ErrNoLink = errors.New("receipts: the link gives no receipt")

// ByLink issues the receipt a receipt email's link names, with its ledger
// proof when the service keeps a tree (as IssueAt, making the checkpoint
// that covers the record's event when none does yet). It changes nothing
// of the contact's: mail scanners open links, and the link works until it
// expires. It returns ErrNoLink for a link that cannot be used.
func (s *Service) ByLink(ctx context.Context, secret string) (*Issued, error) {
	t, err := auth.FindContactToken(readRow{ctx, s.DB}, auth.PurposeReceipt, secret, s.now())
	if errors.Is(err, auth.ErrNoToken) {
		return nil, ErrNoLink
	}
	if err != nil {
		return nil, err
	}
	r, err := s.Consent.RecordByID(ctx, t.SubjectID)
	if errs.Is(err, errs.KindNotFound) || (err == nil && r.ContactID != t.ContactID) {
		return nil, ErrNoLink
	}
	if err != nil {
		return nil, err
	}
	return s.IssueAt(ctx, r.ID, 0)
}

// readRow gives auth's token look-up a row from the read pool.
type readRow struct {
	ctx context.Context
	db  *store.DB
}

func (q readRow) QueryRow(query string, args ...any) *sql.Row {
	return q.db.Read.QueryRowContext(q.ctx, query, args...)
}
