package filter_test

import (
	"strings"
	"testing"
	"time"

	"github.com/consentry/consentry/internal/filter"
)

func testSchema() *filter.Schema {
	f := map[string]*filter.Field{}
	for _, x := range []*filter.Field{
		{Name: "region", Type: filter.String, Column: "region"},
		{Name: "stage", Type: filter.String, Column: "stage"},
		{Name: "email", Type: filter.String, Column: "email"},
		{Name: "opt_in_status", Type: filter.String, Column: "opt_in_status", Values: []string{"none", "double_opt_in"}},
		{Name: "created_at", Type: filter.Time, Column: "created_at"},
		{Name: "score", Type: filter.Number},
		{Name: "vip", Type: filter.Bool},
		{Name: "birthday", Type: filter.Date},
		{Name: "national_id", Type: filter.String, Sensitive: true},
	} {
		f[x.Name] = x
	}
	return &filter.Schema{Fields: f, Purposes: map[string]string{"e-marketing": "p1", "p1": "p1"}}
}

func TestErrorsNamePositionAndSuggestion(t *testing.T) {
	cases := []struct {
		src  string
		pos  int
		want string
	}{
		{`regoin == "EU"`, 1, "unknown field regoin, did you mean region?"},
		{`region == "EU" && stgae == "x"`, 19, "did you mean stage?"},
		{`national_id == "1234"`, 13, "needs permission to reveal"},
		{`national_id > "1234"`, 13, "national_id is sensitive"},
		{`consent("E-marketting") == "granted"`, 9, `unknown purpose "E-marketting", did you mean e-marketing?`},
		{`consent("E-marketing") == "yes"`, 27, `"granted", "withdrawn" or "none"`},
		{`score == "7"`, 10, "score is a number and cannot be compared with a string"},
		{`created_at > "2026-01-01"`, 14, `write date("2026-01-31")`},
		{`optin == "double"`, 10, `opt_in_status is never "double"`},
		{`region ==`, 9, "the condition ends too soon"},
		{`region = "EU"`, 8, "write == to compare"},
		{`region == "EU" stage == "x"`, 16, `"stage" cannot stand here: join two conditions with && or ||`},
		{`(region == "EU"`, 15, "ends too soon"},
		{`region == "EU")`, 15, "check that every bracket is closed"},
		{`region == "EU`, 14, "add the closing quote"},
		{`region == "EU" "x"`, 16, `the text "x" cannot stand here`},
		{`region`, 1, "field region is not a condition"},
		{`region == stage`, 8, "compare a field with a value"},
		{`lowr(region) == "eu"`, 1, "unknown function lowr, did you mean lower?"},
		{`score + 1 > 2`, 7, "arithmetic works on values only"},
		{`region matches "E.*"`, 8, "matches is not supported"},
		{`created_at > now() - duration("a month")`, 31, "is not a duration"},
		{`region == nil`, 8, "region is never missing"},
		{``, 1, "empty"},
		{`inList("newsletter")`, 8, "no lists are defined"},
		{`created_at < date("9999-12-31") + duration("48h")`, 33, "years 1 to 9999"},
		{`created_at < now() + (duration("2562047h") + duration("2562047h"))`, 44, "too long"},
		{`lower(region) == "EU"`, 18, "write \"eu\""},
	}
	for _, c := range cases {
		_, err := filter.Compile(c.src, testSchema(), time.Now())
		fe, ok := err.(*filter.Error)
		if !ok {
			t.Errorf("%s: got %v, want a filter.Error", c.src, err)
			continue
		}
		if strings.Contains(fe.Message, "token") {
			t.Errorf("%s: the message %q names a parser token", c.src, fe.Message)
		}
		if fe.Position != c.pos || !strings.Contains(fe.Message, c.want) {
			t.Errorf("%s: got position %d %q, want %d containing %q", c.src, fe.Position, fe.Message, c.pos, c.want)
		}
	}
}

