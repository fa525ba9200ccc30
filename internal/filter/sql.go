package filter

import (
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/consentry/consentry/internal/store"
)

// SQL returns the condition as a WHERE fragment over the contacts alias c,
// with its parameters numbered from first, and their values.
func (c *Condition) SQL(d store.Dialect, first int) (string, []any) {
	b := &sqlBuilder{d: d, first: first, lists: c.lists}
	b.pred(c.root)
	return b.sb.String(), b.args
}

type sqlBuilder struct {
	d     store.Dialect
	first int
	lists Lists
	args  []any
	sb    strings.Builder
}

func (b *sqlBuilder) w(parts ...string) {
	for _, p := range parts {
		b.sb.WriteString(p)
	}
}

// arg binds v and returns its placeholder.
func (b *sqlBuilder) arg(v any) string {
	b.args = append(b.args, v)
	return "$" + strconv.Itoa(b.first+len(b.args)-1)
}

func (b *sqlBuilder) pg() bool { return b.d == store.Postgres }

// operand returns the SQL for the operand's value and whether it can be
// NULL (a custom field that is missing or of another type).
func (b *sqlBuilder) operand(o operand) (string, bool) {
	f := o.field
	if f.Event {
		panic("filter: a condition on event facts has no SQL; evaluate it with Match")
	}
	var x string
	nullable := f.Column == ""
	if f.Sensitive { // only the masked value can be searched
		x = "(SELECT sv.masked FROM sensitive_values sv WHERE sv.contact_id = c.id AND sv.field = " + b.arg(f.Name) + ")"
	} else if f.Presence {
		x, nullable = "(c."+f.Column+" IS NOT NULL)", false
	} else if !nullable {
		x = "c." + f.Column
	} else if b.pg() {
		key := b.arg(f.Name) + "::text"
		switch f.Type {
		case Number:
			x = "(CASE WHEN jsonb_typeof(c.fields->" + key + ") = 'number' THEN (c.fields->>" + key + ")::float8 END)"
		case Bool:
			x = "(CASE WHEN jsonb_typeof(c.fields->" + key + ") = 'boolean' THEN (c.fields->>" + key + ")::boolean END)"
		default:
			x = "(CASE WHEN jsonb_typeof(c.fields->" + key + ") = 'string' THEN c.fields->>" + key + " END)"
		}
	} else {
		path := b.arg("$." + f.Name)
		switch f.Type {
		case Number:
			x = "(CASE WHEN json_type(c.fields, " + path + ") IN ('integer', 'real') THEN json_extract(c.fields, " + path + ") END)"
		case Bool:
			x = "(CASE WHEN json_type(c.fields, " + path + ") IN ('true', 'false') THEN json_extract(c.fields, " + path + ") END)"
		default:
			x = "(CASE WHEN json_type(c.fields, " + path + ") = 'text' THEN json_extract(c.fields, " + path + ") END)"
		}
	}
	if o.lower {
		if b.pg() { // A to Z only, as in SQLite and in memory
			x = "translate(" + x + ", 'ABCDEFGHIJKLMNOPQRSTUVWXYZ', 'abcdefghijklmnopqrstuvwxyz')"
		} else {
			x = "lower(" + x + ")"
		}
	}
	if b.pg() && (f.Type == String || f.Type == Date) {
		x = "(" + x + " COLLATE \"C\")" // byte order, as in Go and SQLite
	}
	return x, nullable
}

// twoValued makes a comparison on a value that may be NULL false rather than
// unknown, so that NOT sees false and turns it into true, as in memory.
func twoValued(expr string, nullable bool) string {
	if nullable {
		return "COALESCE(" + expr + ", FALSE)"
	}
	return "(" + expr + ")"
}

var sqlOps = map[string]string{"==": "=", "!=": "<>", "<": "<", "<=": "<=", ">": ">", ">=": ">="}

