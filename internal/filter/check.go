package filter

import (
	"errors"
	"fmt"
	"math"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/file"
	"github.com/expr-lang/expr/parser"
)

// The checked tree: predicates over operands and constants.
type pred interface{ isPred() }

type (
	andPred   struct{ l, r pred }
	orPred    struct{ l, r pred }
	notPred   struct{ x pred }
	constPred struct{ v bool }
	// comparePred: operand op value, op one of == != < <= > >=.
	comparePred struct {
		op  string
		lhs operand
		v   any
	}
	// memberPred: operand in values.
	memberPred struct {
		lhs    operand
		values []any
	}
	// matchPred: contains, startsWith or endsWith a string.
	matchPred struct {
		op     string
		lhs    operand
		needle string
	}
	// presentPred: the custom field is set (want true) or missing.
	presentPred struct {
		lhs  operand
		want bool
	}
	// truthPred: a boolean field that is set and true.
	truthPred struct{ lhs operand }
	// consentPred: the contact's state for the purpose is one of states.
	consentPred struct {
		purposeID string
		states    []string
		now       time.Time // a grant that expires by then counts as none
	}
	listPred struct{ listID string }
	// blindPred: the sensitive field is set and its blind index is one of
	// indexes (or, negated, none of them).
	blindPred struct {
		field   string
		indexes []string
		negate  bool
	}
)

func (andPred) isPred()     {}
func (orPred) isPred()      {}
func (notPred) isPred()     {}
func (constPred) isPred()   {}
func (comparePred) isPred() {}
func (memberPred) isPred()  {}
func (matchPred) isPred()   {}
func (presentPred) isPred() {}
func (truthPred) isPred()   {}
func (consentPred) isPred() {}
func (listPred) isPred()    {}
func (blindPred) isPred()   {}

// operand is a field, or lower(field) for a string field.
type operand struct {
	field *Field
	lower bool
}

// ConsentStates are the values consent(purpose) can have.
var ConsentStates = []string{"granted", "withdrawn", "none"}

// item is what a sub-expression is while checking: a predicate, a field, a
// constant or consent(purpose).
type item struct {
	pred      pred
	field     *operand
	constant  any // string, float64, bool, time.Time, time.Duration, []any, or nil
	ctype     Type
	purposeID string
	pos       int
}

func (it item) kind() string {
	switch {
	case it.pred != nil:
		return "condition"
	case it.field != nil:
		return "field " + it.field.field.Name
	case it.purposeID != "":
		return "consent(...)"
	}
	return it.ctype.String() + " value"
}

type checker struct {
	schema *Schema
	now    time.Time
}

func errAt(n ast.Node, format string, args ...any) *Error {
	return &Error{Position: n.Location().From + 1, Message: fmt.Sprintf(format, args...)}
}

func (c *checker) compile(src string) (p pred, err error) {
	if strings.TrimSpace(src) == "" {
		return nil, &Error{Position: 1, Message: "the condition is empty"}
	}
	// The checker walks a tree the parser built from untrusted text; a bug
	// there must come back as an error, never take the server down.
	defer func() {
		if r := recover(); r != nil {
			p, err = nil, &Error{Position: 1, Message: fmt.Sprintf("the condition could not be read (%v)", r)}
		}
	}()
	tree, err := parser.Parse(src)
	if err != nil {
		var fe *file.Error
		if errors.As(err, &fe) {
			return nil, &Error{Position: fe.From + 1, Message: readable(fe.Message)}
		}
		return nil, &Error{Position: 1, Message: readable(err.Error())}
	}
	it, err := c.check(tree.Node)
	if err != nil {
		return nil, err
	}
	return c.asPred(tree.Node, it)
}

// asPred turns an item used as a condition into a predicate: a boolean
// field means "is set and true", a boolean constant is itself.
func (c *checker) asPred(n ast.Node, it item) (pred, error) {
	switch {
	case it.pred != nil:
		return it.pred, nil
	case it.field != nil && it.field.field.Type == Bool:
		return truthPred{*it.field}, nil
	case it.field == nil && it.purposeID == "" && it.ctype == Bool:
		return constPred{it.constant.(bool)}, nil
	}
	return nil, errAt(n, "%s is not a condition; compare it with a value, e.g. == or in", it.kind())
}

