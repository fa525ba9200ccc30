package contact

import (
	"encoding/json"
	"maps"
	"slices"
	"time"

	"github.com/consentry/consentry/internal/consent"
	"github.com/consentry/consentry/internal/contactstate"
	"github.com/consentry/consentry/internal/events"
	"github.com/consentry/consentry/internal/store"
)

// insertTx stores the new contact c with its contact.created event, and
// notes an earlier erasure of its address (erased; nil: none). Every way a
// contact is created comes here; actor and method say who created it and
// how.
func insertTx(tx *store.Tx, c *Contact, erased *time.Time, actor consent.Actor, method string) error {
	if err := contactstate.InsertTx(tx, c.profile(), c.OptInStatus, c.CreatedAt); err != nil {
		return err
	}
	if err := notePreviouslyErased(tx, c, erased); err != nil {
		return err
	}
	if method == "" {
		method = consent.MethodEnteredByUser
		if actor.Kind == consent.ActorAPIToken {
			method = consent.MethodAPI
		}
	}
	return events.Emit(tx, events.ContactCreated, c.ID, events.ContactCreatedData{ContactID: c.ID, ActorKind: actor.Kind,
		Method: method}, c.CreatedAt)
}

// snapshot is what a contact's profile was before a change, to name what
// the change changed (changedFields).
type snapshot struct {
	profile contactstate.Profile
	fields  map[string]any
}

func snapshotOf(c *Contact) snapshot {
	return snapshot{profile: *c.profile(), fields: maps.Clone(c.Fields)}
}

// updateTx writes c's profile, and when anything changed since before (or
// a sensitive value was written or removed: secrets), the contact.updated
// event naming the fields. Every change of a contact's details comes here.
func updateTx(tx *store.Tx, before snapshot, c *Contact, secrets map[string]*string, now time.Time) error {
	if err := contactstate.UpdateProfileTx(tx, c.profile(), now); err != nil {
		return err
	}
	changed := changedFields(before, c, secrets)
	if len(changed) == 0 {
		return nil
	}
	return events.Emit(tx, events.ContactUpdated, c.ID, events.ContactUpdatedData{ContactID: c.ID, Fields: changed}, now)
}

// changedFields names, sorted, the core and custom fields whose value
// differs between before and c, and the sensitive fields in secrets.
func changedFields(before snapshot, c *Contact, secrets map[string]*string) []string {
	var out []string
	for _, f := range CoreFields {
		if f.Value(c) != before.coreValue(f) {
			out = append(out, f.Name)
		}
	}
	if c.Kind != before.profile.Kind {
		out = append(out, "kind")
	}
	names := map[string]bool{}
	for name := range before.fields {
		names[name] = true
	}
	for name := range c.Fields {
		names[name] = true
	}
	for name := range secrets {
		names[name] = true
	}
	for name := range names {
		_, secret := secrets[name]
		if secret || !sameValue(before.fields, c.Fields, name) {
			out = append(out, name)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// coreValue is core field f's value in the snapshot.
func (s snapshot) coreValue(f CoreField) string {
	p := s.profile
	c := Contact{Email: p.Email, FirstName: p.FirstName, LastName: p.LastName, Phone: p.Phone, Country: p.Country,
		Region: p.Region, Language: p.Language, Stage: p.Stage, Owner: p.Owner}
	return f.Value(&c)
}

// sameValue reports whether custom field name has the same value in a and
// b, comparing their JSON, as stored.
func sameValue(a, b map[string]any, name string) bool {
	va, ina := a[name]
	vb, inb := b[name]
	if ina != inb {
		return false
	}
	ja, _ := json.Marshal(va)
	jb, _ := json.Marshal(vb)
	return string(ja) == string(jb)
}