func TestMatchInMemory(t *testing.T) {
	now := time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)
	anna := &filter.Subject{
		Values: map[string]any{"region": "EU", "stage": "ready to buy", "email": "anna@example.com", "opt_in_status": "double_opt_in",
			"created_at": now.Add(-48 * time.Hour), "score": 7.0, "birthday": "1985-01-01"},
		Consents: map[string]string{"p1": "granted"},
	}
	cases := map[string]bool{
		`region == "EU" && stage == "ready to buy"`:                         true,
		`consent("E-marketing") == "granted" && optin in ["double_opt_in"]`: true,
		`!(email endsWith "@example.com")`:                                  false,
		`created_at > now() - duration("720h")`:                             true,
		`created_at > now() - duration("1d")`:                               false,
		`score > 5 && score <= 7`:                                           true,
		`vip`:                                                               false, // missing
		`!vip`:                                                              true,
		`vip == nil`:                                                        true,
		`vip != true`:                                                       false, // a comparison with a missing value is false
		`birthday < date("1990-01-01")`:                                     true,
		`birthday == date("1985-01-01T10:00:00Z")`:                          false,
		`birthday < date("1985-01-01T10:00:00Z")`:                           true, // the day is its midnight
		`lower(region) == "eu" && region startsWith "E" && email contains "@"`:          true,
		`consent("p1") != "granted" || consent("e-marketing") in ["none", "withdrawn"]`: false,
		`region not in ["US", "APAC"]`:                                                  true,
		`1 + 1 == 2 && region == "EU"`:                                                  true,
		`date("2026-01-01") + duration("24h") == date("2026-01-02") && "EU" == region`:  true,
		`score in [1, 7]`: true,
		`consent("E-marketing") == "granted" and not (stage == "lost") or region == "nowhere"`: true,
	}
	for src, want := range cases {
		c, err := filter.Compile(src, testSchema(), now)
		if err != nil {
			t.Errorf("%s: %v", src, err)
			continue
		}
		if got := c.Match(anna); got != want {
			t.Errorf("%s = %v, want %v", src, got, want)
		}
	}
}

// A workflow rule's condition reads the facts of its event as event.NAME;
// everywhere else event.x is an error that says where it belongs.
func TestEventFacts(t *testing.T) {
	now := time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)
	schema := testSchema()
	schema.EventFacts = map[string]*filter.Field{
		"purpose": {Name: "event.purpose", Type: filter.String, Event: true},
		"state":   {Name: "event.state", Type: filter.String, Event: true, Values: []string{"granted", "withdrawn"}},
	}
	s := &filter.Subject{Values: map[string]any{"region": "EU"}, Facts: map[string]any{"event.purpose": "Share with partners", "event.state": "granted"}}
	cases := map[string]bool{
		`event.purpose == "Share with partners" && event.state == "granted"`: true,
		`event.state == "withdrawn"`:                                         false,
		`event.purpose in ["A", "Share with partners"] && region == "EU"`:    true,
		`lower(event.purpose) contains "partners"`:                           true,
	}
	for src, want := range cases {
		c, err := filter.Compile(src, schema, now)
		if err != nil {
			t.Errorf("%s: %v", src, err)
			continue
		}
		if got := c.Match(s); got != want {
			t.Errorf("%s = %v, want %v", src, got, want)
		}
	}
	for src, wantErr := range map[string]string{
		`event.purpos == "x"`:      `the event has no fact purpos, did you mean purpose?`,
		`event.state == "granded"`: `granded`,
		`region.x == "x"`:          `fields have no members`,
		`event["purpose"] == "x"`:  ``, // the same member access, written with brackets
		`event.purpose() == "x"`:   `only the functions`,
		`event == "x"`:             `unknown field event`,
	} {
		_, err := filter.Compile(src, schema, now)
		if wantErr == "" {
			if err != nil {
				t.Errorf("%s: %v", src, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), wantErr) {
			t.Errorf("%s: got %v, want an error containing %q", src, err, wantErr)
		}
	}
	if _, err := filter.Compile(`event.purpose == "x"`, testSchema(), now); err == nil ||
		!strings.Contains(err.Error(), "only in a workflow rule") {
		t.Errorf("event.x outside a workflow: %v", err)
	}
}

// Needs names what a condition reads beyond the contact's fields.
func TestNeeds(t *testing.T) {
	now := time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)
	for src, want := range map[string]filter.Needs{
		`region == "EU"`: {},
		`region == "EU" || !(consent("E-marketing") == "granted")`:        {Consents: true},
		`region == "EU" && national_id endsWith "12"`:                     {Sensitive: true},
		`national_id contains "1212" || consent("E-marketing") == "none"`: {Consents: true, Sensitive: true},
	} {
		c, err := filter.Compile(src, testSchema(), now)
		if err != nil {
			t.Fatal(err)
		}
		if got := c.Needs(); got != want {
			t.Errorf("%s: %+v, want %+v", src, got, want)
		}
	}
}
