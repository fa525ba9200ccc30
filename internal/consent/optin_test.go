package consent

import (
	"fmt"
	"slices"
	"testing"

	"github.com/consentry/consentry/internal/contactstate"
	"github.com/consentry/consentry/internal/errs"
)

// TestOptInRules checks every from x to x channel combination against the
// transitions SPEC R1, R3, R5 and R6 allow. Anything not listed must be
// refused or leave the status unchanged.
func TestOptInRules(t *testing.T) {
	type key struct {
		from, to string
		ch       Channel
	}
	allowed := map[key]bool{}
	allow := func(ch Channel, to string, froms ...string) {
		for _, f := range froms {
			allowed[key{f, to, ch}] = true
		}
	}
	// Users creating a contact may start it single opt-in or opted out (R5, R6).
	allow(ChannelUserCreate, contactstate.SingleOptInUser, contactstate.OptInNone)
	allow(ChannelUserCreate, contactstate.OptOutUser, contactstate.OptInNone)
	// Users may opt a contact out unless the contact already did, and lift
	// their own opt-out (R1).
	allow(ChannelUser, contactstate.OptOutUser, contactstate.OptInNone, contactstate.SingleOptInUser, contactstate.SingleOptInWebform, contactstate.DoubleOptIn)
	allow(ChannelUser, contactstate.OptInNone, contactstate.OptOutUser, contactstate.SingleOptInUser)
	// Only a confirmation link sets double opt-in, never over an opt-out (R3).
	allow(ChannelConfirmation, contactstate.DoubleOptIn, contactstate.OptInNone, contactstate.SingleOptInUser, contactstate.SingleOptInWebform)
	// A webform opts in, and is the one way back from the contact's own
	// opt-out (R1, R4).
	allow(ChannelWebform, contactstate.SingleOptInWebform, contactstate.OptInNone, contactstate.SingleOptInUser, contactstate.OptOutUser, contactstate.OptOutContact)
	// The contact may always opt out.
	allow(ChannelContact, contactstate.OptOutContact, contactstate.OptInNone, contactstate.SingleOptInUser, contactstate.SingleOptInWebform, contactstate.DoubleOptIn, contactstate.OptOutUser)

	unchanged := map[key]bool{
		{contactstate.DoubleOptIn, contactstate.SingleOptInWebform, ChannelWebform}: true, // a confirmed contact stays confirmed
	}
	// Which statuses each channel may ask for at all; asking for another is
	// refused even when the contact already has it.
	mayAsk := map[Channel][]string{
		ChannelUserCreate:   {contactstate.OptInNone, contactstate.SingleOptInUser, contactstate.OptOutUser},
		ChannelUser:         {contactstate.OptInNone, contactstate.OptOutUser},
		ChannelConfirmation: {contactstate.DoubleOptIn, contactstate.OptInNone},
		ChannelWebform:      {contactstate.SingleOptInWebform, contactstate.OptInNone},
		ChannelContact:      {contactstate.OptOutContact, contactstate.OptInNone},
	}
	channels := []Channel{ChannelUserCreate, ChannelUser, ChannelConfirmation, ChannelWebform, ChannelContact}
	for _, from := range contactstate.OptInStatuses {
		for _, to := range contactstate.OptInStatuses {
			for _, ch := range channels {
				k := key{from, to, ch}
				t.Run(fmt.Sprintf("%s->%s/%s", from, to, ch), func(t *testing.T) {
					changed, err := CheckOptIn(from, to, ch)
					switch {
					case (from == to && slices.Contains(mayAsk[ch], to) && (ch != ChannelUserCreate || from == contactstate.OptInNone)) || unchanged[k]:
						if changed || err != nil {
							t.Fatalf("want unchanged, got changed=%v err=%v", changed, err)
						}
					case allowed[k]:
						if !changed || err != nil {
							t.Fatalf("want allowed, got changed=%v err=%v", changed, err)
						}
					default:
						e := errs.As(err)
						if changed || e == nil || e.Kind != errs.KindRefused || e.Message == "" {
							t.Fatalf("want refused with a reason, got changed=%v err=%v", changed, err)
						}
					}
				})
			}
		}
	}
	// An unknown status is refused with the statuses listed as words, not
	// as a Go slice.
	if _, err := CheckOptIn(contactstate.OptInNone, "subscribed", ChannelUser); !errs.Is(err, errs.KindInvalid) ||
		errs.As(err).Message != "must be one of none, single_opt_in_user, single_opt_in_webform, double_opt_in, opt_out_user, opt_out_contact" {
		t.Fatalf("unknown status: %v", err)
	}
}
