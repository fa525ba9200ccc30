package workflow

import (
	"encoding/json"
	"slices"
	"strings"

	"github.com/consentry/consentry/internal/auth"
	"github.com/consentry/consentry/internal/campaign"
	"github.com/consentry/consentry/internal/contact"
	"github.com/consentry/consentry/internal/errs"
)

// Action types.
const (
	// EmailContact emails the contact: subject, text and optional HTML
	// with the tags of ContactTags. It is queued as mail.KindWorkflow and
	// goes only if the send gate allows (an opted-out, stopped or erased
	// contact gets nothing, R2), on the ground a campaign for E-marketing
	// needs (mail.Ground: nothing to one who withdrew a purpose that
	// governs marketing email, or whom the campaign opt-in policy does not
	// reach), with an unsubscribe link.
	EmailContact = "email_contact"
	// EmailAddress emails a fixed address (a partner) the contact's
	// fields the rule picked, label: value, sensitive ones masked; as
	// mail.KindPartner, which the gate stops once the contact stopped
	// processing or asked to be erased, or, queued on a consent event,
	// withdrew that consent (mail.Message.Consent).
	EmailAddress = "email_address"
	// Webhook calls a webhook endpoint with the event.
	Webhook = "webhook"
	// ListAdd and ListRemove subscribe the contact to a list or
	// unsubscribe them from it.
	ListAdd    = "list_add"
	ListRemove = "list_remove"
	// SetField sets one core or custom field; not the address and not a
	// sensitive field.
	SetField = "set_field"
	// DoubleOptIn sends the double opt-in email, to the contacts who may
	// get one (optin.Service.InviteTx).
	DoubleOptIn = "double_opt_in"
	// NotifyUsers emails the admin users of the roles it names, or the
	// operator's privacy address when it names none, a subject and text,
	// with a link to the contact in the admin pages and no personal data
	// (the privacy address may be a shared mailbox).
	NotifyUsers = "notify_users"
)

// ActionTypes lists the action types.
var ActionTypes = []string{EmailContact, EmailAddress, Webhook, ListAdd, ListRemove, SetField, DoubleOptIn, NotifyUsers}

// ContactTags are the tags an email to the contact may hold; each is
// replaced as for a campaign (package campaign): the names when the email
// is queued, the links as it is sent.
var ContactTags = []string{campaign.TagFirstName, campaign.TagLastName, campaign.TagPreferencesURL, campaign.TagUnsubscribeURL}

// Action is one thing a rule does. Which fields it takes depends on its
// type; the others must be left out.
type Action struct {
	Type    string `json:"type" required:"true" enum:"email_contact,email_address,webhook,list_add,list_remove,set_field,double_opt_in,notify_users"`
	Subject string `json:"subject,omitempty" doc:"email_contact, email_address, notify_users"`
	Text    string `json:"text,omitempty" doc:"email_contact (required), notify_users and email_address (an introduction): plain text"`
	HTML    string `json:"html,omitempty" doc:"email_contact: an optional HTML part"`
	// To is the partner's address of an email_address action.
	To string `json:"to,omitempty" doc:"email_address: the address to email"`
	// Fields are the contact's fields an email_address action lists.
	Fields []string `json:"fields,omitempty" doc:"email_address: the core and custom fields to send; sensitive ones go masked"`
	// EndpointID is the webhook endpoint a webhook action calls.
	EndpointID string `json:"endpoint_id,omitempty" doc:"webhook: the endpoint's id"`
	// List is the list of list_add and list_remove: its id (a name is
	// resolved to the id when the rule is saved).
	List string `json:"list,omitempty" doc:"list_add, list_remove: the list's id or name"`
	// Field and Value are what set_field sets.
	Field string `json:"field,omitempty" doc:"set_field: a core or custom field, not the address nor a sensitive field"`
	Value any    `json:"value,omitempty" doc:"set_field: the value, of the field's type"`
	// Roles are the roles of the users a notify_users action emails.
	Roles []string `json:"roles,omitempty" doc:"notify_users: email the users, not disabled, of these roles (admin, privacy_officer, agent, billing); none: the privacy address (Settings)"`
}

// takes lists the fields each action type takes, by JSON name, and which
// of them it needs.
var takes = map[string]struct{ allowed, required []string }{
	EmailContact: {[]string{"subject", "text", "html"}, []string{"subject", "text"}},
	EmailAddress: {[]string{"to", "subject", "text", "fields"}, []string{"to", "subject", "fields"}},
	Webhook:      {[]string{"endpoint_id"}, []string{"endpoint_id"}},
	ListAdd:      {[]string{"list"}, []string{"list"}},
	ListRemove:   {[]string{"list"}, []string{"list"}},
	SetField:     {[]string{"field", "value"}, []string{"field", "value"}},
	DoubleOptIn:  {},
	NotifyUsers:  {[]string{"subject", "text", "roles"}, []string{"subject"}},
}

// given returns the JSON names of a's fields that are set.
func (a *Action) given() []string {
	var out []string
	for name, set := range map[string]bool{"subject": a.Subject != "", "text": a.Text != "", "html": a.HTML != "", "to": a.To != "",
		"fields": len(a.Fields) > 0, "roles": len(a.Roles) > 0, "endpoint_id": a.EndpointID != "", "list": a.List != "", "field": a.Field != "", "value": a.Value != nil} {
		if set {
			out = append(out, name)
		}
	}
	slices.Sort(out)
	return out
}

