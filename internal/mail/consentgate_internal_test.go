package mail

import "testing"

// The consent gate: a message resting on a grant stops once the grant is
// withdrawn or expired, one resting on a withdrawal once the contact
// consents again; workflow email (marketing) stops for a contact who
// withdrew a purpose that governs marketing email, or whose consent to one
// on the basis of consent expired, and other kinds do not look at those.
func TestConsentGate(t *testing.T) {
	granted := consentNow{state: consentGranted, basis: basisConsent}
	withdrawn := consentNow{state: consentWithdrawn, basis: basisConsent}
	expired := consentNow{expired: true, basis: basisConsent}
	marketing := func(c consentNow, basis string) consentNow { c.marketing, c.basis = true, basis; return c }
	onGrant := ConsentState{PurposeID: "p", State: consentGranted}
	onWithdrawal := ConsentState{PurposeID: "p", State: consentWithdrawn}
	for _, c := range []struct {
		name     string
		kind     string
		rests    ConsentState
		consents map[string]consentNow
		want     string
	}{
		{"grant stands", KindPartner, onGrant, map[string]consentNow{"p": granted}, ""},
		{"grant withdrawn", KindPartner, onGrant, map[string]consentNow{"p": withdrawn}, ReasonConsentWithdrawn},
		{"grant expired", KindPartner, onGrant, map[string]consentNow{"p": expired}, ReasonConsentWithdrawn},
		{"grant gone", KindWorkflow, onGrant, nil, ReasonConsentWithdrawn},
		{"withdrawal stands", KindWorkflow, onWithdrawal, map[string]consentNow{"p": withdrawn}, ""},
		{"withdrawal taken back", KindWorkflow, onWithdrawal, map[string]consentNow{"p": granted}, ReasonConsentChanged},
		{"rests on nothing", KindPartner, ConsentState{}, map[string]consentNow{"p": withdrawn}, ""},
		{"marketing withdrawn", KindWorkflow, ConsentState{}, map[string]consentNow{"m": marketing(withdrawn, basisConsent)}, ReasonNoConsent},
		{"objection to marketing", KindWorkflow, ConsentState{}, map[string]consentNow{"m": marketing(withdrawn, "legitimate_interests")}, ReasonNoConsent},
		{"marketing consent expired", KindWorkflow, ConsentState{}, map[string]consentNow{"m": marketing(expired, basisConsent)}, ReasonNoConsent},
		{"marketing granted", KindWorkflow, ConsentState{}, map[string]consentNow{"m": marketing(granted, basisConsent)}, ""},
		{"no marketing record", KindWorkflow, ConsentState{}, map[string]consentNow{"p": withdrawn}, ""},
		{"partner email is not marketing", KindPartner, ConsentState{}, map[string]consentNow{"m": marketing(withdrawn, basisConsent)}, ""},
	} {
		if got := consentGate(c.kind, c.rests, c.consents); got != c.want {
			t.Errorf("%s: %q, want %q", c.name, got, c.want)
		}
	}
}
