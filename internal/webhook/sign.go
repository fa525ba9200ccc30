package webhook

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/consentry/consentry/internal/events"
)

// secretPrefix begins every signing secret, as in Standard Webhooks.
const secretPrefix = "whsec_"

// NewSecret returns a fresh signing secret: "whsec_" and 32 random bytes
// in base64.
func NewSecret() string {
	b := make([]byte, 32)
	rand.Read(b)
	return secretPrefix + base64.StdEncoding.EncodeToString(b)
}

// secretKey is the HMAC key of a secret: the bytes its base64 stands for.
func secretKey(secret string) ([]byte, error) {
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, secretPrefix))
	if err != nil {
		return nil, fmt.Errorf("webhook: malformed secret")
	}
	return key, nil
}

// Sign returns the webhook-signature header of body sent as msgID at ts:
// "v1," and the base64 HMAC-SHA256 of "msgID.ts.body" under each secret,
// separated by spaces (two during a rotation).
func Sign(secrets []string, msgID string, ts time.Time, body []byte) (string, error) {
	var sigs []string
	for _, s := range secrets {
		key, err := secretKey(s)
		if err != nil {
			return "", err
		}
		m := hmac.New(sha256.New, key)
		m.Write([]byte(msgID + "." + strconv.FormatInt(ts.Unix(), 10) + "."))
		m.Write(body)
		sigs = append(sigs, "v1,"+base64.StdEncoding.EncodeToString(m.Sum(nil)))
	}
	return strings.Join(sigs, " "), nil
}

// Envelope returns the body of every delivery of e: events.Envelope, its
// data as stored. It depends on nothing but the stored event, so every
// retry and replay sends the same bytes.
func Envelope(e events.Event) []byte {
	if len(e.Data) == 0 {
		e.Data = json.RawMessage("null")
	}
	body, err := json.Marshal(e.Envelope())
	if err != nil { // stored data that is no JSON: a bug, sent as null rather than not at all
		e.Data = json.RawMessage("null")
		body, _ = json.Marshal(e.Envelope())
	}
	return body
}
