package webhook

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// UserAgent names Consentry to receivers.
const UserAgent = "Consentry-Webhooks/1 (+https://github.com/consentry/consentry)"

// Limits on what is read of a response, and kept of it in the log.
const (
	readLimit = 64 << 10
	keepLimit = 1 << 10
)

// NewClient returns the HTTP client of webhook attempts: every connection
// checked against p where it is dialled, no proxy (one would dial for
// us, past the check), redirects not followed (a 3xx is a failure) and
// each attempt bounded by timeout.
func NewClient(p Policy, timeout time.Duration) *http.Client {
	tr := &http.Transport{
		DialContext:           p.dial(&net.Dialer{Timeout: timeout, KeepAlive: 30 * time.Second}),
		ForceAttemptHTTP2:     true,
		MaxIdleConnsPerHost:   DefaultPerEndpoint * 2,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   timeout,
		ResponseHeaderTimeout: timeout,
	}
	return &http.Client{Transport: tr, Timeout: timeout,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

// result is what one attempt came to.
type result struct {
	status   int    // the HTTP status, 0 when none came
	err      string // why it failed, "" when it succeeded
	latency  time.Duration
	response string // the first KiB of the response body, as text
}

func (r result) ok() bool { return r.err == "" }

// attempt POSTs c's envelope, signed for this attempt's time at.
func (w *Worker) attempt(ctx context.Context, c claimed, at time.Time) result {
	body := Envelope(c.event)
	sig, err := Sign(c.secrets, c.event.ID(), at, body)
	if err != nil {
		return result{err: err.Error()}
	}
	ctx, cancel := context.WithTimeout(ctx, w.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.url, bytes.NewReader(body))
	if err != nil {
		return result{err: err.Error()}
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", UserAgent)
	req.Header.Set("webhook-id", c.event.ID())
	req.Header.Set("webhook-timestamp", strconv.FormatInt(at.Unix(), 10))
	req.Header.Set("webhook-signature", sig)
	start := time.Now()
	resp, err := w.Client.Do(req)
	if err != nil {
		return result{err: describe(err), latency: time.Since(start)}
	}
	read, rerr := io.ReadAll(io.LimitReader(resp.Body, readLimit))
	resp.Body.Close()
	r := result{status: resp.StatusCode, latency: time.Since(start), response: keep(read)}
	switch {
	case resp.StatusCode >= 300 && resp.StatusCode < 400:
		r.err = fmt.Sprintf("HTTP %d: redirect to %q not followed", resp.StatusCode, resp.Header.Get("Location"))
	case resp.StatusCode < 200 || resp.StatusCode >= 300:
		r.err = fmt.Sprintf("HTTP %d", resp.StatusCode)
	case rerr != nil && !errors.Is(rerr, io.EOF):
		r.err = "reading the response: " + describe(rerr)
	}
	return r
}

// describe is an error's text without the url.Error wrapping, which
// repeats the method and the URL the log already shows.
func describe(err error) string {
	var ue interface{ Unwrap() error }
	if errors.As(err, &ue) && strings.HasPrefix(err.Error(), "Post ") {
		if inner := ue.Unwrap(); inner != nil {
			err = inner
		}
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return "no answer within the time allowed"
	}
	return err.Error()
}

// keep is the first KiB of b as text, cut at a character boundary, with
// what is not text (invalid UTF-8, NUL, which PostgreSQL's text refuses)
// replaced.
func keep(b []byte) string {
	if len(b) > keepLimit {
		b = b[:keepLimit]
		for len(b) > 0 && !utf8.Valid(b) && len(b) > keepLimit-4 {
			b = b[:len(b)-1]
		}
	}
	return strings.ReplaceAll(strings.ToValidUTF8(string(b), "\uFFFD"), "\x00", "\uFFFD")
}

func truncate(s string) string {
	if len(s) > 2000 {
		s = strings.ToValidUTF8(s[:2000], "")
	}
	return strings.ReplaceAll(s, "\x00", "")
}
