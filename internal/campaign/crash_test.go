package campaign_test

import (
	"context"
	"runtime"
	"testing"
	"time"

	"github.com/consentry/consentry/internal/campaign"
	"github.com/consentry/consentry/internal/contact/contacttest"
	"github.com/consentry/consentry/internal/mail"
	"github.com/consentry/consentry/internal/store"
	"github.com/consentry/consentry/internal/store/storetest"
)

// dying hands over the first few messages of the batch it is given and
// then ends its goroutine on the spot, as a killed process would: the
// sender records nothing of that batch. handed counts the messages the
// server took.
type dying struct {
	mail.Transport
	handed int
}

func (d *dying) Send(ctx context.Context, envs []*mail.Envelope) []error {
	for _, err := range d.Transport.Send(ctx, envs[:min(len(envs), 20)]) {
		if err == nil {
			d.handed++
		}
	}
	runtime.Goexit()
	return nil
}

// TestCampaignSenderDiesMidBatch: a sender dies while handing a batch
// over. Once its lease runs out, the next sender declares that batch's
// recipients unknown (never sent again by itself) and sends every other
// recipient exactly once.
func TestCampaignSenderDiesMidBatch(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		ctx := context.Background()
		const n = 300
		f := newFixture(t, db)
		contacttest.SeedReachable(t, db, n)
		got := f.deliveries()
		c := f.startAll()

		d := &dying{Transport: f.sender.Transport}
		first := &campaign.Sender{Service: f.svc, Links: f.sender.Links, Transport: d, Log: f.sender.Log, From: f.sender.From,
			Domain: f.sender.Domain, Lease: time.Nanosecond, Budget: time.Hour, Poll: f.sender.Poll} // a slow machine must not leave the batch unbegun
		died := make(chan struct{})
		go func() {
			defer close(died)
			first.RunDue(ctx)
			t.Error("the first sender finished instead of dying")
		}()
		<-died
		handed := f.smtp.Received()
		if handed != d.handed || handed == 0 {
			t.Fatalf("the dying sender handed over %d, the server has %d", d.handed, handed)
		}

		// The dead sender's claim-ahead may still commit the batch it was
		// taking as it died (a killed process takes its goroutines with
		// it; this test's death cannot). The surviving sender's next
		// pass, as its Run makes every Poll, declares that batch unknown
		// too, so it runs until the campaign ends, a few passes at most.
		var p *campaign.Progress
		for pass := 0; pass < 5; pass++ {
			f.run()
			var err error
			if p, err = f.svc.Progress(ctx, c.ID); err != nil {
				t.Fatal(err)
			}
			if p.Status != campaign.StatusSending {
				break
			}
		}
		unknown, sent := p.Recipients[campaign.RecipientUnknown], p.Recipients[campaign.RecipientSent]
		if p.Status != campaign.StatusSent || unknown == 0 || unknown+sent != n {
			t.Fatalf("after the second sender: %s %+v", p.Status, p.Recipients)
		}
		if dup := got.twice(); len(dup) > 0 {
			t.Fatalf("%d addresses got two messages, %v among them", len(dup), dup[0])
		}
		if total := f.smtp.Received(); total != int(sent)+handed {
			t.Fatalf("the server has %d messages, want %d sent and %d from the dead sender", total, sent, handed)
		}
		// Every message the dead sender handed over is among the unknown.
		rows, err := db.Read.QueryContext(ctx, `SELECT c.email FROM campaign_recipients r JOIN contacts c ON c.id = r.contact_id WHERE r.status = 'unknown'`)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		unknownAddr := map[string]bool{}
		for rows.Next() {
			var a string
			if err := rows.Scan(&a); err != nil {
				t.Fatal(err)
			}
			unknownAddr[a] = true
		}
		others := 0
		for a := range got.at {
			if !unknownAddr[a] {
				others++
			}
		}
		if others != int(sent) {
			t.Fatalf("%d addresses outside the unknown got a message, %d were sent: the dead sender's messages are not all unknown", others, sent)
		}
	})
}
