package chart_test

import (
	"encoding/xml"
	"html/template"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/consentry/consentry/internal/web/chart"
)

// wellFormed fails unless out parses as XML: a broken tag or an unescaped
// label would not.
func wellFormed(t *testing.T, out template.HTML) {
	t.Helper()
	d := xml.NewDecoder(strings.NewReader(string(out)))
	for {
		_, err := d.Token()
		if err == io.EOF {
			return
		}
		if err != nil {
			t.Fatalf("not well formed: %v\n%s", err, out)
		}
	}
}

func has(t *testing.T, out template.HTML, want ...string) {
	t.Helper()
	for _, w := range want {
		if !strings.Contains(string(out), w) {
			t.Errorf("lacks %q:\n%s", w, out)
		}
	}
}

func TestBarsShowLabelsFiguresAndNotes(t *testing.T) {
	out := chart.BarsOf("Consent coverage per purpose", 1000, []chart.Bar{
		{Label: "E-marketing", Value: 170, Note: "17% of 1,000 contacts, 30 withdrawn"},
		{Label: "Invoicing", Value: chart.NoFigure, Note: "Legal basis: contract, no consent asked"},
		{Label: "Newsletter", Value: 1000},
	})
	wellFormed(t, out)
	has(t, out, `<figcaption>Consent coverage per purpose</figcaption>`, `role="img" aria-label="Consent coverage per purpose"`,
		`viewBox="0 0 320 172"`, `width="100%"`,
		// Labels, figures beside the bars, notes.
		`>E-marketing</text>`, `>170</text>`, `>17% of 1,000 contacts, 30 withdrawn</text>`, `>1,000</text>`,
		`>Legal basis: contract, no consent asked</text>`,
		// 170 of 1000 of the 246-unit span; a full bar for all of it.
		`width="41.8" height="14" fill="#1d4ed8"`, `width="246" height="14" fill="#1d4ed8"`,
		// Screen readers get every figure.
		`<desc>E-marketing: 170 (17% of 1,000 contacts, 30 withdrawn); Invoicing (Legal basis: contract, no consent asked); Newsletter: 1,000.</desc>`)
	// The purpose without a figure has no bar and no figure.
	if n := strings.Count(string(out), `fill="#1d4ed8"`); n != 2 {
		t.Errorf("%d bars drawn, want 2", n)
	}
	if strings.Contains(string(out), "style=") {
		t.Error("a style attribute, which the pages' CSP blocks")
	}
}

func TestBarWithoutFigureHasItsDetailUnderItsNote(t *testing.T) {
	out := chart.BarsOf("Coverage", 10, []chart.Bar{
		{Label: "Analytics", Value: chart.NoFigure, Note: "Legal basis: legitimate interests", Detail: "12 objections, no consent asked"},
		{Label: "News", Value: 5, Note: "50% of 10 contacts granted; 1 withdrawn", Detail: "never drawn"},
	})
	wellFormed(t, out)
	// The note takes the bar's line (30), the detail the note's (47).
	has(t, out, `<text x="0" y="34" font-size="12" fill="#4b5563">Legal basis: legitimate interests</text>`,
		`<text x="0" y="51" font-size="12" fill="#4b5563">12 objections, no consent asked</text>`,
		`<desc>Analytics (Legal basis: legitimate interests, 12 objections, no consent asked); News: 5 (50% of 10 contacts granted; 1 withdrawn).</desc>`)
	if strings.Contains(string(out), "never drawn") {
		t.Errorf("a drawn bar shows a detail:\n%s", out)
	}
}

func TestBarsScaleToTheLargest(t *testing.T) {
	out := chart.Bars("Opt-in", []chart.Bar{{Label: "A", Value: 500}, {Label: "B", Value: 1000}, {Label: "C", Value: 1}})
	wellFormed(t, out)
	// No notes: rows of 40 units.
	has(t, out, `viewBox="0 0 320 124"`, `width="123" height="14"`, `width="246" height="14"`,
		`width="1.5" height="14"`) // a one stays visible
}

