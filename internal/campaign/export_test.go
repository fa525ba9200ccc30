package campaign

import (
	"context"
	"errors"
)

// ReasonAtSend prepares c as a sender does and returns a function that
// reads, as each batch does under the fence, why the contact would be held
// back ("" when they would not).
func ReasonAtSend(ctx context.Context, s *Service, c *Campaign) (func(contactID string) (string, error), error) {
	p, err := s.prepare(ctx, c, &Links{DB: s.DB, BaseURL: "https://consent.example"}, "Acme <news@acme.example>", "acme.example")
	if err != nil {
		return nil, err
	}
	return func(id string) (string, error) {
		got, err := p.read(ctx, s.DB.Read, []*outcome{{contactID: id}})
		if err != nil {
			return "", err
		}
		if got[id] == nil {
			return "", errors.New("no such contact")
		}
		return got[id].reason, nil
	}, nil
}