// Trim clears the fields a's type does not take, so that a form that
// shows every field for every type (the admin editor) makes a valid
// action from what it posts. An unknown type takes none; checking the
// action then names the type.
func (a *Action) Trim() {
	t := takes[a.Type]
	keep := func(name string) bool { return slices.Contains(t.allowed, name) }
	for _, f := range []struct {
		name string
		p    *string
	}{{"subject", &a.Subject}, {"text", &a.Text}, {"html", &a.HTML}, {"to", &a.To}, {"endpoint_id", &a.EndpointID},
		{"list", &a.List}, {"field", &a.Field}} {
		if !keep(f.name) {
			*f.p = ""
		}
	}
	if !keep("fields") {
		a.Fields = nil
	}
	if !keep("roles") {
		a.Roles = nil
	}
	if !keep("value") {
		a.Value = nil
	}
}

// checkShape checks a's type, that it has the fields its type needs and
// no other, and their lengths; at names it ("actions[2]").
func (a *Action) checkShape(at string) error {
	t, ok := takes[a.Type]
	if a.Type == "" {
		return errs.Required(at + ".type")
	}
	if !ok {
		return errs.Invalid(at+".type", "must be one of %s", strings.Join(ActionTypes, ", "))
	}
	given := a.given()
	for _, g := range given {
		if !slices.Contains(t.allowed, g) {
			return errs.Invalid(at+"."+g, "is not used by a %s action", a.Type)
		}
	}
	for _, r := range t.required {
		if !slices.Contains(given, r) {
			return errs.Required(at + "." + r)
		}
	}
	if slices.Contains(t.allowed, "subject") {
		if err := errs.TrimLine(at+".subject", &a.Subject, 200); err != nil {
			return err
		}
	}
	if err := errs.OptionalText(at+".text", &a.Text, 100000); err != nil {
		return err
	}
	if a.Text == "" && slices.Contains(t.required, "text") {
		return errs.Required(at + ".text")
	}
	if err := errs.OptionalText(at+".html", &a.HTML, 200000); err != nil {
		return err
	}
	switch a.Type {
	case EmailContact:
		if err := campaign.CheckTags(at+".subject", a.Subject, ContactTags[:2]); err != nil {
			return err // the names only: links are filled in the bodies
		}
		if err := campaign.CheckTags(at+".text", a.Text, ContactTags); err != nil {
			return err
		}
		if err := campaign.CheckTags(at+".html", a.HTML, ContactTags); err != nil {
			return err
		}
	}
	return a.checkOwnFields(at)
}

// checkOwnFields checks the fields only some types take.
func (a *Action) checkOwnFields(at string) error {
	if a.To != "" {
		to, err := contact.NormalizeEmail(a.To)
		if err != nil {
			return errs.WithField(err, errs.Field(at+".to"))
		}
		a.To = to
	}
	if len(a.Fields) > 50 {
		return errs.Invalid(at+".fields", "may name at most 50 fields")
	}
	for i, f := range a.Fields {
		if f == "" || slices.Contains(a.Fields[:i], f) {
			return errs.Invalid(at+".fields", "names %q twice or an empty field", f)
		}
	}
	for i, r := range a.Roles {
		if !slices.Contains(auth.Roles, r) || slices.Contains(a.Roles[:i], r) {
			return errs.Invalid(at+".roles", "names %q, which is not a role or is named twice; the roles are %s", r, strings.Join(auth.Roles, ", "))
		}
	}
	for _, f := range []struct {
		name string
		p    *string
	}{{"endpoint_id", &a.EndpointID}, {"list", &a.List}, {"field", &a.Field}} {
		if err := errs.OptionalLine(at+"."+f.name, f.p, 200); err != nil {
			return err
		}
	}
	if n, ok := a.Value.(json.Number); ok {
		if _, err := n.Float64(); err != nil {
			return errs.Invalid(at+".value", "is not a number a field can hold")
		}
	}
	switch a.Value.(type) {
	case nil, string, bool, float64, json.Number:
	default:
		return errs.Invalid(at+".value", "must be a string, a number or true or false")
	}
	return nil
}

// check checks a against the installation, once its shape is right, and
// resolves a list name to its id.
func (a *Action) check(at string, env *Env) error {
	switch a.Type {
	case EmailAddress:
		for _, f := range a.Fields {
			if _, ok := env.Fields[f]; !ok {
				return errs.Invalid(at+".fields", "%q is not a core or custom field", f)
			}
		}
	case Webhook:
		if env.Endpoint != nil && !env.Endpoint(a.EndpointID) {
			return errs.Invalid(at+".endpoint_id", "is not a webhook endpoint")
		}
	case ListAdd, ListRemove:
		id, ok := env.ListID(a.List)
		if !ok {
			return errs.Invalid(at+".list", "is not a list")
		}
		a.List = id
	case SetField:
		v, err := env.SetValue(a.Field, a.Value)
		if err != nil {
			return errs.WithField(err, func(f string) string { return at + "." + f })
		}
		a.Value = v
	}
	return nil
}
