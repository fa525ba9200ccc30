package web

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/consentry/consentry/internal/audit"
	"github.com/consentry/consentry/internal/auth"
	"github.com/consentry/consentry/internal/contact"
	"github.com/consentry/consentry/internal/errs"
	"github.com/consentry/consentry/internal/httpx"
	"github.com/consentry/consentry/internal/lists"
	"github.com/consentry/consentry/internal/workflow"
)

// Workflow rules send the contact's data to partners and change consents
// through lists, so those who keep the purposes and webforms keep them.
func (s *Server) workflowRoutes() {
	wf := func(h handler) http.HandlerFunc { return s.need(auth.PermSettings, h) }
	s.mux.HandleFunc("GET /admin/workflows", wf(s.workflowsPage))
	s.mux.HandleFunc("GET /admin/workflows/new", wf(s.newWorkflowPage))
	s.post("/admin/workflows", longForm, wf(s.saveWorkflow))
	s.mux.HandleFunc("GET /admin/workflows/runs", wf(s.workflowRunsPage))
	s.mux.HandleFunc("GET /admin/workflows/{id}", wf(s.workflowPage))
	s.post("/admin/workflows/{id}", longForm, wf(s.saveWorkflow))
	s.post("/admin/workflows/{id}/enabled", smallForm, wf(s.enableWorkflow))
	s.post("/admin/workflows/{id}/delete", smallForm, wf(s.deleteWorkflow))
	s.mux.HandleFunc("GET /admin/workflows/{id}/runs", wf(s.workflowRunsPage))
}

// workflowDone are the notices shown after a rule's form succeeded and
// redirected, by the done= the redirect carries.
var workflowDone = map[string]string{"saved": "Rule saved.", "deleted": "Rule deleted.", "on": "Rule turned on.", "off": "Rule turned off."}

// actionLabels name the action types as the editor and the run log say
// them.
var actionLabels = map[string]string{
	workflow.EmailContact: "Email the contact",
	workflow.EmailAddress: "Email an address (a partner) the contact's fields",
	workflow.Webhook:      "Call a webhook",
	workflow.ListAdd:      "Subscribe to a list",
	workflow.ListRemove:   "Unsubscribe from a list",
	workflow.SetField:     "Set a field",
	workflow.DoubleOptIn:  "Send the double opt-in email",
	workflow.NotifyUsers:  "Notify users, or the privacy address",
}

// triggerLabel is an event type in words, with its name: "Consent
// granted (consent.granted)".
func triggerLabel(t string) string {
	words := strings.NewReplacer(".", " ", "_", " ").Replace(t)
	if words == "" {
		return ""
	}
	return strings.ToUpper(words[:1]) + words[1:] + " (" + t + ")"
}

func init() {
	funcs["trigger"] = triggerLabel
	funcs["action"] = func(t string) string { return actionLabels[t] }
	funcs["delay"] = func(minutes int) string {
		n, unit := delayIn(minutes)
		if n == "1" {
			unit = strings.TrimSuffix(unit, "s")
		}
		return n + " " + unit
	}
}

// delayUnits are the units the editor offers for a delay, in minutes.
var delayUnits = []struct {
	Name    string
	Minutes int
}{{"minutes", 1}, {"hours", 60}, {"days", 24 * 60}}

// delayIn is a delay of minutes in the largest unit that holds it whole.
func delayIn(minutes int) (string, string) {
	for i := len(delayUnits) - 1; i >= 0; i-- {
		if u := delayUnits[i]; minutes != 0 && minutes%u.Minutes == 0 {
			return strconv.Itoa(minutes / u.Minutes), u.Name
		}
	}
	return strconv.Itoa(minutes), "minutes"
}

// ruleRow is a rule on the list of rules, with when it last ran.
type ruleRow struct {
	*workflow.Rule
	On      bool
	LastRun *time.Time
}

