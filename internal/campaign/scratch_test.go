package campaign_test

import (
	"context"
	"testing"

	"github.com/consentry/consentry/internal/campaign"
	"github.com/consentry/consentry/internal/store"
	"github.com/consentry/consentry/internal/store/storetest"
)

func TestScratch(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		f := newFixture(t, db)
		in := campaign.Input{Name: ptr("x"), Variants: &[]campaign.Variant{{Language: "en", Subject: "Hi", HTML: `<p><a href="{{preferences_url}}">p</a> <a href="{{ unsubscribe_url }}">u</a> <a href="https://acme.example/?n={{first_name}}">n</a> [here]({{unsubscribe_url}})</p>`}}}
		r, err := f.sender.RenderDraft(context.Background(), in, "en", "")
		if err != nil {
			t.Fatal(err)
		}
		t.Log(r.HTML)
		t.Log(r.Text)
	})
}