func (c *checker) check(n ast.Node) (item, error) {
	pos := n.Location().From + 1
	switch n := n.(type) {
	case *ast.StringNode:
		for _, r := range n.Value {
			if r < 0x20 || r == 0x7f || r == utf8.RuneError {
				return item{}, errAt(n, "a string may not contain control characters or invalid UTF-8")
			}
		}
		return item{constant: n.Value, ctype: String, pos: pos}, nil
	case *ast.IntegerNode:
		return item{constant: float64(n.Value), ctype: Number, pos: pos}, nil
	case *ast.FloatNode:
		return item{constant: n.Value, ctype: Number, pos: pos}, nil
	case *ast.BoolNode:
		return item{constant: n.Value, ctype: Bool, pos: pos}, nil
	case *ast.NilNode:
		return item{ctype: Null, pos: pos}, nil
	case *ast.IdentifierNode:
		return c.identifier(n)
	case *ast.ArrayNode:
		var vals []any
		var elem Type
		for _, e := range n.Nodes {
			it, err := c.check(e)
			if err != nil {
				return item{}, err
			}
			if it.field != nil || it.pred != nil || it.purposeID != "" {
				return item{}, errAt(e, "a list may hold only values, not %s", it.kind())
			}
			if it.ctype != String && it.ctype != Number && it.ctype != Time {
				return item{}, errAt(e, "a list may hold strings, numbers or dates, not a %s", it.ctype)
			}
			if elem != 0 && it.ctype != elem {
				return item{}, errAt(e, "a list must hold values of one type: %s and %s are mixed", elem, it.ctype)
			}
			elem = it.ctype
			vals = append(vals, it.constant)
		}
		return item{constant: vals, ctype: List, pos: pos}, nil
	case *ast.UnaryNode:
		return c.unary(n)
	case *ast.BinaryNode:
		return c.binary(n)
	case *ast.CallNode:
		id, ok := n.Callee.(*ast.IdentifierNode)
		if !ok {
			return item{}, errAt(n, "only the functions of the condition language can be called")
		}
		return c.call(n, id.Value, n.Arguments)
	case *ast.BuiltinNode:
		return c.call(n, n.Name, n.Arguments)
	case *ast.MemberNode:
		return c.member(n)
	case *ast.ConditionalNode:
		return item{}, errAt(n, "the ? : operator is not supported; combine conditions with && and ||")
	}
	return item{}, errAt(n, "this is not part of the condition language (see the guide at /admin/docs/conditions)")
}

var aliases = map[string]string{"optin": "opt_in_status"}

func (c *checker) identifier(n *ast.IdentifierNode) (item, error) {
	name := n.Value
	if a, ok := aliases[name]; ok {
		name = a
	}
	f := c.schema.Fields[name]
	if f == nil {
		names := make([]string, 0, len(c.schema.Fields)+len(aliases))
		for k := range c.schema.Fields {
			names = append(names, k)
		}
		for k := range aliases {
			names = append(names, k)
		}
		return item{}, errAt(n, "unknown field %s%s", n.Value, suggest(n.Value, names))
	}

	return item{field: &operand{field: f}, pos: n.Location().From + 1}, nil
}

// member checks event.NAME, a fact of the event that triggered a workflow
// rule; any other member access is an error.
func (c *checker) member(n *ast.MemberNode) (item, error) {
	id, _ := n.Node.(*ast.IdentifierNode)
	prop, _ := n.Property.(*ast.StringNode)
	if id == nil || id.Value != "event" || prop == nil || n.Method || n.Optional {
		return item{}, errAt(n, "fields have no members; custom fields are used by their name alone, e.g. segment == \"b2b\"")
	}
	if c.schema.EventFacts == nil {
		return item{}, errAt(n, "event.%s is known only in a workflow rule's condition", prop.Value)
	}
	f := c.schema.EventFacts[prop.Value]
	if f == nil {
		names := make([]string, 0, len(c.schema.EventFacts))
		for k := range c.schema.EventFacts {
			names = append(names, k)
		}
		return item{}, errAt(n, "the event has no fact %s%s", prop.Value, suggest(prop.Value, names))
	}
	return item{field: &operand{field: f}, pos: n.Location().From + 1}, nil
}