func (s *Server) workflowsPage(w http.ResponseWriter, r *http.Request, u *auth.User) {
	ctx := r.Context()
	rules, err := s.Workflows.List(ctx)
	if err != nil {
		s.fail(w, err, u)
		return
	}
	// One look-up a rule, on the index of each rule's runs: an
	// installation has tens of rules.
	rows := make([]ruleRow, len(rules))
	for i, rule := range rules {
		rows[i].Rule, rows[i].On = rule, rule.Enabled == nil || *rule.Enabled
		runs, _, err := s.Workflows.Runs(ctx, workflow.RunQuery{RuleID: rule.ID, Limit: 1})
		if err != nil {
			s.fail(w, err, u)
			return
		}
		if len(runs) == 1 {
			rows[i].LastRun = &runs[0].CreatedAt
		}
	}
	s.render(w, http.StatusOK, "workflows", page{Title: "Workflow rules", User: u, Nav: "workflows",
		Flash: workflowDone[r.URL.Query().Get("done")], Data: rows})
}

// ruleForm is the editor's form: a rule as typed, its actions renumbered
// from 0 in the order they are kept.
type ruleForm struct {
	Name, Trigger, Condition string
	Delay, Unit              string
	Enabled                  bool
	Actions                  []actionRow
}

// actionRow is one action of the editor: every input of every type, of
// which the type's own are kept (workflow.Action.Trim).
type actionRow struct {
	Type, Subject, Text, HTML, To, EndpointID, List, Field, Value string
	Fields, Roles                                                 []string
}

// maxActionRows bounds the rows read from a post: the rule's actions, the
// empty one and a few more.
const maxActionRows = 2 * workflow.MaxActions

// readRuleForm reads the editor's post. Action row N posts aN-type,
// aN-subject, aN-text, aN-html, aN-to, aN-fields (one a ticked field),
// aN-roles (one a ticked role), aN-endpoint_id, aN-list, aN-field,
// aN-value and aN-remove; a row with
// no type, or ticked to be removed, is left out.
func readRuleForm(f url.Values) ruleForm {
	rf := ruleForm{Name: f.Get("name"), Trigger: f.Get("trigger"), Condition: f.Get("condition"), Delay: strings.TrimSpace(f.Get("delay")),
		Unit: f.Get("unit"), Enabled: slices.Contains(f["enabled"], "on")}
	for i := range maxActionRows {
		in := func(name string) string { return f.Get(fmt.Sprintf("a%d-%s", i, name)) }
		if _, ok := f[fmt.Sprintf("a%d-type", i)]; !ok {
			break
		}
		a := actionRow{Type: in("type"), Subject: in("subject"), Text: in("text"), HTML: in("html"), To: in("to"),
			EndpointID: in("endpoint_id"), List: in("list"), Field: in("field"), Value: in("value"), Fields: f[fmt.Sprintf("a%d-fields", i)],
			Roles: f[fmt.Sprintf("a%d-roles", i)]}
		if a.Type == "" || in("remove") == "on" {
			continue
		}
		rf.Actions = append(rf.Actions, a)
	}
	return rf
}

// definition is the rule rf describes, each action trimmed to what its
// type takes. boolFields are the custom fields of type boolean, whose
// value set_field posts as "true" or "false". An error is on "delay".
func (rf *ruleForm) definition(boolFields map[string]bool) (workflow.Definition, error) {
	on := rf.Enabled
	d := workflow.Definition{Name: rf.Name, Trigger: rf.Trigger, Condition: rf.Condition, Enabled: &on}
	minutes := 1
	for _, u := range delayUnits {
		if u.Name == rf.Unit {
			minutes = u.Minutes
		}
	}
	if rf.Delay != "" {
		n, err := strconv.Atoi(rf.Delay)
		if err != nil || n < 0 || n > workflow.MaxDelayMinutes/minutes {
			return d, errs.Invalid("delay", "must be a whole number from 0 to 365 days")
		}
		d.DelayMinutes = n * minutes
	}
	for _, row := range rf.Actions {
		a := workflow.Action{Type: row.Type, Subject: row.Subject, Text: row.Text, HTML: row.HTML, To: row.To, Fields: row.Fields, Roles: row.Roles,
			EndpointID: row.EndpointID, List: row.List, Field: row.Field}
		switch {
		case row.Value == "":
		case boolFields[row.Field] && (row.Value == "true" || row.Value == "false"):
			a.Value = row.Value == "true"
		default:
			a.Value = row.Value
		}
		a.Trim()
		d.Actions = append(d.Actions, a)
	}
	return d, nil
}

