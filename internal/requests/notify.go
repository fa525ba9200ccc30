package requests

import (
	"time"

	"github.com/consentry/consentry/internal/mail"
	"github.com/consentry/consentry/internal/settings"
	"github.com/consentry/consentry/internal/store"
)

// NotifyOperator returns the Notifier that emails the operator's privacy
// address (the setting privacy_address) of each new request: its kind,
// channel, dates and a link to it in the admin UI, and no personal data,
// since the address may be a shared mailbox. With no privacy address set,
// nobody is emailed.
func NotifyOperator(tmpl *mail.Templates, baseURL, sender string) Notifier {
	return func(tx *store.Tx, r *Request, now time.Time) error {
		st, err := settings.InTx(tx)
		if err != nil || st.PrivacyAddress == "" {
			return err
		}
		data := struct {
			Lang, Kind, Channel, Received, Due, Link string
			Sender                                   settings.Controller
		}{Lang: "en", Sender: st.Controller(sender), Kind: r.Kind, Channel: r.Channel, Received: r.ReceivedAt.Format(time.DateOnly),
			Due: r.DueAt.Format(time.DateOnly), Link: baseURL + "/admin/requests/" + r.ID}
		text, html, err := tmpl.Render("request_received", data)
		if err != nil {
			return err
		}
		_, err = mail.Enqueue(tx, mail.Message{Kind: mail.KindOperator, To: st.PrivacyAddress, Language: "en",
			Subject: "Data subject request: " + r.Kind + ", due " + data.Due, Text: text, HTML: html, SubjectID: r.ID}, now)
		return err
	}
}
