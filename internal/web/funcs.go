package web

import (
	"fmt"
	"html/template"
	"strings"
	"time"

	"github.com/consentry/consentry/internal/auth"
	"github.com/consentry/consentry/internal/consent"
	"github.com/consentry/consentry/internal/contact"
	"github.com/consentry/consentry/internal/contactstate"
	"github.com/consentry/consentry/internal/optin"
	"github.com/consentry/consentry/internal/repermission"
	"github.com/consentry/consentry/internal/web/chart"
)

// languageLabels name the supported languages (i18n.Languages) for the
// operator.
var languageLabels = map[string]string{"en": "English (en)", "sv": "Swedish (sv)", "nl": "Dutch (nl)"}

var funcs = template.FuncMap{
	"role":       roleLabel,
	"optin":      optInLabel,
	"skipReason": skipLabel,
	"when":       when,
	"exact":      exact,
	"can":        func(u *auth.User, p string) bool { return u.Can(auth.Permission(p)) },
	"actor":      actorLabel,
	"basis":      basisLabel,
	"holdBasis":  holdBasisLabel,
	"method":     func(m string) string { return strings.ReplaceAll(m, "_", " ") },
	// dict passes several values to a shared template.
	"dict": func(kv ...any) map[string]any {
		m := map[string]any{}
		for i := 0; i+1 < len(kv); i += 2 {
			m[fmt.Sprint(kv[i])] = kv[i+1]
		}
		return m
	},
	"list":       func(v ...string) []string { return v },
	"on":         checkboxOn,
	"add":        func(a, b int) int { return a + b },
	"figure":     chart.Figure,
	"policy":     func(p string) string { return policyLabels[p] },
	"language":   func(l string) string { return languageLabels[l] },
	"perm":       func(p auth.Permission) string { return permLabels[p] },
	"label":      fieldLabel,
	"coreFields": func() []contact.CoreField { return contact.CoreFields },
	"stateOf": func(states map[string]map[string]string, contactID, purposeID string) string {
		if st := states[contactID][purposeID]; st != "" {
			return st
		}
		return "none"
	},
}

var roleLabels = map[string]string{auth.RoleAdmin: "Admin", auth.RolePrivacyOfficer: "Privacy officer", auth.RoleAgent: "Agent", auth.RoleBilling: "Billing"}

func roleLabel(r string) string {
	if l, ok := roleLabels[r]; ok {
		return l
	}
	return r
}

// optInLabels names every status of contactstate.OptInStatuses (a test
// checks none is missing).
var optInLabels = map[string]string{contactstate.OptInNone: "None", contactstate.SingleOptInUser: "Single opt-in (user)",
	contactstate.SingleOptInWebform: "Single opt-in (webform)", contactstate.DoubleOptIn: "Double opt-in",
	contactstate.OptOutUser: "Opted out (user)", contactstate.OptOutContact: "Opted out (contact)"}

func optInLabel(s string) string {
	if l, ok := optInLabels[s]; ok {
		return l
	}
	return s
}

// basisLabels names every legal basis of consent.LegalBases (a test checks
// none is missing).
var basisLabels = map[string]string{consent.BasisConsent: "Consent", consent.BasisContract: "Contract",
	consent.BasisLegalObligation: "Legal obligation", consent.BasisVitalInterests: "Vital interests",
	consent.BasisPublicTask: "Public task", consent.BasisLegitimateInterests: "Legitimate interests"}

func basisLabel(b string) string {
	if l, ok := basisLabels[b]; ok {
		return l
	}
	return b
}

// when shows a time in UTC to the minute; a nil or zero time shows as "".
func when(v any) string { return timeAs(v, "2006-01-02 15:04 UTC") }

// exact shows a time in UTC to the microsecond, as stored, for evidence;
// a nil or zero time shows as "".
func exact(v any) string { return timeAs(v, "2006-01-02 15:04:05.000000 UTC") }

func timeAs(v any, layout string) string {
	var t time.Time
	switch x := v.(type) {
	case time.Time:
		t = x
	case *time.Time:
		if x == nil {
			return ""
		}
		t = *x
	default:
		return fmt.Sprint(v)
	}
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(layout)
}

// actorLabel says who made a change: a user or an API token by the name
// names holds for its id, the contact, the system or the command line.
func actorLabel(kind, id string, names map[string]string) string {
	switch kind {
	case "user":
		if name := names[id]; name != "" {
			return name
		}
		return "a user"
	case "contact":
		return "the contact"
	case "api_token":
		if name := names[id]; name != "" {
			return "API client “" + name + "”"
		}
		return "API client"
	case "system":
		return "the system"
	case "command_line":
		return "the command line"
	}
	return kind
}

// fieldLabel is a core field's label in forms, or the name itself for any
// other field.
func fieldLabel(name string) string {
	if f, ok := contact.LookupCoreField(name); ok {
		return f.Label
	}
	return name
}

var permLabels = map[auth.Permission]string{auth.PermViewContacts: "See contacts", auth.PermEditContacts: "Edit contacts and consents, import files", auth.PermDelete: "Delete and erase contacts, legal holds, undo imports",
	auth.PermReveal: "Reveal sensitive values", auth.PermSettings: "Settings, webforms, workflows and webhooks", auth.PermAudit: "Access log, ledger, outbox",
	auth.PermUsers: "Users and API tokens", auth.PermRequests: "Data subject requests", auth.PermCampaigns: "Campaigns, their templates and lists"}

var policyLabels = map[string]string{
	"double_only":             "Double opt-in only (recommended): campaigns reach only contacts who confirmed by email",
	"double_and_user":         "Double opt-in, and single opt-ins entered by users",
	"double_user_and_webform": "Double opt-in, single opt-ins by users, and single opt-ins from webforms",
}

// skipLabels say in words why a contact gets no double opt-in email: the
// optin Skip reasons, and the re-permission run's own (repermission
// Skip...), wherever the admin shows one (the contact's page and its
// notices, a re-permission run's report).
var skipLabels = map[string]string{
	optin.SkipNotFound:            "the contact does not exist",
	optin.SkipOptedOut:            "the contact is opted out",
	optin.SkipAlreadyConfirmed:    "the contact has already confirmed their address",
	optin.SkipBounced:             "the address bounced",
	optin.SkipBlocklisted:         "the address is blocklisted",
	optin.SkipProcessingStopped:   "the contact asked to stop processing",
	optin.SkipErased:              "the contact's data was erased",
	optin.SkipErasureRequested:    "the contact asked to be erased",
	optin.SkipHeld:                "a legal hold is on the contact",
	optin.SkipMarketingWithdrawn:  "the contact withdrew their consent to marketing email",
	optin.SkipRecentlyInvited:     "the contact was sent one in the last 24 hours",
	repermission.SkipValidConsent: "the contact has a valid E-marketing consent",
	repermission.SkipWithdrew:     "the contact withdrew their E-marketing consent",
	repermission.SkipAlreadyAsked: "another re-permission run asked the contact and waits for their answer",
	repermission.SkipRunFailed:    "the run failed before it reached the contact",
}

// skipLabel says in words why a contact gets no double opt-in email
// (skipLabels); an unknown code is shown with spaces for its underscores.
func skipLabel(reason string) string {
	if l, ok := skipLabels[reason]; ok {
		return l
	}
	return strings.ReplaceAll(reason, "_", " ")
}