func (c *checker) unary(n *ast.UnaryNode) (item, error) {
	x, err := c.check(n.Node)
	if err != nil {
		return item{}, err
	}
	switch n.Operator {
	case "!", "not":
		p, err := c.asPred(n.Node, x)
		if err != nil {
			return item{}, err
		}
		if k, ok := p.(constPred); ok {
			return item{pred: constPred{!k.v}}, nil
		}
		return item{pred: notPred{p}}, nil
	case "-", "+":
		if x.field != nil || x.pred != nil || (x.ctype != Number && x.ctype != Duration) {
			return item{}, errAt(n, "%s can only be put before a number or a duration", n.Operator)
		}
		if n.Operator == "+" {
			return x, nil
		}
		if x.ctype == Number {
			x.constant = -x.constant.(float64)
		} else {
			x.constant = -x.constant.(time.Duration)
		}
		return x, nil
	}
	return item{}, errAt(n, "operator %s is not supported", n.Operator)
}

func (c *checker) binary(n *ast.BinaryNode) (item, error) {
	l, err := c.check(n.Left)
	if err != nil {
		return item{}, err
	}
	r, err := c.check(n.Right)
	if err != nil {
		return item{}, err
	}
	switch op := n.Operator; op {
	case "&&", "and", "||", "or":
		lp, err := c.asPred(n.Left, l)
		if err != nil {
			return item{}, err
		}
		rp, err := c.asPred(n.Right, r)
		if err != nil {
			return item{}, err
		}
		return item{pred: combine(op == "&&" || op == "and", lp, rp)}, nil
	case "==", "!=", "<", "<=", ">", ">=":
		return c.comparison(n, op, l, r)
	case "in":
		return c.in(n, l, r)
	case "contains", "startsWith", "endsWith":
		if l.field == nil || l.field.field.Type != String {
			return item{}, errAt(n.Left, "%s needs a text field on its left, not %s", op, l.kind())
		}
		if r.field != nil || r.ctype != String {
			return item{}, errAt(n.Right, "%s needs a string on its right, not %s", op, r.kind())
		}
		return item{pred: matchPred{op: op, lhs: *l.field, needle: r.constant.(string)}}, nil
	case "+", "-", "*", "/":
		return c.arithmetic(n, op, l, r)
	case "matches":
		return item{}, errAt(n, "matches is not supported; use contains, startsWith or endsWith")
	}
	return item{}, errAt(n, "operator %s is not supported", n.Operator)
}

// combine folds constant sides away, so that "x && true" is just x.
func combine(and bool, l, r pred) pred {
	lc, lok := l.(constPred)
	rc, rok := r.(constPred)
	switch {
	case lok && rok:
		if and {
			return constPred{lc.v && rc.v}
		}
		return constPred{lc.v || rc.v}
	case lok:
		if lc.v == and {
			return r
		}
		return lc
	case rok:
		if rc.v == and {
			return l
		}
		return rc
	}
	if and {
		return andPred{l, r}
	}
	return orPred{l, r}
}

var flipped = map[string]string{"==": "==", "!=": "!=", "<": ">", "<=": ">=", ">": "<", ">=": "<="}

