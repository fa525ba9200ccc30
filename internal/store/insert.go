package store

import (
	"fmt"
	"strings"
)

// insertRowsSQLite is how many rows one INSERT writes on SQLite: with a
// dozen columns, well under its parameter limit.
const insertRowsSQLite = 500

// InsertRows inserts rows into the columns that head names ("INSERT INTO t
// (a, b, c)"), each row's values in that order, passing its error through
// wrap as ExecLater does (it is queued on PostgreSQL). types are the
// PostgreSQL types of the columns ("text", "bigint", "integer"); a value
// is a string, an integer or nil (NULL).
func (t *Tx) InsertRows(wrap func(error) error, head string, types []string, rows [][]any) error {
	return t.ExecRows(wrap, head+" "+RowsHere, types, rows)
}

// RowsHere marks where ExecRows puts the rows in its statement.
const RowsHere = "{rows}"

// ExecRows runs query, where RowsHere stands for rows as a source of their
// own (a SELECT or VALUES, whose columns are types), queued as ExecLater
// does: for example "WITH v(a, b) AS ({rows}) INSERT ... SELECT ... FROM v
// JOIN ...". It runs nothing when there are no rows.
//
// On SQLite the rows go as multi-row VALUES, a few hundred to a statement.
// On PostgreSQL they go as one array per column, read back by unnest, in
// one statement whose text is the same for any number of rows: parsed and
// planned once per connection, where VALUES of thousands of parameters is
// a new statement for each batch size, and parsing and binding it cost
// more than the work itself.
func (t *Tx) ExecRows(wrap func(error) error, query string, types []string, rows [][]any) error {
	if len(rows) == 0 {
		return nil
	}
	// Checked alike on both databases, so that a wrong value is the same
	// error on each, before anything is written.
	cols := make([]any, len(types))
	for c, typ := range types {
		text := typ == "text"
		var strs []*string
		var ints []*int64
		if text {
			strs = make([]*string, len(rows))
		} else {
			ints = make([]*int64, len(rows))
		}
		for i, r := range rows {
			if len(r) != len(types) {
				return fmt.Errorf("store: insert: a row of %d values for %d columns", len(r), len(types))
			}
			var err error
			if text {
				strs[i], err = textValue(r[c])
			} else {
				ints[i], err = intValue(r[c])
			}
			if err != nil {
				return err
			}
		}
		cols[c] = column(strs, ints, text)
	}
	if t.Dialect() == Postgres {
		ph := make([]string, len(types))
		for c, typ := range types {
			ph[c] = fmt.Sprintf("$%d::%s[]", c+1, typ)
		}
		return t.ExecLater(wrap, strings.Replace(query, RowsHere, "SELECT * FROM unnest("+strings.Join(ph, ", ")+")", 1), cols...)
	}
	row := "(" + strings.TrimSuffix(strings.Repeat("?, ", len(types)), ", ") + ")"
	for start := 0; start < len(rows); start += insertRowsSQLite {
		part := rows[start:min(start+insertRowsSQLite, len(rows))]
		args := make([]any, 0, len(part)*len(types))
		for _, r := range part {
			args = append(args, r...)
		}
		if err := t.ExecLater(wrap, strings.Replace(query, RowsHere, "VALUES "+Rows(SQLite, len(part), row), 1), args...); err != nil {
			return err
		}
	}
	return nil
}

// column returns a column's values as the argument of its array: plain
// strings or integers when none is NULL, which pgx encodes without
// reflection, pointers otherwise.
func column(strs []*string, ints []*int64, text bool) any {
	if text {
		plain := make([]string, len(strs))
		for i, v := range strs {
			if v == nil {
				return strs
			}
			plain[i] = *v
		}
		return plain
	}
	plain := make([]int64, len(ints))
	for i, v := range ints {
		if v == nil {
			return ints
		}
		plain[i] = *v
	}
	return plain
}

func textValue(v any) (*string, error) {
	switch v := v.(type) {
	case nil:
		return nil, nil
	case string:
		return &v, nil
	}
	return nil, fmt.Errorf("store: insert: %T for a text column", v)
}

func intValue(v any) (*int64, error) {
	var n int64
	switch v := v.(type) {
	case nil:
		return nil, nil
	case int64:
		n = v
	case int:
		n = int64(v)
	case int32:
		n = int64(v)
	default:
		return nil, fmt.Errorf("store: insert: %T for an integer column", v)
	}
	return &n, nil
}

// Among returns the condition that x is one of values, for "WHERE x " +
// cond, with the values as one parameter numbered first: "= ANY($n)" with
// an array on PostgreSQL, "IN (SELECT value FROM json_each($n))" on SQLite.
// The statement's text is the same for any number of values, so it is
// prepared once, where an IN list of placeholders is a new statement for
// each length. Values must be strings or integers.
func Among[T string | int64](d Dialect, first int, values []T) (string, []any) {
	if d == Postgres {
		return fmt.Sprintf("= ANY($%d)", first), []any{values}
	}
	list, args := InList(d, first, values)
	return "IN (" + list + ")", args
}
