package contact_test

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/consentry/consentry/internal/audit"
	"github.com/consentry/consentry/internal/consent"
	"github.com/consentry/consentry/internal/contact"
	"github.com/consentry/consentry/internal/errs"
	"github.com/consentry/consentry/internal/store"
	"github.com/consentry/consentry/internal/store/storetest"
	"github.com/consentry/consentry/internal/suppression"
	"github.com/consentry/consentry/internal/vault/vaulttest"
)

func ptr[T any](v T) *T { return &v }

func TestNormalizeEmail(t *testing.T) {
	good := map[string]string{" anna@example.com ": "anna@example.com", "Anna.B+news@mail.example.se": "Anna.B+news@mail.example.se"}
	for in, want := range good {
		if got, err := contact.NormalizeEmail(in); err != nil || got != want {
			t.Errorf("%q: got %q, %v", in, got, err)
		}
	}
	for _, in := range []string{"", "anna", "anna@", "anna@example", "Anna <anna@example.com>", "anna@example..com", "a b@example.com", "anna@.example.com"} {
		_, err := contact.NormalizeEmail(in)
		if e := errs.As(err); e == nil || e.Field != "email" {
			t.Errorf("%q accepted or error without field: %v", in, err)
		}
	}
}

// TestNormalizeEmailRefusesInvisibleCharacters: an address with a
// character that cannot be seen looks like another address but is not
// equal to it, so it is refused, naming the character.
func TestNormalizeEmailRefusesInvisibleCharacters(t *testing.T) {
	for in, char := range map[string]string{
		"\ufeffanna@example.com": "U+FEFF", "\u200banna@example.com": "U+200B", "anna@exam\u200bple.com": "U+200B",
		"\u202eanna@example.com": "U+202E", "an\u2060na@example.com": "U+2060", "an\u00adna@example.com": "U+00AD",
		"anna\u180e@example.com": "U+180E", "an\u00a0na@example.com": "U+00A0", "anna@example.com\U000E0041": "U+E0041",
		"an\ufe0fna@example.com": "U+FE0F", "an\u3164na@example.com": "U+3164", "an\u0085na@example.com": "U+0085",
	} {
		_, err := contact.NormalizeEmail(in)
		if e := errs.As(err); e == nil || e.Field != "email" || !strings.Contains(e.Message, char) {
			t.Errorf("%+q: %v", in, err)
		}
	}
	// A custom email field names itself.
	defs := map[string]*contact.FieldDefinition{"billing": {Name: "billing", Type: contact.TypeEmail}}
	if p := contact.Problems(contact.Input{Email: ptr("anna@example.com"), Fields: map[string]any{"billing": "\u200bb@example.com"}}, defs); len(p) != 1 ||
		!strings.HasSuffix(p[0].Field, "billing") || p[0].Code != "invisible_character" {
		t.Errorf("custom field: %+v", p)
	}
}

// TestProblemsNamesEveryBadField: each field is checked on its own, so
// that every bad one is named at once, and good ones are not.
func TestProblemsNamesEveryBadField(t *testing.T) {
	defs := map[string]*contact.FieldDefinition{"size": {Name: "size", Type: contact.TypeNumber}}
	in := contact.Input{Email: ptr("nope"), FirstName: ptr("Ann"), Phone: ptr("call me"), Country: ptr("Sweden"),
		Fields: map[string]any{"size": "big"}}
	var got []string
	for _, e := range contact.Problems(in, defs) {
		got = append(got, e.Field)
	}
	slices.Sort(got)
	if strings.Join(got, " ") != "country email fields.size phone" {
		t.Fatalf("problems named: %v", got)
	}
	if p := contact.Problems(contact.Input{Email: ptr("ann@example.com"), FirstName: ptr("Ann")}, defs); p != nil {
		t.Fatalf("good fields: %v", p)
	}
}

func TestMaskShowsAtMostHalf(t *testing.T) {
	cases := []struct{ mask, value, want string }{
		{"last:4", "4111111111111111", "••••••••••••1111"},
		{"last:4", "123456", "•••456"},
		{"first:2", "198501011234", "19••••••••••"},
		{"none", "secret", "••••••"},
		{"last:4", "ab", "•b"},
	}
	for _, c := range cases {
		f := &contact.FieldDefinition{Mask: c.mask}
		if got := f.MaskValue(c.value); got != c.want {
			t.Errorf("%s of %q = %q, want %q", c.mask, c.value, got, c.want)
		}
	}
}