func (c *checker) comparison(n *ast.BinaryNode, op string, l, r item) (item, error) {
	isValue := func(it item) bool { return it.field == nil && it.pred == nil && it.purposeID == "" }
	if isValue(l) && !isValue(r) { // "EU" == region reads as region == "EU"
		l, r, op = r, l, flipped[op]
	}
	switch {
	case l.pred != nil || r.pred != nil:
		return item{}, errAt(n, "conditions cannot be compared; combine them with && and ||")
	case !isValue(r):
		return item{}, errAt(n, "compare a field with a value; %s and %s are both from the contact", l.kind(), r.kind())
	case isValue(l):
		v, err := compareConstants(n, op, l, r)
		return item{pred: constPred{v}}, err
	case l.purposeID != "":
		if op != "==" && op != "!=" {
			return item{}, errAt(n, "consent(...) can only be compared with ==, != or in")
		}
		s, err := consentState(n.Right, r)
		if err != nil {
			return item{}, err
		}
		states := []string{s}
		if op == "!=" {
			states = without(ConsentStates, s)
		}
		return item{pred: consentPred{purposeID: l.purposeID, states: states, now: c.now}}, nil
	}
	f := l.field.field
	if r.ctype == Null {
		if op != "==" && op != "!=" {
			return item{}, errAt(n, "nil can only be compared with == or !=")
		}
		if f.Column != "" {
			return item{}, errAt(n, "%s is never missing; compare it with \"\" instead", f.Name)
		}
		return item{pred: presentPred{lhs: *l.field, want: op == "!="}}, nil
	}
	if f.Sensitive {
		return c.blind(n, op, l.field, []item{r})
	}
	v, err := c.valueFor(n.Right, l.field, r)
	if err != nil {
		return item{}, err
	}
	if f.Type == Bool && op != "==" && op != "!=" {
		return item{}, errAt(n, "a boolean can only be compared with == or !=")
	}
	return item{pred: comparePred{op: op, lhs: *l.field, v: v}}, nil
}

// blind compares a sensitive field with one value, for equality, through
// its blind index, so nothing is decrypted. Only one value at a time, and
// only for callers allowed to reveal (the schema then has a BlindIndex):
// several values, or !=, would let a caller narrow down a value they may
// not see, by asking again and again.
func (c *checker) blind(n ast.Node, op string, o *operand, values []item) (item, error) {
	f := o.field
	if op != "==" || len(values) != 1 || o.lower {
		return item{}, errAt(n, "%s is sensitive: it can be compared with one value with ==, or searched on its visible characters with contains, startsWith or endsWith", f.Name)
	}
	if c.schema.BlindIndex == nil {
		return item{}, errAt(n, "comparing the sensitive field %s with a value needs permission to reveal it", f.Name)
	}
	var idx []string
	for _, v := range values {
		s, ok := v.constant.(string)
		if !ok || v.field != nil {
			return item{}, errAt(n, "%s is compared with a string", f.Name)
		}
		idx = append(idx, c.schema.BlindIndex(f.Name, s))
	}
	return item{pred: blindPred{field: f.Name, indexes: idx, negate: op == "!="}}, nil
}

// valueFor checks that constant r fits the field and returns it in the
// form the comparison uses.
func (c *checker) valueFor(n ast.Node, o *operand, r item) (any, error) {
	f := o.field
	want := f.Type
	if want == Date {
		want = Time
	}
	if r.ctype != want {
		hint := ""
		if want == Time && r.ctype == String {
			hint = `; write date("2026-01-31") or now() - duration("720h")`
		}
		return nil, errAt(n, "%s is a %s and cannot be compared with a %s%s", f.Name, f.Type, r.ctype, hint)
	}
	if s, ok := r.constant.(string); ok && o.lower && s != asciiLower(s) {
		return nil, errAt(n, "lower(%s) is never %q: it has no capitals A to Z; write %q", f.Name, s, asciiLower(s))
	}
	if s, ok := r.constant.(string); ok && len(f.Values) > 0 && !o.lower && !slices.Contains(f.Values, s) {
		return nil, errAt(n, "%s is never %q; it is one of %s%s", f.Name, s, strings.Join(f.Values, ", "), suggest(s, f.Values))
	}
	return r.constant, nil
}

func consentState(n ast.Node, r item) (string, error) {
	s, ok := r.constant.(string)
	if !ok || !slices.Contains(ConsentStates, s) {
		return "", errAt(n, "consent(...) is one of \"granted\", \"withdrawn\" or \"none\"")
	}
	return s, nil
}

func without(list []string, s string) []string {
	var out []string
	for _, x := range list {
		if x != s {
			out = append(out, x)
		}
	}
	return out
}

