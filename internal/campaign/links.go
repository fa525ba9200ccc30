package campaign

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"hash"
	"strconv"
	"sync"

	"github.com/consentry/consentry/internal/store"
)

// A campaign message's links (unsubscribe, preferences, view in the
// browser, and for tracked recipients the open pixel and each click) are
// the recipient row's number with a keyed hash (HMAC-SHA256, 256 bits)
// of what the link is for. Nothing is stored per link: a million
// recipients would otherwise mean a million token rows. A link cannot be
// made without the key, is bound to one recipient and one use, and its
// life is counted from the send time kept on the row (the setting
// unsubscribe_link_days). The key is made on first use and kept in
// campaign_keys.

// What a link is for; each is part of what the hash covers.
const (
	LinkUnsubscribe = "u"
	LinkPreferences = "p"
	LinkView        = "v"
	LinkOpen        = "o"
	LinkClick       = "c"
)

const linkKeyID = "links"

// Links makes and checks campaign links.
type Links struct {
	DB      *store.DB
	BaseURL string

	mu  sync.Mutex
	key []byte
}

// load returns the link key, making it on first use. The lock is not held
// while the database is read or written, so that nothing waiting for the
// writer holds it (see signing.Service.Current); two first uses agree on
// the key the database keeps.
func (l *Links) load(ctx context.Context) ([]byte, error) {
	l.mu.Lock()
	key := l.key
	l.mu.Unlock()
	if key != nil {
		return key, nil
	}
	err := l.DB.Read.QueryRowContext(ctx, `SELECT secret FROM campaign_keys WHERE id = $1`, linkKeyID).Scan(&key)
	if err != nil {
		fresh := make([]byte, 32)
		rand.Read(fresh)
		err = l.DB.Write(ctx, func(tx *store.Tx) error {
			if _, err := tx.Exec(`INSERT INTO campaign_keys (id, secret, created_at) VALUES ($1, $2, 0) ON CONFLICT (id) DO NOTHING`, linkKeyID, fresh); err != nil {
				return err
			}
			return tx.QueryRow(`SELECT secret FROM campaign_keys WHERE id = $1`, linkKeyID).Scan(&key)
		})
	}
	if err != nil {
		return nil, fmt.Errorf("campaign: link key: %w", err)
	}
	l.mu.Lock()
	l.key = key
	l.mu.Unlock()
	return key, nil
}

// macState is an HMAC keyed and ready, with a buffer for the message, kept
// for the next link: a campaign makes four or five links per message, and
// keying an HMAC costs two hash blocks and two allocations more than the
// link's own block.
type macState struct {
	key []byte
	h   hash.Hash
	buf []byte
}

var macs sync.Pool

// mac is the HMAC-SHA256 under key of what a link is for: its kind, the
// recipient's row and the click's number.
func mac(key []byte, kind string, recipient int64, n int) []byte {
	st, _ := macs.Get().(*macState)
	if st == nil || !bytes.Equal(st.key, key) {
		st = &macState{key: key, h: hmac.New(sha256.New, key)}
	} else {
		st.h.Reset()
	}
	st.buf = append(st.buf[:0], kind...)
	st.buf = append(st.buf, '|')
	st.buf = strconv.AppendInt(st.buf, recipient, 10)
	st.buf = append(st.buf, '|')
	st.buf = strconv.AppendInt(st.buf, int64(n), 10)
	st.h.Write(st.buf)
	sum := st.h.Sum(nil)
	macs.Put(st)
	return sum
}

// URL returns the link of the given kind for a recipient; n is the link's
// number for a click, 0 otherwise.
func (l *Links) URL(ctx context.Context, kind string, recipient int64, n int) (string, error) {
	key, err := l.load(ctx)
	if err != nil {
		return "", err
	}
	return l.url(key, kind, recipient, n), nil
}

func (l *Links) url(key []byte, kind string, recipient int64, n int) string {
	sig := base64.RawURLEncoding.EncodeToString(mac(key, kind, recipient, n))
	u := l.BaseURL + "/m/" + kind + "/" + strconv.FormatInt(recipient, 10)
	if kind == LinkClick {
		u += "/" + strconv.Itoa(n)
	}
	return u + "/" + sig
}

// ErrBadLink is what Check returns for a link that was not made here.
var ErrBadLink = errors.New("campaign: not a valid link")

// Check reports whether sig is the hash of a link of kind for recipient
// (and click n), returning ErrBadLink if not.
func (l *Links) Check(ctx context.Context, kind, recipient, n, sig string) (int64, int, error) {
	rid, err := strconv.ParseInt(recipient, 10, 64)
	if err != nil || rid <= 0 {
		return 0, 0, ErrBadLink
	}
	num := 0
	if kind == LinkClick {
		if num, err = strconv.Atoi(n); err != nil || num < 0 {
			return 0, 0, ErrBadLink
		}
	}
	got, err := base64.RawURLEncoding.DecodeString(sig)
	if err != nil || len(got) != sha256.Size {
		return 0, 0, ErrBadLink
	}
	key, err := l.load(ctx)
	if err != nil {
		return 0, 0, err
	}
	if !hmac.Equal(got, mac(key, kind, rid, num)) {
		return 0, 0, ErrBadLink
	}
	return rid, num, nil
}
