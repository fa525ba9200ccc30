package api

import (
	"net/http"
	"strconv"
	"time"

	"github.com/consentry/consentry/internal/consent"
	"github.com/consentry/consentry/internal/errs"
	"github.com/consentry/consentry/internal/events"
)

func (s *Server) eventRoutes() []Route {
	return []Route{
		{Method: "GET", Path: "/api/v1/events", Tag: "events", Status: 200, Response: EventPage{},
			Query: []Param{{"after", "the next cursor of the previous page: a sequence number (default 0, the first event)", "integer"},
				{"type", "only events of this type, such as consent.granted", "string"},
				{"contact", "only events about this contact id", "string"},
				{"limit", "1 to 500 (default 100)", "integer"}},
			Summary: "List events in the order they were committed, after a sequence number; the webhooks section describes each type",
			handle:  s.listEvents},
	}
}

// EventItem is one event as the API lists it: the envelope a webhook
// delivers, with its sequence number and contact.
type EventItem struct {
	ID        string    `json:"id" doc:"evt_ and the sequence number; the webhook-id of its deliveries"`
	Seq       int64     `json:"seq" doc:"the event's sequence number: events commit in its order"`
	Type      string    `json:"type"`
	Version   int       `json:"version"`
	Timestamp time.Time `json:"timestamp"`
	ContactID string    `json:"contact_id,omitempty" doc:"the contact it is about; absent for a campaign's"`
	Data      any       `json:"data" doc:"the type's data, as the webhooks section describes it"`
}

// EventPage is a page of events.
type EventPage struct {
	Items []EventItem `json:"items"`
	Next  int64       `json:"next" doc:"pass as after for the next page; the same as after when there was nothing new"`
}

func (s *Server) listEvents(r *http.Request, _ consent.Actor) (int, any, error) {
	q := r.URL.Query()
	eq := events.Query{Type: q.Get("type"), ContactID: q.Get("contact")}
	if v := q.Get("after"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			return 0, nil, errs.Invalid("after", "must be a sequence number, 0 or more")
		}
		eq.After = n
	}
	var err error
	if eq.Limit, err = queryLimit(q, 100); err != nil {
		return 0, nil, err
	}
	list, next, err := events.List(r.Context(), s.DB.Read, eq)
	if err != nil {
		return 0, nil, err
	}
	page := EventPage{Items: make([]EventItem, 0, len(list)), Next: next}
	for _, e := range list {
		page.Items = append(page.Items, EventItem{ID: e.ID(), Seq: e.Seq, Type: e.Type, Version: e.Version, Timestamp: e.OccurredAt,
			ContactID: e.ContactID, Data: e.Data})
	}
	return 200, page, nil
}
