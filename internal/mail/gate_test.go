package mail

import (
	"fmt"
	"testing"

	"github.com/consentry/consentry/internal/contactstate"
)

// TestGate covers every kind of email against every state a contact can be
// in, and says for each which reason stops it, if any.
func TestGate(t *testing.T) {
	type state struct {
		name string
		r    Recipient
	}
	ok := Recipient{Exists: true, State: contactstate.State{OptIn: "double_opt_in", Deliverability: "ok"}}
	with := func(f func(*Recipient)) Recipient { r := ok; f(&r); return r }
	states := []state{
		{"double opt-in", ok},
		{"none", with(func(r *Recipient) { r.OptIn = "none" })},
		{"single opt-in by user", with(func(r *Recipient) { r.OptIn = "single_opt_in_user" })},
		{"single opt-in by webform", with(func(r *Recipient) { r.OptIn = "single_opt_in_webform" })},
		{"opted out by user", with(func(r *Recipient) { r.OptIn = "opt_out_user" })},
		{"opted out by contact", with(func(r *Recipient) { r.OptIn = "opt_out_contact" })},
		{"opted out, conversation of their own", with(func(r *Recipient) { r.OptIn = "opt_out_contact"; r.StartedConversation = true })},
		{"bounced", with(func(r *Recipient) { r.Deliverability = "bounced" })},
		{"blocklisted", with(func(r *Recipient) { r.Deliverability = "blocklisted" })},
		{"processing stopped", with(func(r *Recipient) { r.ProcessingStopped = true })},
		{"erased", with(func(r *Recipient) { r.Erased = true })},
		{"erasure requested", with(func(r *Recipient) { r.ErasureRequested = true })},
		{"erasure requested and opted out", with(func(r *Recipient) { r.ErasureRequested = true; r.OptIn = "opt_out_contact" })},
		{"deleted", Recipient{}},
		{"bounced and opted out", with(func(r *Recipient) { r.Deliverability = "bounced"; r.OptIn = "opt_out_contact" })},
	}
	// want[state][kind] is the reason; absent means sent.
	stopAll := func(reason string) map[string]string {
		m := map[string]string{}
		for _, k := range Kinds {
			m[k] = reason
		}
		return m
	}
	optedOut := map[string]string{KindDoubleOptIn: ReasonOptedOut, KindInformed: ReasonOptedOut, KindNotification: ReasonOptedOut,
		KindWorkflow: ReasonOptedOut, KindAdHoc: ReasonOptedOut, KindReply: ReasonOptedOut, KindCampaign: ReasonOptedOut}
	ownConversation := map[string]string{KindDoubleOptIn: ReasonOptedOut, KindInformed: ReasonOptedOut, KindNotification: ReasonOptedOut,
		KindWorkflow: ReasonOptedOut, KindAdHoc: ReasonOptedOut, KindCampaign: ReasonOptedOut}
	// The contact who stopped processing still gets the confirmation of a
	// change they asked for, such as erasure.
	stoppedButConfirmations := stopAll(ReasonProcessingStopped)
	delete(stoppedButConfirmations, KindConfirmation)
	// An email about the contact to a partner does not go to the
	// contact's address, so its deliverability does not stop it.
	notPartner := func(m map[string]string) map[string]string { delete(m, KindPartner); return m }
	want := map[string]map[string]string{
		"double opt-in": {},
		// The opt-in status marketing email needs is its ground's
		// (TestMarketingGround), not the gate's.
		"none":                                 {},
		"single opt-in by user":                {},
		"single opt-in by webform":             {},
		"opted out by user":                    optedOut,
		"opted out by contact":                 optedOut,
		"opted out, conversation of their own": ownConversation,
		"bounced":                              notPartner(stopAll(ReasonBounced)),
		"blocklisted":                          notPartner(stopAll(ReasonBlocklisted)),
		"processing stopped":                   stoppedButConfirmations,
		"erased":                               stopAll(ReasonErased),
		// Marketing and workflow email, and asking them to subscribe,
		// stop at once; what the contact needs to exercise their rights
		// still goes.
		"erasure requested": {KindWorkflow: ReasonErasureRequested, KindCampaign: ReasonErasureRequested, KindPartner: ReasonErasureRequested,
			KindDoubleOptIn: ReasonErasureRequested},
		"erasure requested and opted out": {KindDoubleOptIn: ReasonErasureRequested, KindInformed: ReasonOptedOut, KindNotification: ReasonOptedOut,
			KindWorkflow: ReasonErasureRequested, KindAdHoc: ReasonOptedOut, KindReply: ReasonOptedOut, KindCampaign: ReasonErasureRequested,
			KindPartner: ReasonErasureRequested},
		"deleted":               stopAll(ReasonErased),
		"bounced and opted out": notPartner(stopAll(ReasonBounced)),
	}
	for _, s := range states {
		for _, kind := range Kinds {
			if kind == KindOperator {
				continue // to the operator's own address: never about a contact, never gated
			}
			if kind == KindRequestConfirmation {
				continue // to a fixed address; a contact's, if any, is gated as a confirmation (fixedGate)
			}
			t.Run(fmt.Sprintf("%s/%s", s.name, kind), func(t *testing.T) {
				if got := Gate(kind, s.r); got != want[s.name][kind] {
					t.Fatalf("reason %q, want %q", got, want[s.name][kind])
				}
			})
		}
	}
}