func (b *sqlBuilder) pred(p pred) {
	switch p := p.(type) {
	case andPred:
		b.w("(")
		b.pred(p.l)
		b.w(" AND ")
		b.pred(p.r)
		b.w(")")
	case orPred:
		b.w("(")
		b.pred(p.l)
		b.w(" OR ")
		b.pred(p.r)
		b.w(")")
	case notPred:
		b.w("(NOT ")
		b.pred(p.x)
		b.w(")")
	case constPred:
		if p.v {
			b.w("TRUE")
		} else {
			b.w("FALSE")
		}
	case comparePred:
		// Whether it can hold at all is settled before anything is bound:
		// PostgreSQL refuses a parameter the statement does not use.
		op, v, ok := p.op, p.v, true
		if p.lhs.field.Type == Date {
			op, v, ok = dateBound(op, p.v.(time.Time))
		}
		if !ok {
			b.w("FALSE")
			return
		}
		x, nullable := b.operand(p.lhs)
		b.w(twoValued(x+" "+sqlOps[op]+" "+b.arg(sqlValue(p.lhs.field.Type, v)), nullable))
	case memberPred:
		var values []any
		for _, v := range p.values {
			if p.lhs.field.Type == Date {
				if _, dv, ok := dateBound("==", v.(time.Time)); ok {
					values = append(values, dv)
				}
				continue
			}
			values = append(values, sqlValue(p.lhs.field.Type, v))
		}
		if len(values) == 0 {
			b.w("FALSE")
			return
		}
		x, nullable := b.operand(p.lhs)
		ph := make([]string, len(values))
		for i, v := range values {
			ph[i] = b.arg(v)
		}
		b.w(twoValued(x+" IN ("+strings.Join(ph, ", ")+")", nullable))
	case matchPred:
		x, nullable := b.operand(p.lhs)
		var expr string
		switch p.op {
		case "contains":
			if b.pg() {
				expr = "strpos(" + x + ", " + b.arg(p.needle) + ") > 0"
			} else {
				expr = "instr(" + x + ", " + b.arg(p.needle) + ") > 0"
			}
		case "startsWith":
			n := utf8.RuneCountInString(p.needle)
			expr = "substr(" + x + ", 1, " + b.arg(n) + ") = " + b.arg(p.needle)
		default: // endsWith
			n := utf8.RuneCountInString(p.needle)
			expr = "length(" + x + ") >= " + b.arg(n) + " AND substr(" + x + ", length(" + x + ") - " + b.arg(n) + " + 1) = " + b.arg(p.needle)
		}
		b.w(twoValued(expr, nullable))
	case presentPred:
		x, _ := b.operand(p.lhs)
		if p.want {
			b.w("(" + x + " IS NOT NULL)")
		} else {
			b.w("(" + x + " IS NULL)")
		}
	case truthPred:
		x, nullable := b.operand(p.lhs)
		b.w(twoValued(x, nullable))
	case consentPred:
		b.consent(p)
	case blindPred:
		if len(p.indexes) == 0 { // "in []": nothing matches, "not in []" every set value
			if p.negate {
				b.w("EXISTS (SELECT 1 FROM sensitive_values sv WHERE sv.contact_id = c.id AND sv.field = " + b.arg(p.field) + ")")
			} else {
				b.w("FALSE")
			}
			return
		}
		ph := make([]string, len(p.indexes))
		field := b.arg(p.field)
		for i, idx := range p.indexes {
			ph[i] = b.arg(idx)
		}
		in := " IN "
		if p.negate {
			in = " NOT IN "
		}
		b.w("EXISTS (SELECT 1 FROM sensitive_values sv WHERE sv.contact_id = c.id AND sv.field = " + field +
			" AND sv.blind_index" + in + "(" + strings.Join(ph, ", ") + "))")
	case listPred:
		// The hook's SQL comes from code, not from the condition; Compile
		// refused inList when the schema had no hook.
		b.w("(" + b.lists.MemberSQL(b.arg(p.listID)) + ")")
	}
}

// consent turns "consent(p) in states" into EXISTS tests on consent_current,
// which its (contact_id, purpose_id) key answers with one index probe. A
// grant that has expired counts as none.
func (b *sqlBuilder) consent(p consentPred) {
	var recorded []string
	none := false
	for _, s := range p.states {
		if s == "none" {
			none = true
		} else {
			recorded = append(recorded, s)
		}
	}
	state := func(s string) string {
		if s == "granted" {
			return "(cc.state = " + b.arg(s) + " AND (cc.expires_at IS NULL OR cc.expires_at > " + b.arg(store.Micros(p.now)) + "))"
		}
		return "cc.state = " + b.arg(s)
	}
	exists := func(states []string) string {
		ors := make([]string, len(states))
		purpose := b.arg(p.purposeID)
		for i, s := range states {
			ors[i] = state(s)
		}
		return "EXISTS (SELECT 1 FROM consent_current cc WHERE cc.contact_id = c.id AND cc.purpose_id = " + purpose +
			" AND (" + strings.Join(ors, " OR ") + "))"
	}
	var parts []string
	if len(recorded) > 0 {
		parts = append(parts, exists(recorded))
	}
	if none {
		parts = append(parts, "NOT "+exists([]string{"granted", "withdrawn"}))
	}
	switch len(parts) {
	case 0:
		b.w("FALSE")
	case 1:
		b.w("(" + parts[0] + ")")
	default:
		b.w("(" + parts[0] + " OR " + parts[1] + ")")
	}
}

// sqlValue is a constant as the database holds it: times as microseconds.
func sqlValue(t Type, v any) any {
	if tm, ok := v.(time.Time); ok && t == Time {
		return store.Micros(tm)
	}
	return v
}

// dateBound rewrites "day op moment" as a comparison of the day with a
// "2006-01-02" string. A day stands for its midnight UTC, so against a
// moment within a day, == never holds and < and >= move by one day. ok is
// false when the comparison can never hold.
func dateBound(op string, t time.Time) (string, string, bool) {
	t = t.UTC()
	day := t.Format(time.DateOnly)
	exact := t.Equal(t.Truncate(24 * time.Hour))
	if exact {
		return op, day, true
	}
	switch op {
	case "==":
		return op, day, false
	case "!=":
		return "!=", "", true // every set day differs; "" is no day
	case "<":
		return "<=", day, true
	case ">=":
		return ">", day, true
	}
	return op, day, true // <= and > hold as they are
}