func (c *checker) in(n *ast.BinaryNode, l, r item) (item, error) {
	if r.ctype != List || r.field != nil {
		return item{}, errAt(n.Right, "in needs a list of values on its right, e.g. [\"NL\", \"BE\"]")
	}
	values := r.constant.([]any)
	if l.purposeID != "" {
		var states []string
		for i, v := range values {
			s, err := consentState(n.Right.(*ast.ArrayNode).Nodes[i], item{constant: v})
			if err != nil {
				return item{}, err
			}
			states = append(states, s)
		}
		return item{pred: consentPred{purposeID: l.purposeID, states: states, now: c.now}}, nil
	}
	if l.field == nil {
		return item{}, errAt(n.Left, "in needs a field or consent(...) on its left, not %s", l.kind())
	}
	if l.field.field.Type == Bool {
		return item{}, errAt(n.Left, "use == with a boolean field")
	}
	if l.field.field.Sensitive {
		var its []item
		for _, v := range values {
			its = append(its, item{constant: v, ctype: typeOf(v)})
		}
		return c.blind(n, "==", l.field, its)
	}
	out := make([]any, 0, len(values))
	for i, v := range values {
		elem := n.Right.(*ast.ArrayNode).Nodes[i]
		vv, err := c.valueFor(elem, l.field, item{constant: v, ctype: typeOf(v)})
		if err != nil {
			return item{}, err
		}
		out = append(out, vv)
	}
	return item{pred: memberPred{lhs: *l.field, values: out}}, nil
}

func typeOf(v any) Type {
	switch v.(type) {
	case string:
		return String
	case float64:
		return Number
	case bool:
		return Bool
	case time.Time:
		return Time
	case time.Duration:
		return Duration
	}
	return Null
}

func (c *checker) arithmetic(n *ast.BinaryNode, op string, l, r item) (item, error) {
	if l.field != nil || r.field != nil || l.pred != nil || r.pred != nil || l.purposeID != "" || r.purposeID != "" {
		return item{}, errAt(n, "arithmetic works on values only, such as now() - duration(\"720h\"), not on fields")
	}
	switch {
	case l.ctype == Number && r.ctype == Number:
		a, b := l.constant.(float64), r.constant.(float64)
		var v float64
		switch op {
		case "+":
			v = a + b
		case "-":
			v = a - b
		case "*":
			v = a * b
		case "/":
			if b == 0 {
				return item{}, errAt(n, "division by zero")
			}
			v = a / b
		}
		if math.IsInf(v, 0) || math.IsNaN(v) {
			return item{}, errAt(n, "the result is not a finite number")
		}
		return item{constant: v, ctype: Number}, nil
	case l.ctype == Time && r.ctype == Duration && (op == "+" || op == "-"):
		d := r.constant.(time.Duration)
		if op == "-" {
			d = -d
		}
		t := l.constant.(time.Time).Add(d)
		if err := inYears(n, t); err != nil {
			return item{}, err
		}
		return item{constant: t, ctype: Time}, nil
	case l.ctype == Duration && r.ctype == Duration && (op == "+" || op == "-"):
		a, b := l.constant.(time.Duration), r.constant.(time.Duration)
		if op == "-" {
			b = -b
		}
		if (b > 0 && a > math.MaxInt64-b) || (b < 0 && a < math.MinInt64-b) {
			return item{}, errAt(n, "the duration is too long")
		}
		return item{constant: a + b, ctype: Duration}, nil
	}
	return item{}, errAt(n, "%s %s %s is not defined", l.ctype, op, r.ctype)
}

var functions = []string{"consent", "inList", "lower", "now", "duration", "date"}

