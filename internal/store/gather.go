package store

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
)

// A bulk write (an import's chunk of new contacts) queues thousands of
// single-row INSERTs into a handful of tables: a contact, its consent
// records, their current state, events. Sent one by one, each pays for a
// statement's start and, on PostgreSQL, its place in the pipeline, which
// costs more than the row. Gather lets such a writer say that it writes
// independent rows, each with the same few statements: the statements are
// held, and rows queued alike (the same statement texts in the same order)
// are sent together, one statement per place in the row, each INSERT as
// a multi-row one.
//
// Each row's statements therefore still run in the order the row queued
// them (a contact before its consent records, an INSERT before the UPDATE
// of the same row); only the rows interleave. That is right because the
// caller promises that nothing one row writes is read or written by
// another row of the same Gather. A read, or an Exec, inside a row sends
// what is held first, so a row always sees its own writes.

// Gather runs fn(0), fn(1), ..., fn(rows-1), each writing one independent
// row (see above), with the statements they queue by ExecLater held and
// sent merged. On SQLite they are sent when the last row is done, and the
// first error, fn's or a failed statement's, is returned; on PostgreSQL
// they go with the transaction's next round trip, as ExecLater's always
// do. Should a row fail, what was queued is dropped: the caller's write
// fails and the transaction rolls back. Gather inside Gather is part of
// the outer one's row.
func (t *Tx) Gather(rows int, fn func(i int) error) error {
	if t.gathering {
		for i := range rows {
			if err := fn(i); err != nil {
				return err
			}
		}
		return nil
	}
	t.gathering = true
	var err error
	for i := 0; i < rows && err == nil; i++ {
		t.gatherRow++
		err = fn(i)
	}
	t.gathering = false
	if err != nil {
		t.held = nil
		return err
	}
	return t.sendHeld()
}

// sendHeld runs, on SQLite, the statements Gather holds, merged.
func (t *Tx) sendHeld() error {
	if len(t.held) == 0 {
		return nil
	}
	queue := merge(t.held, SQLite)
	t.held = nil
	for _, s := range queue {
		if _, err := t.exec(s.query, s.args); err != nil {
			if s.wrap != nil {
				err = s.wrap(err)
			}
			return err
		}
	}
	return nil
}

// merge returns queue with each run of gathered statements of one write
// function merged (mergeRun). Other statements stay as and where they are.
func merge(queue []laterStmt, d Dialect) []laterStmt {
	out := make([]laterStmt, 0, len(queue))
	for i := 0; i < len(queue); {
		s := queue[i]
		if s.gatherRow == 0 {
			out = append(out, s)
			i++
			continue
		}
		j := i + 1
		for j < len(queue) && queue[j].gatherRow != 0 && queue[j].owner == s.owner {
			j++
		}
		out = append(out, mergeRun(queue[i:j], d)...)
		i = j
	}
	return out
}

// mergeRun cuts run into its rows and sends them place by place: the
// first statement of every row, then the second, and so on; at each
// place, the statements of one text merged, texts first met first.
func mergeRun(run []laterStmt, d Dialect) []laterStmt {
	var rows [][]laterStmt
	longest := 0
	for start := 0; start < len(run); {
		end := start + 1
		for end < len(run) && run[end].gatherRow == run[start].gatherRow {
			end++
		}
		rows = append(rows, run[start:end])
		longest = max(longest, end-start)
		start = end
	}
	out := make([]laterStmt, 0, len(run))
	for place := range longest {
		var order []string
		groups := map[string][]laterStmt{}
		for _, r := range rows {
			if place >= len(r) {
				continue
			}
			s := r[place]
			if _, ok := groups[s.query]; !ok {
				order = append(order, s.query)
			}
			groups[s.query] = append(groups[s.query], s)
		}
		for _, q := range order {
			out = append(out, mergeSame(groups[q], d)...)
		}
	}
	return out
}

// mergeSame merges statements of one text into as few as the merged
// sizes allow, or returns them as they are when the text cannot merge.
func mergeSame(g []laterStmt, d Dialect) []laterStmt {
	shape := shapeOf(g[0].query)
	if shape == nil || len(g) == 1 {
		return g
	}
	var out []laterStmt
	for len(g) > 0 {
		n := shape.rowsFor(len(g))
		if n == 1 {
			out = append(out, g[0])
			g = g[1:]
			continue
		}
		args := make([]any, 0, n*len(shape.uses))
		for _, s := range g[:n] {
			if d == SQLite {
				for _, u := range shape.uses {
					args = append(args, s.args[u-1])
				}
			} else {
				args = append(args, s.args...)
			}
		}
		out = append(out, laterStmt{query: shape.text(n, d), args: args, wrap: g[0].wrap, owner: g[0].owner})
		g = g[n:]
	}
	return out
}