func TestBarsZeroAndEmpty(t *testing.T) {
	out := chart.Bars("Waiting", []chart.Bar{{Label: "Invited", Value: 0}, {Label: "Reminded", Value: 0}})
	wellFormed(t, out)
	has(t, out, `>Invited</text>`, `<desc>Invited: 0; Reminded: 0.</desc>`)
	if strings.Contains(string(out), `fill="#1d4ed8"`) || strings.Count(string(out), ">0</text>") != 2 {
		t.Errorf("zero bars:\n%s", out)
	}
	for _, out := range []template.HTML{chart.Bars("Nothing", nil), chart.Lines("Nothing", time.Now(), nil),
		chart.Lines("Nothing", time.Now(), []chart.Series{{Label: "A"}})} {
		wellFormed(t, out)
		has(t, out, "<figcaption>Nothing</figcaption>", "<p>No figures yet.</p>")
		if strings.Contains(string(out), "<svg") {
			t.Errorf("an empty chart draws: %s", out)
		}
	}
}

func TestHostileLabelsAreEscaped(t *testing.T) {
	evil := `</text><script>alert(1)</script><text x="" onload="x">&`
	outs := []template.HTML{
		chart.Bars(evil, []chart.Bar{{Label: evil, Value: 1, Note: evil}}),
		chart.Lines(evil, time.Date(2025, 3, 1, 0, 0, 0, 0, time.UTC), []chart.Series{{Label: evil, Values: []int64{1, 2}}}),
	}
	for _, out := range outs {
		wellFormed(t, out)
		if s := string(out); strings.Contains(s, "<script") || strings.Contains(s, `onload="x"`) || strings.Contains(s, "</text><") && strings.Contains(s, "<script") {
			t.Errorf("not escaped:\n%s", out)
		}
		has(t, out, "&lt;script&gt;")
	}
}

func TestLongLabelsAreCutButDescribedWhole(t *testing.T) {
	long := strings.TrimSpace(strings.Repeat("Quarterly product newsletter ", 4))
	out := chart.Bars("Coverage", []chart.Bar{{Label: long, Value: 3}})
	has(t, out, ">Quarterly product newsletter Quarterly prod…</text>", "<desc>"+long+": 3.</desc>")
}

func TestLinesOverDays(t *testing.T) {
	first := time.Date(2025, 3, 1, 0, 0, 0, 0, time.UTC)
	out := chart.Lines("Opt-in status over time", first, []chart.Series{
		{Label: "Double opt-in", Values: []int64{10, 20, chart.NoFigure, 40, 35}},
		{Label: "Opted out (contact)", Values: []int64{chart.NoFigure, 1, 2, 3, 1250}},
	})
	wellFormed(t, out)
	has(t, out, `role="img" aria-label="Opt-in status over time"`, `viewBox="0 0 320 216"`,
		// Axis: 0 to a round 2,000, days at both ends and the middle.
		`>0</text>`, `>1k</text>`, `>2k</text>`, `>1 Mar</text>`, `>3 Mar</text>`, `>5 Mar</text>`,
		// A gap breaks the line: 40 on day 4 starts a new one.
		`d="M40 149.3 L108 148.6 M244 147.2 L312 147.5"`,
		// The legend gives the latest figures, in words.
		`>Double opt-in: 35</text>`, `>Opted out (contact): 1,250</text>`, `stroke-dasharray="6 3"`,
		`<desc>Daily figures from 1 Mar 2025 to 5 Mar 2025. Latest: Double opt-in 35, Opted out (contact) 1,250.`,
		// The table has every day, the gap said in words.
		`<th scope="col">Double opt-in</th>`, `<tr><th scope="row">Mon 3 Mar 2025</th><td>no figure</td><td>2</td></tr>`,
		`<tr><th scope="row">Wed 5 Mar 2025</th><td>35</td><td>1,250</td></tr>`)
}

func TestLinesOneDayAndZeros(t *testing.T) {
	first := time.Date(2025, 3, 1, 0, 0, 0, 0, time.UTC)
	out := chart.Lines("Today", first, []chart.Series{{Label: "None", Values: []int64{0}}})
	wellFormed(t, out)
	// One day is a dot in the middle, on the zero line; the axis still
	// has a top.
	has(t, out, `<circle cx="176" cy="150" r="2.5"`, `>1 Mar</text>`, `>2</text>`, `>None: 0</text>`)
	if strings.Contains(string(out), "NaN") || strings.Contains(string(out), "Inf") {
		t.Errorf("bad coordinates:\n%s", out)
	}
}

func TestFigure(t *testing.T) {
	for n, want := range map[int64]string{0: "0", 999: "999", 1000: "1,000", 1234567: "1,234,567", -4200: "-4,200"} {
		if got := chart.Figure(n); got != want {
			t.Errorf("Figure(%d) = %q, want %q", n, got, want)
		}
	}
	if chart.Percent(1, 3) != "33%" || chart.Percent(5, 0) != "0%" {
		t.Error("Percent")
	}
}