// ruleFormOf is rule d as the editor shows it.
func ruleFormOf(d workflow.Definition) ruleForm {
	rf := ruleForm{Name: d.Name, Trigger: d.Trigger, Condition: d.Condition, Enabled: d.Enabled == nil || *d.Enabled}
	rf.Delay, rf.Unit = delayIn(d.DelayMinutes)
	for _, a := range d.Actions {
		row := actionRow{Type: a.Type, Subject: a.Subject, Text: a.Text, HTML: a.HTML, To: a.To, Fields: a.Fields, Roles: a.Roles,
			EndpointID: a.EndpointID, List: a.List, Field: a.Field}
		if a.Value != nil {
			row.Value = fmt.Sprint(a.Value)
		}
		rf.Actions = append(rf.Actions, row)
	}
	return rf
}

// actionPath is an action's field as workflow's errors name it, such as
// actions[2].to.
var actionPath = regexp.MustCompile(`^actions\[(\d+)\]\.(\w+)$`)

// ruleInput names the editor's input a validation error is about: the
// action row's own input for actions[N].x (the rows are numbered as the
// definition's actions), "delay" for the delay, "form" when it is about
// no one input.
func ruleInput(e *errs.Error) string {
	if m := actionPath.FindStringSubmatch(e.Field); m != nil {
		switch m[2] {
		case "type", "subject", "text", "html", "to", "fields", "roles", "endpoint_id", "list", "field", "value":
			return "a" + m[1] + "-" + m[2]
		}
		return "form"
	}
	switch e.Field {
	case "name", "trigger", "condition", "actions", "delay":
		return e.Field
	case "delay_minutes":
		return "delay"
	}
	return "form"
}

// workflowEditor is the new and edit page of a rule.
type workflowEditor struct {
	ID   string // empty for a new one
	Rule *workflow.Rule
	On   bool // whether the saved rule is on
	Form ruleForm
	// Rows are the form's actions and one empty row to add one, each
	// with its number.
	Rows     []editorRow
	Triggers []string
	Facts    map[string][]string // by trigger
	Types    []string
	Units    []string
	Lists    []*lists.List
	Fields   []ruleField // every core and custom field, for a partner email
	Settable []ruleField // those set_field may set
	// Endpoints are the webhook endpoints a webhook action may call.
	Endpoints []endpointChoice
	// Roles are the users' roles a notification may go to.
	Roles   []string
	MaxRows int
}

// endpointChoice is a webhook endpoint as the editor offers it: by its
// URL and description. One a rule names that no longer exists is offered
// as such, so that saving the rule again keeps it and the API's check
// names it.
type endpointChoice struct {
	ID, Label string
}

// endpointChoices are the webhook endpoints, and the ids rf names that
// are not among them.
func (s *Server) endpointChoices(ctx context.Context, rf ruleForm) ([]endpointChoice, error) {
	all, err := s.Webhooks.List(ctx)
	if err != nil {
		return nil, err
	}
	var out []endpointChoice
	known := map[string]bool{}
	for _, e := range all {
		label := e.URL
		if e.Description != "" {
			label += " (" + e.Description + ")"
		}
		if !e.Enabled {
			label += ", off"
		}
		out = append(out, endpointChoice{ID: e.ID, Label: label})
		known[e.ID] = true
	}
	for _, a := range rf.Actions {
		if a.EndpointID != "" && !known[a.EndpointID] {
			out = append(out, endpointChoice{ID: a.EndpointID, Label: "no such endpoint: " + a.EndpointID})
			known[a.EndpointID] = true
		}
	}
	return out, nil
}

