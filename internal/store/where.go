package store

import (
	"fmt"
	"strings"
)

// Where builds a query's conditions a filter at a time, each with its one
// argument numbered in turn ($1, $2, ...), so that a list with optional
// filters writes one text that runs on both databases.
type Where struct {
	conds []string
	Args  []any // the arguments, in the order of their numbers
}

// And adds the condition expr, which ends before its operand, compared
// with arg: And("seq <", 10) is "seq < $1".
func (w *Where) And(expr string, arg any) {
	w.conds = append(w.conds, expr+" "+w.Arg(arg))
}

// Arg adds arg and returns its placeholder, for a part of the query
// beyond the conditions (a LIMIT).
func (w *Where) Arg(arg any) string {
	w.Args = append(w.Args, arg)
	return fmt.Sprintf("$%d", len(w.Args))
}

// String is the conditions joined by AND; "TRUE" when there are none.
func (w *Where) String() string {
	if len(w.conds) == 0 {
		return "TRUE"
	}
	return strings.Join(w.conds, " AND ")
}
