package filter

import (
	"slices"
	"strings"
	"time"
)

// Match reports whether the contact s satisfies the condition.
func (c *Condition) Match(s *Subject) bool { return eval(c.root, s) }

func eval(p pred, s *Subject) bool {
	switch p := p.(type) {
	case andPred:
		return eval(p.l, s) && eval(p.r, s)
	case orPred:
		return eval(p.l, s) || eval(p.r, s)
	case notPred:
		return !eval(p.x, s)
	case constPred:
		return p.v
	case comparePred:
		v, ok := value(p.lhs, s)
		return ok && holds(p.op, compareValues(p.lhs.field.Type, v, p.v))
	case memberPred:
		v, ok := value(p.lhs, s)
		if !ok {
			return false
		}
		for _, x := range p.values {
			if compareValues(p.lhs.field.Type, v, x) == 0 {
				return true
			}
		}
		return false
	case matchPred:
		v, ok := value(p.lhs, s)
		if !ok {
			return false
		}
		str := v.(string)
		switch p.op {
		case "contains":
			return strings.Contains(str, p.needle)
		case "startsWith":
			return strings.HasPrefix(str, p.needle)
		default:
			return strings.HasSuffix(str, p.needle)
		}
	case presentPred:
		_, ok := value(p.lhs, s)
		return ok == p.want
	case truthPred:
		v, ok := value(p.lhs, s)
		return ok && v.(bool)
	case consentPred:
		state := s.Consents[p.purposeID]
		if state == "" {
			state = "none"
		}
		return slices.Contains(p.states, state)
	case listPred:
		return s.Lists[p.listID]
	case blindPred:
		idx, ok := s.Blind[p.field]
		if !ok {
			return false
		}
		return slices.Contains(p.indexes, idx) != p.negate
	}
	panic("filter: unknown predicate")
}

// value returns the operand's value for s and whether it is set. A value of
// the wrong type counts as missing, as it does in SQL.
func value(o operand, s *Subject) (any, bool) {
	var v any
	var ok bool
	if o.field.Event {
		v, ok = s.Facts[o.field.Name]
	} else {
		v, ok = s.Values[o.field.Name]
	}
	if !ok || v == nil {
		return nil, false
	}
	switch o.field.Type {
	case String:
		str, ok := v.(string)
		if o.lower {
			str = asciiLower(str)
		}
		return str, ok
	case Number:
		f, ok := v.(float64)
		return f, ok
	case Bool:
		b, ok := v.(bool)
		return b, ok
	case Time:
		t, ok := v.(time.Time)
		return t.Truncate(time.Microsecond), ok
	case Date:
		str, ok := v.(string)
		if !ok {
			return nil, false
		}
		t, err := time.Parse(time.DateOnly, str)
		return t, err == nil
	}
	return nil, false
}

// compareValues compares a contact's value with a constant of the field's
// type: -1, 0 or 1.
func compareValues(t Type, v, c any) int {
	switch t {
	case String:
		return strings.Compare(v.(string), c.(string))
	case Number:
		return compareFloat(v.(float64), c.(float64))
	case Bool:
		if v.(bool) == c.(bool) {
			return 0
		}
		return 1
	case Time, Date:
		return v.(time.Time).Compare(c.(time.Time))
	}
	return 1
}