// editorRow is an action row of the editor; New is the empty row.
type editorRow struct {
	N   int
	New bool
	actionRow
}

// ruleField is a contact field the editor offers.
type ruleField struct {
	Name, Label string
	Sensitive   bool
}

func (s *Server) newWorkflowPage(w http.ResponseWriter, r *http.Request, u *auth.User) {
	s.showWorkflowEditor(w, r, u, http.StatusOK, nil, ruleForm{Trigger: workflow.Triggers()[0], Unit: "minutes", Enabled: true}, nil)
}

func (s *Server) workflowPage(w http.ResponseWriter, r *http.Request, u *auth.User) {
	rule, err := s.Workflows.Get(r.Context(), r.PathValue("id"))
	if err != nil {
		s.fail(w, err, u)
		return
	}
	s.showWorkflowEditor(w, r, u, http.StatusOK, rule, ruleFormOf(rule.Definition), nil)
}

// ruleFields are the core and custom fields by name, and the custom ones
// of type boolean.
func (s *Server) ruleFields(ctx context.Context) ([]ruleField, map[string]bool, error) {
	defs, err := s.Contacts.Fields(ctx)
	if err != nil {
		return nil, nil, err
	}
	var out []ruleField
	for _, f := range contact.CoreFields {
		out = append(out, ruleField{Name: f.Name, Label: f.Label})
	}
	bools := map[string]bool{}
	for _, d := range defs {
		label := d.Label
		if label == "" {
			label = d.Name
		}
		out = append(out, ruleField{Name: d.Name, Label: label, Sensitive: d.Sensitive})
		bools[d.Name] = d.Type == contact.TypeBoolean
	}
	return out, bools, nil
}

func (s *Server) showWorkflowEditor(w http.ResponseWriter, r *http.Request, u *auth.User, status int, rule *workflow.Rule, rf ruleForm, fe map[string]string) {
	ctx := r.Context()
	v := workflowEditor{Rule: rule, Form: rf, Triggers: workflow.Triggers(), Facts: map[string][]string{}, Types: workflow.ActionTypes,
		Roles: auth.Roles, MaxRows: workflow.MaxActions}
	if rule != nil {
		v.ID, v.On = rule.ID, rule.Enabled == nil || *rule.Enabled
	}
	for _, t := range v.Triggers {
		v.Facts[t] = workflow.FactNames(t)
	}
	for _, u := range delayUnits {
		v.Units = append(v.Units, u.Name)
	}
	var err error
	if v.Lists, err = s.Lists.All(ctx); err != nil {
		s.fail(w, err, u)
		return
	}
	if v.Fields, _, err = s.ruleFields(ctx); err != nil {
		s.fail(w, err, u)
		return
	}
	if v.Endpoints, err = s.endpointChoices(ctx, rf); err != nil {
		s.fail(w, err, u)
		return
	}
	for _, f := range v.Fields {
		if f.Name != "email" && !f.Sensitive {
			v.Settable = append(v.Settable, f)
		}
	}
	for i, a := range rf.Actions {
		v.Rows = append(v.Rows, editorRow{N: i, actionRow: a})
	}
	if len(v.Rows) < workflow.MaxActions {
		v.Rows = append(v.Rows, editorRow{N: len(v.Rows), New: true})
	}
	title := "New workflow rule"
	if rule != nil {
		title = "Workflow rule: " + rule.Name
	}
	s.render(w, status, "workflow", page{Title: title, User: u, Nav: "workflows", Errors: fe,
		Flash: workflowDone[r.URL.Query().Get("done")], Data: v})
}