func (c *checker) call(n ast.Node, name string, args []ast.Node) (item, error) {
	str := func(want int) ([]string, error) {
		if len(args) != want {
			return nil, errAt(n, "%s takes %d argument(s), not %d", name, want, len(args))
		}
		var out []string
		for _, a := range args {
			it, err := c.check(a)
			if err != nil {
				return nil, err
			}
			s, ok := it.constant.(string)
			if !ok || it.field != nil {
				return nil, errAt(a, "%s needs a string here, not %s", name, it.kind())
			}
			out = append(out, s)
		}
		return out, nil
	}
	switch name {
	case "consent":
		a, err := str(1)
		if err != nil {
			return item{}, err
		}
		id, ok := c.schema.Purposes[strings.ToLower(a[0])]
		if !ok {
			id, ok = c.schema.Purposes[a[0]]
		}
		if !ok {
			names := make([]string, 0, len(c.schema.Purposes))
			for k := range c.schema.Purposes {
				names = append(names, k)
			}
			return item{}, errAt(args[0], "unknown purpose %q%s", a[0], suggest(strings.ToLower(a[0]), names))
		}
		return item{purposeID: id}, nil
	case "inList":
		a, err := str(1)
		if err != nil {
			return item{}, err
		}
		if c.schema.Lists == nil {
			return item{}, errAt(args[0], "unknown list %q: no lists are defined", a[0])
		}
		id, ok := c.schema.Lists.ListID(a[0])
		if !ok {
			return item{}, errAt(args[0], "unknown list %q", a[0])
		}
		return item{pred: listPred{id}}, nil
	case "lower":
		if len(args) != 1 {
			return item{}, errAt(n, "lower takes 1 argument, not %d", len(args))
		}
		it, err := c.check(args[0])
		if err != nil {
			return item{}, err
		}
		switch {
		case it.field != nil && it.field.field.Type == String:
			o := *it.field
			o.lower = true
			return item{field: &o}, nil
		case it.field == nil && it.ctype == String:
			return item{constant: asciiLower(it.constant.(string)), ctype: String}, nil
		}
		return item{}, errAt(args[0], "lower needs a text field or a string, not %s", it.kind())
	case "now":
		if len(args) != 0 {
			return item{}, errAt(n, "now takes no arguments")
		}
		return item{constant: c.now, ctype: Time}, nil
	case "duration":
		a, err := str(1)
		if err != nil {
			return item{}, err
		}
		d, err := parseDuration(a[0])
		if err != nil {
			return item{}, errAt(args[0], "%v", err)
		}
		return item{constant: d, ctype: Duration}, nil
	case "date":
		a, err := str(1)
		if err != nil {
			return item{}, err
		}
		t, err := parseDate(a[0])
		if err != nil {
			return item{}, errAt(args[0], "%v", err)
		}
		if err := inYears(args[0], t); err != nil {
			return item{}, err
		}
		return item{constant: t, ctype: Time}, nil
	}
	return item{}, errAt(n, "unknown function %s%s", name, suggest(name, functions))
}

// parseDuration reads Go durations ("720h", "90m") and also days ("30d").
func parseDuration(s string) (time.Duration, error) {
	if days, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.Atoi(days)
		if err == nil && n >= -36500 && n <= 36500 {
			return time.Duration(n) * 24 * time.Hour, nil
		}
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("%q is not a duration; write e.g. \"720h\", \"90m\" or \"30d\"", s)
	}
	return d, nil
}

// parseDate reads a day ("2026-01-31", midnight UTC) or a moment (RFC 3339).
func parseDate(s string) (time.Time, error) {
	if t, err := time.Parse(time.DateOnly, s); err == nil {
		return t, nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t.UTC().Truncate(time.Microsecond), nil
	}
	return time.Time{}, fmt.Errorf("%q is not a date; write \"2026-01-31\" or \"2026-01-31T12:00:00Z\"", s)
}

// inYears keeps dates within the years 1 to 9999, where a date written
// "2006-01-02" sorts as text the way it sorts in time, as SQL compares it.
func inYears(n ast.Node, t time.Time) error {
	if y := t.Year(); y < 1 || y > 9999 {
		return errAt(n, "dates must fall within the years 1 to 9999")
	}
	return nil
}

