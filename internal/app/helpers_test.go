package app_test

import (
	"github.com/consentry/consentry/internal/consent"
	"github.com/consentry/consentry/internal/contact"
)

func ptr[T any](v T) *T { return &v }

func contactField() contact.FieldInput {
	return contact.FieldInput{Name: ptr("national_id"), Type: ptr("text"), Sensitive: ptr(true)}
}

func newContact(email string) contact.NewContact {
	return contact.NewContact{Input: contact.Input{Email: &email, Fields: map[string]any{"national_id": "198501011234"}},
		Actor: consent.Actor{Kind: consent.ActorAPIToken}, Evidence: consent.Evidence{Method: consent.MethodAPI}}
}
