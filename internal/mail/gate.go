package mail

import "github.com/consentry/consentry/internal/contactstate"

// Reasons a message is not sent.
const (
	ReasonErased            = "contact_erased"
	ReasonProcessingStopped = "processing_stopped"
	ReasonBounced           = "bounced"
	ReasonBlocklisted       = "blocklisted"
	ReasonOptedOut          = "opted_out"
	// The contact asked for their data to be erased (an erasure that a
	// legal hold keeps waiting, or one not yet carried out): marketing and
	// workflow email stop at once.
	ReasonErasureRequested = "erasure_requested"
	// The message's personal link expired before it could be sent (the
	// mail server was out of reach for longer than the link lives): it
	// would lead nowhere.
	ReasonLinkExpired = "link_expired"
	// The message's links could not be read; it is set aside rather than
	// holding up the rest of the outbox.
	ReasonLinksUnreadable = "links_unreadable"
)

// Recipient is what the gate knows about a contact at send time.
type Recipient struct {
	Exists bool // false once the contact is deleted
	contactstate.State
	// StartedConversation is set for a reply whose conversation the
	// contact started.
	StartedConversation bool
}

// Gate decides, as the message is taken for sending, whether a message of
// kind may go to r. It returns "" to send, or the reason not to.
//
// The rules, in order: an erased or deleted contact, one who stopped
// processing (except the confirmation of a change they asked for), a
// bounced or blocklisted address get nothing. A contact who asked to be
// erased gets no campaign or workflow email. An opt-out
// (by the contact or a user) stops every new email (R2) except a reply in a
// conversation the contact started, and a confirmation link for a change
// the contact asked for, which is part of the same exchange. The contact's
// consents are checked after: a message resting on a consent
// (consentGate), and marketing email (IsMarketing) against the ground a
// campaign needs (Ground).
func Gate(kind string, r Recipient) string {
	if kind == KindPartner {
		return GatePartner(r)
	}
	switch {
	case !r.Exists || r.Erased:
		return ReasonErased
	case r.ProcessingStopped && kind != KindConfirmation:
		// The confirmation of a change the contact asked for (erasure, a
		// withdrawal) still goes: stopping processing must not stop them
		// exercising their other rights.
		return ReasonProcessingStopped
	case r.Deliverability == contactstate.DeliverabilityBounced:
		return ReasonBounced
	case r.Deliverability == contactstate.DeliverabilityBlocklisted:
		return ReasonBlocklisted
	case r.ErasureRequested && (kind == KindCampaign || kind == KindWorkflow || kind == KindDoubleOptIn):
		return ReasonErasureRequested
	}
	if contactstate.OptedOut(r.OptIn) {
		exempt := (kind == KindReply && r.StartedConversation) || kind == KindConfirmation
		if !exempt {
			return ReasonOptedOut
		}
	}
	return ""
}

// GatePartner decides whether an email about contact r to a partner's
// address (KindPartner) may go: not once the contact was erased or
// deleted, stopped processing or asked to be erased. Their opt-in status
// and their address's deliverability do not matter: the email is not to
// them, and sharing rests on their consent, which the rule that queued it
// checked.
func GatePartner(r Recipient) string {
	switch {
	case !r.Exists || r.Erased:
		return ReasonErased
	case r.ProcessingStopped:
		return ReasonProcessingStopped
	case r.ErasureRequested:
		return ReasonErasureRequested
	}
	return ""
}
