package contact

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/consentry/consentry/internal/filter"
	"github.com/consentry/consentry/internal/store"
)

// Selection is the contacts a condition selects, compiled once: to count
// them, and to read them page by page however many there are (the contact
// list's export reads a million this way), with the same SQL the list and
// the count use.
type Selection struct {
	s     *Service
	cond  *filter.Condition // nil: every contact
	where []string
	args  []any
	who   Asker
}

// Select compiles condition for who; empty selects every contact. An
// invalid condition is an error on the field "filter" that carries the
// position. Nothing is written: whoever answers with what the selection
// holds writes its look-ups first (LogLookupsTx).
func (s *Service) Select(ctx context.Context, condition string, who Asker) (*Selection, error) {
	sel := &Selection{s: s, who: who}
	if strings.TrimSpace(condition) == "" {
		return sel, nil
	}
	cond, err := s.Condition(ctx, condition, who.MayReveal)
	if err != nil {
		return nil, err
	}
	w, a := cond.SQL(s.DB.Dialect, 1)
	sel.cond, sel.where, sel.args = cond, []string{w}, a
	return sel, nil
}

// and narrows the selection with one more SQL condition on contacts c,
// whose placeholder is $N for the next argument.
func (sel *Selection) and(cond string, arg any) {
	sel.args = append(sel.args, arg)
	sel.where = append(sel.where, strings.ReplaceAll(cond, "$N", fmt.Sprintf("$%d", len(sel.args))))
}

// whereSQL is the selection's WHERE clause ("" for every contact).
func (sel *Selection) whereSQL() string {
	if len(sel.where) == 0 {
		return ""
	}
	return " WHERE " + strings.Join(sel.where, " AND ")
}

// LogLookupsTx writes, inside tx, an access-log entry for each sensitive
// field the condition compares with a value (through its blind index), in
// the asker's name: before anything the selection holds is shown, so that
// if the entries cannot be written, nothing is. A condition that compares
// none writes nothing.
func (sel *Selection) LogLookupsTx(tx *store.Tx, now time.Time) error {
	if sel.cond == nil {
		return nil
	}
	for _, f := range sel.cond.ValueLookups() {
		if err := LogAccessTx(tx, AccessEntry{At: now, Actor: sel.who.Actor, Field: f, IP: sel.who.IP}); err != nil {
			return err
		}
	}
	return nil
}

// logLookups is LogLookupsTx in a transaction of its own, written only
// when the condition compares a sensitive value.
func (sel *Selection) logLookups(ctx context.Context) error {
	if sel.cond == nil || len(sel.cond.ValueLookups()) == 0 {
		return nil
	}
	return sel.s.DB.Write(ctx, func(tx *store.Tx) error { return sel.LogLookupsTx(tx, sel.s.now()) })
}

// Count returns how many contacts the selection holds now.
func (sel *Selection) Count(ctx context.Context) (int64, error) {
	var n int64
	if err := sel.s.DB.Read.QueryRowContext(ctx, "SELECT count(*) FROM contacts c"+sel.whereSQL(), sel.args...).Scan(&n); err != nil {
		return 0, fmt.Errorf("contact: count: %w", err)
	}
	return n, nil
}

// page reads up to limit contacts of the selection after the id after
// ("" from the start), in id order, with sensitive values masked, and
// the field definitions to mask them with (nil: read them). spans reads
// the masked values of the range of ids the page spans, for a reader that
// reads every page (Pages: the ranges do not overlap, so it reads each
// value once in all), rather than of the page's ids, for one page of a
// selection that may be spread thin over many contacts.
func (sel *Selection) page(ctx context.Context, after string, limit int, defs map[string]*FieldDefinition, spans bool) ([]*Contact, error) {
	where, args := sel.where[:len(sel.where):len(sel.where)], sel.args[:len(sel.args):len(sel.args)]
	if after != "" {
		args = append(args, after)
		where = append(where, fmt.Sprintf("id > $%d", len(args)))
	}
	args = append(args, limit)
	query := contactSelect
	if len(where) > 0 {
		query += " WHERE " + strings.Join(where, " AND ")
	}
	query += fmt.Sprintf(" ORDER BY id LIMIT $%d", len(args))
	out, err := store.QueryAll(ctx, sel.s.DB.Read, scanContact, query, args...)
	if err != nil {
		return nil, fmt.Errorf("contact: list: %w", err)
	}
	if defs == nil {
		if defs, err = sel.s.fieldMap(ctx); err != nil {
			return nil, err
		}
	}
	for _, c := range out {
		maskFields(c, defs)
	}
	if spans {
		return out, attachMaskedBetween(ctx, sel.s.DB.Read, out, after)
	}
	return out, sel.s.attachMasked(ctx, out)
}

// Pages calls fn with every contact of the selection, in id order, up to
// size at a time, each page read by key from where the last one ended:
// every page costs the same, and only one is held at a time. Sensitive
// values are masked, as in List; nothing is decrypted. Contacts created
// or changed while it reads are seen or not depending on where the
// reading is. It stops at fn's first error, or the context's, and
// returns it.
func (sel *Selection) Pages(ctx context.Context, size int, fn func([]*Contact) error) error {
	defs, err := sel.s.fieldMap(ctx)
	if err != nil {
		return err
	}
	after := ""
	for {
		cs, err := sel.page(ctx, after, size, defs, true)
		if err != nil {
			return err
		}
		if len(cs) > 0 {
			if err := fn(cs); err != nil {
				return err
			}
		}
		if len(cs) < size {
			return nil
		}
		after = cs[len(cs)-1].ID
	}
}
