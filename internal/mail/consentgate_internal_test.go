package mail

import "testing"

// The consent gate: a message resting on a grant stops once the grant is
// withdrawn or expired, one resting on a withdrawal once the contact
// consents again. (Marketing email's own ground, withdrawals of the
// purposes that govern marketing email included, is Ground's, tested in
// TestMarketingGround.)
func TestConsentGate(t *testing.T) {
	granted := consentNow{state: consentGranted}
	withdrawn := consentNow{state: consentWithdrawn}
	expired := consentNow{}
	onGrant := ConsentState{PurposeID: "p", State: consentGranted}
	onWithdrawal := ConsentState{PurposeID: "p", State: consentWithdrawn}
	for _, c := range []struct {
		name     string
		rests    ConsentState
		consents map[string]consentNow
		want     string
	}{
		{"grant stands", onGrant, map[string]consentNow{"p": granted}, ""},
		{"grant withdrawn", onGrant, map[string]consentNow{"p": withdrawn}, ReasonConsentWithdrawn},
		{"grant expired", onGrant, map[string]consentNow{"p": expired}, ReasonConsentWithdrawn},
		{"grant gone", onGrant, nil, ReasonConsentWithdrawn},
		{"withdrawal stands", onWithdrawal, map[string]consentNow{"p": withdrawn}, ""},
		{"withdrawal taken back", onWithdrawal, map[string]consentNow{"p": granted}, ReasonConsentChanged},
		{"another purpose withdrawn", onGrant, map[string]consentNow{"p": granted, "m": withdrawn}, ""},
	} {
		if got := consentGate(c.rests, c.consents); got != c.want {
			t.Errorf("%s: %q, want %q", c.name, got, c.want)
		}
	}
}