// saveWorkflow creates a rule, or replaces one's definition, and
// redirects to the rule's page; an error shows the editor again with what
// was typed, the error next to its input, and saves nothing.
func (s *Server) saveWorkflow(w http.ResponseWriter, r *http.Request, u *auth.User) {
	if !s.parse(w, r, u) {
		return
	}
	ctx := r.Context()
	id := r.PathValue("id")
	var old *workflow.Rule
	if id != "" {
		var err error
		if old, err = s.Workflows.Get(ctx, id); err != nil {
			s.fail(w, err, u)
			return
		}
	}
	rf := readRuleForm(r.PostForm)
	_, bools, err := s.ruleFields(ctx)
	if err != nil {
		s.fail(w, err, u)
		return
	}
	d, err := rf.definition(bools)
	var saved *workflow.Rule
	if err == nil {
		if old == nil {
			saved, err = s.Workflows.Create(ctx, audit.Actor(actor(u)), d)
		} else {
			saved, err = s.Workflows.Update(ctx, audit.Actor(actor(u)), id, d)
		}
	}
	if err != nil {
		e := errs.As(err)
		if e == nil || e.Kind == errs.KindNotFound {
			s.fail(w, err, u)
			return
		}
		s.showWorkflowEditor(w, r, u, httpx.Status(err), old, rf, map[string]string{ruleInput(e): e.Message})
		return
	}
	http.Redirect(w, r, "/admin/workflows/"+url.PathEscape(saved.ID)+"?done=saved", http.StatusSeeOther)
}

func (s *Server) enableWorkflow(w http.ResponseWriter, r *http.Request, u *auth.User) {
	if !s.parse(w, r, u) {
		return
	}
	on := r.PostForm.Get("enabled") == "on"
	id := r.PathValue("id")
	if err := s.Workflows.SetEnabled(r.Context(), audit.Actor(actor(u)), id, on); err != nil {
		s.fail(w, err, u)
		return
	}
	done := "off"
	if on {
		done = "on"
	}
	http.Redirect(w, r, "/admin/workflows/"+url.PathEscape(id)+"?done="+done, http.StatusSeeOther)
}

func (s *Server) deleteWorkflow(w http.ResponseWriter, r *http.Request, u *auth.User) {
	if err := s.Workflows.Delete(r.Context(), audit.Actor(actor(u)), r.PathValue("id")); err != nil {
		s.fail(w, err, u)
		return
	}
	http.Redirect(w, r, "/admin/workflows?done=deleted", http.StatusSeeOther)
}

// workflowRuns is the run log page: one rule's runs, or every rule's for
// one contact (?contact=ID) or for all.
type workflowRuns struct {
	Rule      *workflow.Rule // nil: every rule's
	ContactID string
	Runs      []*workflow.Run
	Next      string
	// RuleNames and ListNames name the rules and lists the runs give by
	// id; a deleted one is shown by its id.
	RuleNames, ListNames map[string]string
}

func (s *Server) workflowRunsPage(w http.ResponseWriter, r *http.Request, u *auth.User) {
	ctx := r.Context()
	q := workflow.RunQuery{RuleID: r.PathValue("id"), ContactID: r.URL.Query().Get("contact"), After: r.URL.Query().Get("after")}
	v := workflowRuns{ContactID: q.ContactID, RuleNames: map[string]string{}, ListNames: map[string]string{}}
	title := "Workflow runs"
	if q.RuleID != "" {
		rule, err := s.Workflows.Get(ctx, q.RuleID)
		if err != nil {
			s.fail(w, err, u)
			return
		}
		v.Rule, title = rule, "Runs of "+rule.Name
	}
	var err error
	if v.Runs, v.Next, err = s.Workflows.Runs(ctx, q); err != nil {
		s.fail(w, err, u)
		return
	}
	rules, err := s.Workflows.List(ctx)
	if err != nil {
		s.fail(w, err, u)
		return
	}
	for _, rule := range rules {
		v.RuleNames[rule.ID] = rule.Name
	}
	all, err := s.Lists.All(ctx)
	if err != nil {
		s.fail(w, err, u)
		return
	}
	for _, l := range all {
		v.ListNames[l.ID] = l.Name
	}
	s.render(w, http.StatusOK, "workflow_runs", page{Title: title, User: u, Nav: "workflows", Data: v})
}