func TestCustomFields(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		ctx := context.Background()
		cs := consent.NewService(db)
		people := contact.NewService(db, cs)
		people.Vault = vaulttest.New(t)
		for _, in := range []contact.FieldInput{
			{Name: ptr("segment"), Type: ptr("text")},
			{Name: ptr("score"), Type: ptr("number")},
			{Name: ptr("birthday"), Type: ptr("date"), Personal: ptr(true)},
			{Name: ptr("national_id"), Type: ptr("text"), Personal: ptr(true), Sensitive: ptr(true)},
		} {
			if _, err := people.CreateField(ctx, audit.Actor{Kind: "user"}, in); err != nil {
				t.Fatal(err)
			}
		}
		bad := []struct {
			in    contact.FieldInput
			field string
		}{
			{contact.FieldInput{Name: ptr("Region"), Type: ptr("text")}, "name"},
			{contact.FieldInput{Name: ptr("email"), Type: ptr("text")}, "name"},
			{contact.FieldInput{Name: ptr("segment"), Type: ptr("text")}, "name"},
			{contact.FieldInput{Name: ptr("x"), Type: ptr("blob")}, "type"},
			{contact.FieldInput{Name: ptr("y"), Type: ptr("text"), Mask: ptr("last:99")}, "mask"},
		}
		for _, b := range bad {
			_, err := people.CreateField(ctx, audit.Actor{Kind: "user"}, b.in)
			if e := errs.As(err); e == nil || e.Field != b.field {
				t.Errorf("%s: got %v, want an error on %s", *b.in.Name, err, b.field)
			}
		}
		if _, err := people.UpdateField(ctx, audit.Actor{Kind: "user"}, "national_id", contact.FieldInput{Sensitive: ptr(false)}); !errs.Is(err, errs.KindRefused) {
			t.Fatalf("turning sensitive off: %v", err)
		}
		if _, err := people.UpdateField(ctx, audit.Actor{Kind: "user"}, "segment", contact.FieldInput{Sensitive: ptr(true)}); err != nil {
			t.Fatal(err)
		}

		c, err := people.Create(ctx, contact.NewContact{Input: contact.Input{Email: ptr("p@example.com"), Country: ptr("se"),
			Fields: map[string]any{"score": 7.5, "birthday": "1985-01-01", "national_id": "198501011234"}},
			Actor: consent.Actor{Kind: consent.ActorAPIToken}, Evidence: consent.Evidence{Method: consent.MethodAPI}})
		if err != nil {
			t.Fatal(err)
		}
		if c.Country != "SE" || c.Fields["score"] != 7.5 || c.Fields["national_id"] != "••••••••1234" {
			t.Fatalf("created: %+v", c)
		}
		got, err := people.Get(ctx, c.ID)
		if err != nil || got.Fields["national_id"] != "••••••••1234" || got.Fields["birthday"] != "1985-01-01" {
			t.Fatalf("read back %v: %+v", err, got)
		}
		for name, v := range map[string]any{"score": "lots", "birthday": "01/01/1985", "unknown": "x", "segment": 5} {
			_, err := people.Update(ctx, c.ID, contact.Input{Fields: map[string]any{name: v}})
			if e := errs.As(err); e == nil || e.Field != "fields."+name {
				t.Errorf("fields.%s = %v: got %v", name, v, err)
			}
		}
		up, err := people.Update(ctx, c.ID, contact.Input{Fields: map[string]any{"score": nil}, Stage: ptr("ready to buy")})
		if err != nil {
			t.Fatal(err)
		}
		if _, has := up.Fields["score"]; has || up.Stage != "ready to buy" || up.Email != "p@example.com" {
			t.Fatalf("after update: %+v", up)
		}
	})
}

// TestUpsertOfAnAddressTakenMeanwhile prepares an upsert of a free address,
// lets another write take the address before the upsert's write, and
// checks that the write fails with the conflict Retry recognises, that
// nothing of it was kept, and that running it again finds the contact that
// took the address and changes nothing of it: the values are only held,
// sensitive ones sealed, until ApplyHeld writes them.
func TestUpsertOfAnAddressTakenMeanwhile(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		ctx := context.Background()
		people := contact.NewService(db, consent.NewService(db))
		people.Vault = vaulttest.New(t)
		if _, err := people.CreateField(ctx, audit.Actor{Kind: "user"}, contact.FieldInput{Name: ptr("national_id"), Type: ptr("text"), Sensitive: ptr(true)}); err != nil {
			t.Fatal(err)
		}
		up, err := people.PrepareUpsert(ctx, contact.Input{Email: ptr("ann@example.com"), FirstName: ptr("Ann"),
			Fields: map[string]any{"national_id": "198501011234"}})
		if err != nil {
			t.Fatal(err)
		}
		taken, err := people.Create(ctx, contact.NewContact{Input: contact.Input{Email: ptr("ANN@example.com"), LastName: ptr("Lind")}})
		if err != nil {
			t.Fatal(err)
		}
		var got contact.UpsertResult
		var held contact.Held
		write := func(tx *store.Tx) error {
			var err error
			if got, err = up.CreateOrFind(tx, time.Now()); err != nil || got.Created {
				return err
			}
			held, err = up.Hold(tx, got.Key.ID, "hold-1", time.Now())
			return err
		}
		err = db.Write(ctx, write)
		if !up.Retry(err) {
			t.Fatalf("first write: got %v, want the email_taken conflict", err)
		}
		if up.Retry(err) {
			t.Fatal("Retry said yes twice: a caller would loop")
		}
		if err := db.Write(ctx, write); err != nil {
			t.Fatal(err)
		}
		if got.Created || got.Key.ID != taken.ID || got.Contact.LastName != "Lind" {
			t.Fatalf("the second write created %v (contact %s), want to find %s", got.Created, got.Key.ID, taken.ID)
		}
		raw, _ := json.Marshal(held)
		if strings.Contains(string(raw), "198501011234") || held.Sealed["national_id"] == "" || *held.Input.FirstName != "Ann" || held.Input.Email != nil {
			t.Fatalf("held: %s", raw)
		}
		c, err := people.Get(ctx, taken.ID)
		if err != nil {
			t.Fatal(err)
		}
		if c.FirstName != "" || c.Fields["national_id"] != nil {
			t.Fatalf("the contact changed before the held values were applied: %+v", c)
		}
		// A sealed value opens for its own hold only.
		if err := db.Write(ctx, func(tx *store.Tx) error { return people.ApplyHeld(tx, taken.ID, "hold-2", held, time.Now()) }); err == nil {
			t.Fatal("a held value opened under another hold")
		}
		if err := db.Write(ctx, func(tx *store.Tx) error { return people.ApplyHeld(tx, taken.ID, "hold-1", held, time.Now()) }); err != nil {
			t.Fatal(err)
		}
		if c, err = people.Get(ctx, taken.ID); err != nil {
			t.Fatal(err)
		}
		if c.FirstName != "Ann" || c.LastName != "Lind" || c.Email != "ANN@example.com" || c.Fields["national_id"] != "••••••••1234" {
			t.Fatalf("contact after the held values: %q %q <%s> %v", c.FirstName, c.LastName, c.Email, c.Fields)
		}
		if v, err := people.Reveal(ctx, taken.ID, "national_id", consent.Actor{Kind: consent.ActorSystem}, ""); err != nil || v != "198501011234" {
			t.Fatalf("the sensitive value: %q %v", v, err)
		}
		var n int
		if err := db.Read.QueryRow(`SELECT count(*) FROM contacts`).Scan(&n); err != nil || n != 1 {
			t.Fatalf("%d contacts (%v), want 1", n, err)
		}
	})
}