// insertShape is a single-row INSERT ... VALUES (...) [suffix] taken
// apart: the text before the row, the row, and what follows it (an ON
// CONFLICT clause), which must bind nothing.
type insertShape struct {
	head, row, tail string
	params          int   // the highest $n in the row
	uses            []int // the row's placeholders in order, by n
	mu              sync.Mutex
	texts           map[int]string // by rows, negative for SQLite's
}

var shapes sync.Map // query → *insertShape, or nil when it cannot merge

// Row counts merged statements take: a few fixed sizes, so that each
// query has few texts (SQLite keeps them compiled, PostgreSQL prepared).
var mergeSizes = []int{256, 64, 16, 4, 2}

// maxMergedParams stays under both databases' limits on bound parameters.
const maxMergedParams = 30000

// rowsFor is how many of left statements the next merged one takes.
func (s *insertShape) rowsFor(left int) int {
	for _, n := range mergeSizes {
		if n <= left && n*len(s.uses) <= maxMergedParams {
			return n
		}
	}
	return 1
}

// text returns the statement for n rows. On PostgreSQL the placeholders
// are numbered on; on SQLite each is a plain ?, bound in order (the
// arguments go once per use), as SQLite looks each numbered one up in a
// list, which for thousands costs more than the rows.
func (s *insertShape) text(n int, d Dialect) string {
	key := n
	if d == SQLite {
		key = -n
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if t, ok := s.texts[key]; ok {
		return t
	}
	var b strings.Builder
	b.WriteString(s.head)
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		by := i * s.params
		eachParam(s.row, func(text string, p int) {
			switch {
			case p == 0:
				b.WriteString(text)
			case d == SQLite:
				b.WriteByte('?')
			default:
				fmt.Fprintf(&b, "$%d", p+by)
			}
		})
	}
	b.WriteString(s.tail)
	if s.texts == nil {
		s.texts = map[int]string{}
	}
	s.texts[key] = b.String()
	return s.texts[key]
}

// shapeOf takes query apart as an insertShape, or returns nil when it is
// not a single-row INSERT ... VALUES whose row holds every placeholder.
func shapeOf(query string) *insertShape {
	if v, ok := shapes.Load(query); ok {
		s, _ := v.(*insertShape)
		return s
	}
	s := parseInsert(query)
	if s == nil {
		shapes.Store(query, (*insertShape)(nil))
		return nil
	}
	v, _ := shapes.LoadOrStore(query, s)
	return v.(*insertShape)
}

func parseInsert(query string) *insertShape {
	trimmed := strings.TrimSpace(query)
	if len(trimmed) < 7 || !strings.EqualFold(trimmed[:7], "INSERT ") {
		return nil
	}
	upper := strings.ToUpper(query)
	at := strings.Index(upper, "VALUES")
	if at < 0 || strings.Contains(upper, "RETURNING") || strings.Contains(upper, "SELECT") {
		return nil
	}
	open := strings.IndexByte(query[at:], '(')
	if open < 0 || strings.TrimSpace(query[at+len("VALUES"):at+open]) != "" {
		return nil
	}
	open += at
	end := closing(query, open)
	if end < 0 {
		return nil
	}
	tail := query[end+1:]
	if strings.ContainsRune(tail, '$') || strings.HasPrefix(strings.TrimSpace(tail), ",") {
		return nil // a second row, or a bound value after the row
	}
	row := query[open : end+1]
	var uses []int
	eachParam(row, func(_ string, n int) {
		if n > 0 {
			uses = append(uses, n)
		}
	})
	if len(uses) == 0 {
		return nil
	}
	return &insertShape{head: query[:open], row: row, tail: tail, params: slices.Max(uses), uses: uses}
}

// closing returns the index of the parenthesis that closes the one at
// open, skipping quoted text, or -1.
func closing(s string, open int) int {
	depth := 0
	for i := open; i < len(s); i++ {
		switch s[i] {
		case '\'', '"':
			q := s[i]
			for i++; i < len(s) && s[i] != q; i++ {
			}
		case '(':
			depth++
		case ')':
			depth--
			if depth == 0 {
				return i
			}
		}
	}
	return -1
}

// eachParam calls fn with row cut into placeholders ($n, with n) and the
// text between them (n 0); a $ inside quotes is text.
func eachParam(row string, fn func(text string, n int)) {
	start := 0
	for i := 0; i < len(row); i++ {
		switch row[i] {
		case '\'', '"':
			q := row[i]
			for i++; i < len(row) && row[i] != q; i++ {
			}
		case '$':
			j := i + 1
			for j < len(row) && row[j] >= '0' && row[j] <= '9' {
				j++
			}
			n, err := strconv.Atoi(row[i+1 : j])
			if err != nil || n == 0 {
				continue
			}
			fn(row[start:i], 0)
			fn(row[i:j], n)
			start, i = j, j-1
		}
	}
	fn(row[start:], 0)
}
