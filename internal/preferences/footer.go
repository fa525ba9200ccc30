package preferences

import (
	"strings"
	"time"

	"github.com/consentry/consentry/internal/mail"
	"github.com/consentry/consentry/internal/settings"
	"github.com/consentry/consentry/internal/store"
)

// AppendFooterTx returns text with the footer linking to the contact's
// preferences page when the operator turned it on (R15), and the link to
// queue with the email (its token is issued as the email is sent); text
// unchanged and no link when the footer is off. Email written by a user
// and by a workflow rule carry the same footer.
func AppendFooterTx(tx *store.Tx, baseURL string, f Footer, text string, now time.Time) (string, []mail.Link, error) {
	if !f.Enabled {
		return text, nil, nil
	}
	st, err := settings.InTx(tx)
	if err != nil {
		return "", nil, err
	}
	url, link := PageLink(baseURL, st, now)
	text = strings.TrimRight(text, "\n") + "\n\n-- \n"
	if f.Text != "" {
		text += f.Text + "\n"
	}
	text += f.LinkText + ": " + url + "\n"
	return text, []mail.Link{link}, nil
}
