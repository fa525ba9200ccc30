package consent

import (
	"fmt"
	"strings"

	"github.com/consentry/consentry/internal/contactstate"
	"github.com/consentry/consentry/internal/errs"
)

// Channel is the way an opt-in change arrives. The rules depend on it, not on
// what the caller claims about itself.
type Channel string

const (
	// ChannelUserCreate: a user or API client creating or importing a contact.
	ChannelUserCreate Channel = "user_create"
	// ChannelUser: a user or API client changing an existing contact.
	ChannelUser Channel = "user"
	// ChannelConfirmation: the contact clicked the confirmation link of a
	// double opt-in email.
	ChannelConfirmation Channel = "confirmation"
	// ChannelWebform: the contact submitted a webform with the marketing box
	// checked.
	ChannelWebform Channel = "webform"
	// ChannelContact: the contact's own choice on the preferences page or an
	// unsubscribe link.
	ChannelContact Channel = "contact"
)

// CheckOptIn decides whether the opt-in status may go from from to to through
// ch. It returns changed=false with no error when the status stays as it is
// (for example a webform submission by a contact who has already confirmed a
// double opt-in), and a refused error that says why when the rules forbid the
// change:
//
//   - R1: an opt-out by the contact is lifted only by the contact submitting a
//     webform; an opt-out by a user may be lifted by a user.
//   - R3: double_opt_in comes only from a confirmation link, and never
//     overrides an opt-out.
//   - R5: single_opt_in_user is set only by users, when they create or import
//     the contact.
//   - R6: new contacts start at none.
func CheckOptIn(from, to string, ch Channel) (changed bool, err error) {
	if !validOneOf(to, contactstate.OptInStatuses) {
		return false, errs.Invalid("status", "must be one of %s", strings.Join(contactstate.OptInStatuses, ", "))
	}
	refuse := func(code, format string, args ...any) (bool, error) {
		return false, errs.Refused(code, "status", format, args...)
	}
	// Who may set what comes first, so that asking for a status one may not
	// set is refused even when the contact already has it.
	switch {
	case to == contactstate.DoubleOptIn && ch != ChannelConfirmation:
		return refuse("double_opt_in_needs_confirmation", "%s is set only when the contact clicks the confirmation link of a double opt-in email", contactstate.DoubleOptIn)
	case to == contactstate.SingleOptInUser && ch != ChannelUserCreate:
		return refuse("single_opt_in_user_on_create_only", "%s is set only by users when they create or import a contact", contactstate.SingleOptInUser)
	case to == contactstate.SingleOptInWebform && ch != ChannelWebform:
		return refuse("webform_only", "%s is set only by a webform submission", contactstate.SingleOptInWebform)
	case to == contactstate.OptOutContact && ch != ChannelContact:
		return refuse("contact_only", "%s is set only by the contact (preferences page or unsubscribe link); use %s to opt a contact out", contactstate.OptOutContact, contactstate.OptOutUser)
	case to == contactstate.OptOutUser && ch != ChannelUser && ch != ChannelUserCreate:
		return refuse("transition_not_allowed", "%s is set only by users", contactstate.OptOutUser)
	case ch == ChannelUserCreate && from != contactstate.OptInNone:
		return refuse("starting_status_on_create_only", "a starting opt-in status is set only when a contact is created or imported")
	}
	if from == to {
		return false, nil
	}
	switch to {
	case contactstate.OptInNone:
		if ch == ChannelUser && (from == contactstate.OptOutUser || from == contactstate.SingleOptInUser) {
			return true, nil
		}
		if from == contactstate.OptOutContact {
			return refuse("contact_opt_out_irreversible", "the contact opted out themselves; only the contact can opt back in, by submitting a webform")
		}
		return refuse("transition_not_allowed", "a user can reset the opt-in status to none only from %s or %s", contactstate.OptOutUser, contactstate.SingleOptInUser)
	case contactstate.SingleOptInUser:
		if ch != ChannelUserCreate {
			return refuse("single_opt_in_user_on_create_only", "%s is set only by users when they create or import a contact", contactstate.SingleOptInUser)
		}
		return true, nil
	case contactstate.SingleOptInWebform:
		if ch != ChannelWebform {
			return refuse("webform_only", "%s is set only by a webform submission", contactstate.SingleOptInWebform)
		}
		if from == contactstate.DoubleOptIn {
			return false, nil // a confirmed contact stays confirmed
		}
		return true, nil
	case contactstate.DoubleOptIn:
		if ch != ChannelConfirmation {
			return refuse("double_opt_in_needs_confirmation", "%s is set only when the contact clicks the confirmation link of a double opt-in email", contactstate.DoubleOptIn)
		}
		if from == contactstate.OptOutUser || from == contactstate.OptOutContact {
			return refuse("opted_out", "the contact is opted out (%s); a confirmation link does not override an opt-out", from)
		}
		return true, nil
	case contactstate.OptOutUser:
		if ch != ChannelUser && ch != ChannelUserCreate {
			return refuse("transition_not_allowed", "%s is set only by users", contactstate.OptOutUser)
		}
		if from == contactstate.OptOutContact {
			return refuse("contact_opt_out_irreversible", "the contact opted out themselves; a user cannot change that")
		}
		return true, nil
	case contactstate.OptOutContact:
		if ch != ChannelContact {
			return refuse("contact_only", "%s is set only by the contact (preferences page or unsubscribe link); use %s to opt a contact out", contactstate.OptOutContact, contactstate.OptOutUser)
		}
		return true, nil
	}
	panic(fmt.Sprintf("consent: opt-in status %q has no rule", to))
}

// StatusesThrough lists the opt-in statuses that a change through ch may
// ask for from some status, in the order of contactstate.OptInStatuses. The
// API's documented enums come from it, so they say what CheckOptIn allows.
func StatusesThrough(ch Channel) []string {
	var out []string
	for _, to := range contactstate.OptInStatuses {
		for _, from := range contactstate.OptInStatuses {
			if _, err := CheckOptIn(from, to, ch); err == nil {
				out = append(out, to)
				break
			}
		}
	}
	return out
}
