package public

import "github.com/consentry/consentry/internal/clientip"

// limiter is the per-client rate limit of the public pages.
type limiter = clientip.Limiter

var newLimiter = clientip.NewLimiter

// Limits are the rate limits of the public pages, per client address and
// per email address. They live in each process: with several instances
// behind a load balancer, each allows as much. An operator behind a proxy
// that hides client addresses, or expecting a surge after a campaign,
// sets them (CONSENTRY_RATE_*); zero fields take DefaultLimits' values.
type Limits struct {
	// Pages is per client address, for every page but those below and
	// the stylesheet.
	Pages clientip.Rate
	// OneClick is per client address, for one-click unsubscribes and
	// campaign opens and clicks: mail providers post them for many
	// recipients from few addresses, each authorised by its token.
	OneClick clientip.Rate
	// Webform is per client address, for webform posts only, so that a
	// busy office is not locked out of its confirmation links.
	Webform clientip.Rate
	// WebformPerAddress is how many webform posts an hour one email
	// address may be the subject of; past it, posts write nothing.
	WebformPerAddress int
	// NewLink is per client address, for asking for a new preferences
	// link (each sends an email), with NewLinkPerAddress an hour per
	// email address.
	NewLink           clientip.Rate
	NewLinkPerAddress int
	// Ledger is per client address, for the ledger's public endpoints
	// (/ledger/...): an auditor's mirror fetches a tile for every 256
	// events, each a few kilobytes of hashes read by key.
	Ledger clientip.Rate
}

// DefaultLimits are the limits unless the operator sets others.
func DefaultLimits() Limits {
	return Limits{
		Pages:             clientip.Rate{PerMinute: 20, Burst: 40},
		OneClick:          clientip.Rate{PerMinute: 600, Burst: 600},
		Webform:           clientip.Rate{PerMinute: webformPerMinute, Burst: webformBurst},
		WebformPerAddress: addressPosts,
		NewLink:           clientip.Rate{PerMinute: newLinkPerMinute, Burst: newLinkBurst},
		NewLinkPerAddress: newLinkPerAddress,
		Ledger:            clientip.Rate{PerMinute: 600, Burst: 600},
	}
}

// orDefault fills l's zero fields from DefaultLimits.
func (l Limits) orDefault() Limits {
	d := DefaultLimits()
	pick := func(v, def clientip.Rate) clientip.Rate {
		if v.PerMinute <= 0 || v.Burst <= 0 {
			return def
		}
		return v
	}
	l.Pages, l.OneClick, l.Webform, l.NewLink = pick(l.Pages, d.Pages), pick(l.OneClick, d.OneClick), pick(l.Webform, d.Webform), pick(l.NewLink, d.NewLink)
	l.Ledger = pick(l.Ledger, d.Ledger)
	if l.WebformPerAddress <= 0 {
		l.WebformPerAddress = d.WebformPerAddress
	}
	if l.NewLinkPerAddress <= 0 {
		l.NewLinkPerAddress = d.NewLinkPerAddress
	}
	return l
}
