package public

import "github.com/consentry/consentry/internal/clientip"

// limiter is the per-client rate limit of the public pages.
type limiter = clientip.Limiter

var newLimiter = clientip.NewLimiter