func compareConstants(n ast.Node, op string, l, r item) (bool, error) {
	if l.ctype != r.ctype {
		return false, errAt(n, "a %s cannot be compared with a %s", l.ctype, r.ctype)
	}
	var cmp int
	switch a := l.constant.(type) {
	case string:
		cmp = strings.Compare(a, r.constant.(string))
	case float64:
		cmp = compareFloat(a, r.constant.(float64))
	case time.Time:
		cmp = a.Compare(r.constant.(time.Time))
	case bool:
		if op != "==" && op != "!=" {
			return false, errAt(n, "a boolean can only be compared with == or !=")
		}
		if a != r.constant.(bool) {
			cmp = 1
		}
	default:
		return false, errAt(n, "%s values cannot be compared", l.ctype)
	}
	return holds(op, cmp), nil
}

func compareFloat(a, b float64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// holds says whether a comparison with result cmp (-1, 0, 1) satisfies op.
func holds(op string, cmp int) bool {
	switch op {
	case "==":
		return cmp == 0
	case "!=":
		return cmp != 0
	case "<":
		return cmp < 0
	case "<=":
		return cmp <= 0
	case ">":
		return cmp > 0
	case ">=":
		return cmp >= 0
	}
	return false
}

// Lower is what the condition language's lower() does to a string: A to
// Z only. Callers that build a condition from typed text lower it the same
// way.
func Lower(s string) string { return asciiLower(s) }

// asciiLower lowers A to Z only, as SQLite's lower() does, so that lower()
// means the same in memory and on both databases.
func asciiLower(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c >= 'A' && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}

// suggest returns ", did you mean X?" for the closest name within a small
// edit distance, or "".
func suggest(name string, names []string) string {
	best, bestDist := "", 3
	sort.Strings(names)
	for _, n := range names {
		if d := distance(strings.ToLower(name), strings.ToLower(n)); d < bestDist {
			best, bestDist = n, d
		}
	}
	if best == "" {
		return ""
	}
	return fmt.Sprintf(", did you mean %s?", best)
}

// distance is the Levenshtein distance, counting an adjacent swap as one
// edit (so regoin is one step from region).
func distance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	d := make([][]int, len(ra)+1)
	for i := range d {
		d[i] = make([]int, len(rb)+1)
		d[i][0] = i
	}
	for j := range rb {
		d[0][j+1] = j + 1
	}
	for i := 1; i <= len(ra); i++ {
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			d[i][j] = min(d[i-1][j]+1, d[i][j-1]+1, d[i-1][j-1]+cost)
			if i > 1 && j > 1 && ra[i-1] == rb[j-2] && ra[i-2] == rb[j-1] {
				d[i][j] = min(d[i][j], d[i-2][j-2]+1)
			}
		}
	}
	return d[len(ra)][len(rb)]
}

// tokenRE matches the parser's name for a token, such as Operator("=").
var tokenRE = regexp.MustCompile(`^unexpected token (\w+)(?:\("(.*)"\))?$`)

// readable says a parser error in the words of the condition language
// rather than the parser's own: "unexpected token Operator("=")" becomes
// advice to write ==.
func readable(msg string) string {
	switch {
	case msg == "unexpected end of expression":
		return "the condition ends too soon: something is missing at the end"
	case msg == "literal not terminated":
		return "a quoted text is not closed: add the closing quote"
	case strings.HasPrefix(msg, "unrecognized character: "):
		return "this character is not part of the condition language (see the guide at /admin/docs/conditions)"
	}
	m := tokenRE.FindStringSubmatch(msg)
	if m == nil {
		return msg
	}
	v := strings.ReplaceAll(m[2], `\"`, `"`)
	switch m[1] {
	case "EOF":
		return "the condition ends too soon: something is missing at the end"
	case "Operator":
		if v == "=" {
			return `"=" does not compare: write == to compare`
		}
		return fmt.Sprintf("%q cannot stand here", v)
	case "Bracket":
		return fmt.Sprintf("%q cannot stand here: check that every bracket is closed, and closed once", v)
	case "Identifier":
		return fmt.Sprintf("%q cannot stand here: join two conditions with && or ||", v)
	case "String":
		return fmt.Sprintf("the text %q cannot stand here: compare a field with it, e.g. region == %q", v, v)
	case "Number":
		return fmt.Sprintf("the number %s cannot stand here: compare a field with it, e.g. score > %s", v, v)
	}
	return fmt.Sprintf("%q cannot stand here", v)
}