// TestAddressChangeToAnErasedAddressIsRefused: changing a contact's
// address to one that was erased is refused as creating a contact with it
// is (422, code address_erased, field email), in any case and with spaces,
// and nothing of the change is written: no field, no event. A change of
// address carries no consent, so nothing lets it through. Changing only
// the case of the contact's own address is no change of address, even
// when that address was erased before (it came back with a new consent).
func TestAddressChangeToAnErasedAddressIsRefused(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		ctx := context.Background()
		people := contact.NewService(db, consent.NewService(db))
		b, err := people.Create(ctx, contact.NewContact{Input: contact.Input{Email: ptr("bo@example.com"), FirstName: ptr("Bo")}})
		if err != nil {
			t.Fatal(err)
		}
		back, err := people.Create(ctx, contact.NewContact{Input: contact.Input{Email: ptr("back@example.com")}})
		if err != nil {
			t.Fatal(err)
		}
		// What an erasure or a deletion leaves: a suppression entry for
		// the address.
		if err := db.Write(ctx, func(tx *store.Tx) error {
			for _, a := range []string{"gone@example.com", "back@example.com"} {
				if err := suppression.AddTx(tx, a, suppression.Erased, time.Now()); err != nil {
					return err
				}
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		events := func() int {
			var n int
			if err := db.Read.QueryRow(`SELECT count(*) FROM events WHERE type = 'contact.updated'`).Scan(&n); err != nil {
				t.Fatal(err)
			}
			return n
		}
		if _, err := people.Create(ctx, contact.NewContact{Input: contact.Input{Email: ptr("gone@example.com")}}); !isAddressErased(err) {
			t.Fatalf("creating with the erased address: %v", err)
		}
		for _, addr := range []string{"gone@example.com", " GONE@Example.com "} {
			_, err := people.Update(ctx, b.ID, contact.Input{Email: ptr(addr), FirstName: ptr("Changed")})
			if !isAddressErased(err) || !errs.Is(err, errs.KindRefused) {
				t.Fatalf("changing the address to %q: %v, want the address_erased refusal on email", addr, err)
			}
		}
		got, err := people.Get(ctx, b.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.Email != "bo@example.com" || got.FirstName != "Bo" || got.PreviouslyErasedAt != nil {
			t.Fatalf("a refused change was written: <%s> %q %v", got.Email, got.FirstName, got.PreviouslyErasedAt)
		}
		if n := events(); n != 0 {
			t.Fatalf("%d contact.updated events after refused changes, want 0", n)
		}
		if _, err := people.Update(ctx, back.ID, contact.Input{Email: ptr("BACK@example.com")}); err != nil {
			t.Fatalf("changing the case of the contact's own address: %v", err)
		}
		if got, err = people.Update(ctx, b.ID, contact.Input{Email: ptr("bo.new@example.com")}); err != nil || got.Email != "bo.new@example.com" {
			t.Fatalf("changing to an address never erased: %v %+v", err, got)
		}
	})
}

func isAddressErased(err error) bool {
	e := errs.As(err)
	return e != nil && e.Code == "address_erased" && e.Field == "email"
}
