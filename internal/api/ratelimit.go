package api

import (
	"fmt"
	"net/http"
	"time"

	"github.com/consentry/consentry/internal/clientip"
	"github.com/consentry/consentry/internal/consent"
	"github.com/consentry/consentry/internal/errs"
	"github.com/consentry/consentry/internal/httpx"
)

// Limits are the API's rate limits. They live in each process, as the
// public pages' do: with several instances behind a load balancer, each
// allows as much. Zero fields take DefaultLimits' values.
type Limits struct {
	// Token is per API token, for every route that needs one: a token
	// bucket of Token.Burst requests, filled at Token.PerMinute a minute.
	Token clientip.Rate
	// BadToken is per client address, for requests whose token is
	// missing, unknown, expired or revoked, so that guessing tokens (and
	// a client left running with a revoked one) is slowed down to a
	// trickle.
	BadToken clientip.Rate
}

// DefaultLimits are the limits unless the operator sets others
// (CONSENTRY_RATE_API, CONSENTRY_RATE_API_BAD_TOKEN).
//
// 300 requests a second with bursts of 600 per token: an integrator
// syncing a CRM one contact per request moves 100,000 contacts in under
// six minutes, and a bulk operation's own polling (an import's progress,
// a double opt-in run, a campaign's) once a second takes a three
// hundredth of it, while one token still cannot take every write the
// database makes (about 3,000 consent changes a second on SQLite, 1,000 on
// PostgreSQL; docs/operations.md#sizing) from the other integrators, the
// admin UI and the contacts' own pages. Uploading an import or
// downloading an export is one request, however long it takes.
//
// 60 a minute with bursts of 120 per address for a missing or bad token:
// no person or program needs more failures than that to notice, and a
// token of 256 random bits is not guessed at any rate; the burst leaves
// room for the requests with good tokens that count while they are
// checked (see authenticateLimited).
func DefaultLimits() Limits {
	return Limits{
		Token:    clientip.Rate{PerMinute: 300 * 60, Burst: 600},
		BadToken: clientip.Rate{PerMinute: 60, Burst: 120},
	}
}

// orDefault fills l's zero fields from DefaultLimits.
func (l Limits) orDefault() Limits {
	d := DefaultLimits()
	if l.Token.PerMinute <= 0 || l.Token.Burst <= 0 {
		l.Token = d.Token
	}
	if l.BadToken.PerMinute <= 0 || l.BadToken.Burst <= 0 {
		l.BadToken = d.BadToken
	}
	return l
}

// limitIdle is how long the limiters remember a key seen last so long
// ago: longer than any bucket the settings allow takes to fill at the
// default rates, so that forgetting one gives back nothing it had not
// earned.
const limitIdle = time.Hour

// rateLimiters are the API's limiters, built from Limits in New.
type rateLimiters struct {
	token, badToken *clientip.Limiter
}

func newRateLimiters(l Limits, now func() time.Time) rateLimiters {
	rl := rateLimiters{token: l.Token.Limiter(limitIdle), badToken: l.BadToken.Limiter(limitIdle)}
	if now != nil {
		rl.token.Now, rl.badToken.Now = now, now
	}
	return rl
}

// authenticateLimited authenticates the request within the limits: it
// returns the caller, or refused after answering 429 itself, or the error
// authentication gave, for the caller to answer.
//
// The request counts against its client address before its token is
// looked up, and gets the count back once the token is found good, so
// that only failures add up and parallel guesses cannot slip through
// between a check and a count (as sign-ins in the admin UI count). A
// request refused for its address is refused before its token is looked
// at, good or not: otherwise the answer would tell a guess that hit from
// one that missed. A good token then counts against its own bucket,
// which no other token shares.
func (s *Server) authenticateLimited(w http.ResponseWriter, r *http.Request) (caller consent.Actor, refused bool, err error) {
	ok, wait, giveBack := s.limiters.badToken.Reserve(clientip.LimitKey(s.IPs.IP(r)))
	if !ok {
		tooMany(w, wait, "too_many_bad_tokens", fmt.Sprintf(
			"too many requests with a missing or invalid API token came from this address; try again in %s", seconds(wait)))
		return consent.Actor{}, true, nil
	}
	caller, err = s.authenticate(r)
	if err != nil {
		if !errs.Is(err, errs.KindUnauthorized) {
			// Not a failure of the token: the database did not answer.
			giveBack()
		}
		return consent.Actor{}, false, err
	}
	giveBack()
	if ok, wait := s.limiters.token.Take(caller.ID); !ok {
		rate := s.Limits.Token
		tooMany(w, wait, "rate_limited", fmt.Sprintf(
			"this API token is over its rate limit of %d requests a minute in bursts of %d; try again in %s", rate.PerMinute, rate.Burst, seconds(wait)))
		return consent.Actor{}, true, nil
	}
	return caller, false, nil
}

// tooMany answers 429 with the time to wait, as Retry-After and in the
// error's message, code naming the limit.
func tooMany(w http.ResponseWriter, wait time.Duration, code, message string) {
	httpx.SetRetryAfter(w, wait)
	writeJSON(w, http.StatusTooManyRequests, ErrorBody{ErrorDetail{Code: code, Message: message}})
}

// seconds says wait as Retry-After does: whole seconds, rounded up.
func seconds(wait time.Duration) string {
	if n := httpx.RetryAfterSeconds(wait); n != 1 {
		return fmt.Sprintf("%d seconds", n)
	}
	return "1 second"
}
