package settings

import (
	"strings"

	"github.com/consentry/consentry/internal/errs"
)

// DefaultJurisdiction is the jurisdiction a consent receipt names when the
// operator has set none: the settings know no country of the operator's,
// and Consentry is made for the GDPR.
const DefaultJurisdiction = "EU"

// Receipts are the settings of consent receipts (SPEC B2, docs/receipts.md):
// what a receipt says of the operator beyond their identity, and whether
// a contact is sent one.
type Receipts struct {
	ReceiptJurisdiction string `json:"receipt_jurisdiction" doc:"the jurisdiction a consent receipt names: where the operator is established, as an ISO 3166 country code (SE, NL) or EU (empty: EU)"`
	PrivacyPolicyURL    string `json:"privacy_policy_url" doc:"the operator's privacy policy, an https address, named as policyUrl in every consent receipt (empty: none named)"`
	EmailReceipts       bool   `json:"email_receipts" doc:"after a contact confirms a consent (double opt-in, a webform post they confirmed, or their preferences page), email them a summary of their consent receipt, the signed receipt attached and a link to download it with its ledger proof"`
}

// ReceiptsPatch changes some receipt settings; nil fields stay.
type ReceiptsPatch struct {
	ReceiptJurisdiction *string `json:"receipt_jurisdiction"`
	PrivacyPolicyURL    *string `json:"privacy_policy_url"`
	EmailReceipts       *bool   `json:"email_receipts"`
}

// Jurisdiction is the jurisdiction receipts name: the setting, else
// DefaultJurisdiction.
func (r Receipts) Jurisdiction() string {
	if r.ReceiptJurisdiction == "" {
		return DefaultJurisdiction
	}
	return r.ReceiptJurisdiction
}

// applyReceipts checks and applies the receipt settings.
func (p *ReceiptsPatch) applyReceipts(s *Receipts) error {
	if v := p.ReceiptJurisdiction; v != nil {
		if err := errs.OptionalLine("receipt_jurisdiction", v, 20); err != nil {
			return err
		}
		for _, c := range *v {
			if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c == '-') {
				return errs.Invalid("receipt_jurisdiction", "must be a country code such as SE or NL, or EU")
			}
		}
		s.ReceiptJurisdiction = strings.ToUpper(*v)
	}
	if v := p.PrivacyPolicyURL; v != nil {
		u, err := errs.WebAddress("privacy_policy_url", *v, maxWebsite, "https://example.org/privacy")
		if err != nil {
			return err
		}
		s.PrivacyPolicyURL = u
	}
	if p.EmailReceipts != nil {
		s.EmailReceipts = *p.EmailReceipts
	}
	return nil
}
