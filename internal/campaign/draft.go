package campaign

import (
	"context"
	"fmt"
	"slices"

	"github.com/consentry/consentry/internal/errs"
	"github.com/consentry/consentry/internal/settings"
)

// The example contact that test messages and the editor's preview are
// made out to when no real contact is chosen.
const (
	SampleFirstName = "Alex"
	SampleLastName  = "Example"
)

// RenderDraft shows content that is not saved yet, for the editor's live
// preview: in is a campaign as Create takes it, rendered by the same code
// that sends, with links that lead nowhere. With contactID empty it is
// made out to the example contact in language lang (the variant being
// edited); otherwise to contactID as the campaign's rules see them now,
// in their language, with why they would not get it.
//
// Only what rendering needs is checked, as Create checks it: the purpose,
// template, audience rules and default language, and each variant's size
// and tags; no variant at all is an invalid error on "variants". An unknown tag is an invalid error on variants[i].subject,
// .html or .text, naming the tag. A name, a subject or a body may still
// be missing; a contact, though, needs the audience rules (lists or a
// condition) to be read by. An unknown contact is a not-found error
// (field "contact"). Nothing is written.
func (x *Sender) RenderDraft(ctx context.Context, in Input, lang, contactID string) (*Rendered, error) {
	s := x.Service
	st, err := settings.Get(ctx, s.DB.Read)
	if err != nil {
		return nil, err
	}
	c := &Campaign{ListIDs: []string{}, DefaultLanguage: st.DefaultLanguage}
	if err := s.checkRules(ctx, c, in); err != nil {
		return nil, err
	}
	if in.Variants != nil {
		c.Variants = slices.Clone(*in.Variants)
	}
	if len(c.Variants) == 0 {
		return nil, errs.Invalid("variants", "nothing to show yet: give a subject or an HTML body")
	}
	for i := range c.Variants {
		if err := checkContent(fmt.Sprintf("variants[%d]", i), &c.Variants[i]); err != nil {
			return nil, err
		}
	}
	if contactID != "" {
		p, err := x.prepare(ctx, c)
		if err != nil {
			return nil, err
		}
		return p.renderFor(ctx, s.DB.Read, contactID)
	}
	p, err := s.compose(ctx, c, x.Links, x.From, x.Domain)
	if err != nil {
		return nil, err
	}
	return p.rendered(&recipient{first: SampleFirstName, last: SampleLastName, lang: lang})
}
