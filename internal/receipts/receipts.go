// Package receipts issues consent receipts (SPEC B2): for one consent
// record, a machine-readable account of what the contact agreed to or
// withdrew, from whom, when, how and under which words, with its place in
// the ledger, signed by the installation's key (package signing) so that
// anyone can check it with the public keys served at
// /.well-known/jwks.json and any JOSE library, without trusting the
// operator's database.
//
// The fields follow the Kantara Initiative Consent Receipt Specification
// v1.1 and ISO/IEC TS 27560 where they apply, with Consentry's own fields
// for what those do not cover (the state, the exact text shown, the
// ledger position). docs/receipts.md lists them.
//
// A receipt holds no email address nor name: the contact appears as their
// ledger reference, as in the ledger itself.
package receipts

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/consentry/consentry/internal/consent"
	"github.com/consentry/consentry/internal/errs"
	"github.com/consentry/consentry/internal/ledger"
	"github.com/consentry/consentry/internal/ledgertree"
	"github.com/consentry/consentry/internal/mail"
	"github.com/consentry/consentry/internal/settings"
	"github.com/consentry/consentry/internal/signing"
	"github.com/consentry/consentry/internal/store"
)

// The JWS header of every receipt: alg EdDSA (Ed25519), kid the signing
// key's id, typ JWT, as the Kantara specification has receipts be JSON
// Web Tokens.
const (
	Type = "JWT"
	// Version is the Kantara receipt version the payload follows.
	Version = "KI-CR-v1.1.0"
	// Schema names Consentry's own fields and their meaning; a change of
	// their meaning gets a new one. v2: the ledger event's recorded_at is
	// the integer of microseconds its hash covers (v1 wrote it as RFC 3339
	// text), and recordedAt has exactly six fractional digits.
	Schema = "consentry-receipt-v2"

	// recordedAtLayout is recordedAt's: RFC 3339 in UTC with exactly the
	// six fractional digits of the microsecond the ledger event holds.
	recordedAtLayout = "2006-01-02T15:04:05.000000Z07:00"
)

// Receipt is the signed payload of a consent receipt.
type Receipt struct {
	// Version is the Kantara specification version, Schema Consentry's.
	Version string `json:"version" doc:"the Kantara Consent Receipt version followed, KI-CR-v1.1.0"`
	Schema  string `json:"schema" doc:"the version of Consentry's own fields, consentry-receipt-v2"`
	// Issuer is the installation's base URL, IssuedAt when the receipt
	// was signed (seconds since the Unix epoch), as JWT claims.
	Issuer   string `json:"iss,omitempty" doc:"the Consentry installation that issued the receipt: its base URL"`
	IssuedAt int64  `json:"iat" doc:"when the receipt was signed, in seconds since the Unix epoch"`

	Jurisdiction     string `json:"jurisdiction" doc:"where the controller is established: the receipt_jurisdiction setting, EU by default"`
	ConsentTimestamp int64  `json:"consentTimestamp" doc:"when the consent was given or withdrawn, in seconds since the Unix epoch: when it was collected for an imported record that says so, else when it was recorded"`
	RecordedAt       string `json:"recordedAt" doc:"when the consent record was written: its ledger event's recorded_at (microseconds since the Unix epoch) as RFC 3339 in UTC with exactly six fractional digits"`
	CollectionMethod string `json:"collectionMethod" doc:"how the consent was obtained: the record's evidence method (double_opt_in_link, webform, preferences_page, api, import, ...)"`
	Source           string `json:"source,omitempty" doc:"the source the record names, by its name when it was written"`
	ConsentReceiptID string `json:"consentReceiptID" doc:"the receipt's id: the same for every receipt of one consent record (urn:uuid: and the record's id)"`
	Language         string `json:"language,omitempty" doc:"the language the consent text was shown in, as the consent record says it; absent when the record does not say"`
	PIIPrincipalID   string `json:"piiPrincipalId" doc:"the contact, by their random ledger reference (contact_ref in the ledger); never an email address or name"`

	PIIControllers []Controller     `json:"piiControllers" doc:"the controller: the operator's identity from the settings"`
	PolicyURL      string           `json:"policyUrl,omitempty" doc:"the operator's privacy policy: the privacy_policy_url setting"`
	Services       []ConsentService `json:"services"`

	// RecordID and State say which consent record this is and what it
	// records.
	RecordID    string         `json:"recordId" doc:"the consent record's id"`
	State       string         `json:"state" doc:"what the record records: granted or withdrawn"`
	ConsentText ConsentText    `json:"consentText" doc:"the consent text the contact was shown"`
	Ledger      LedgerPosition `json:"ledger" doc:"the record's event in the consent ledger"`
}

// Controller is the operator as the controller of the contact's data
// (Kantara piiControllers).
type Controller struct {
	Name    string `json:"piiController"`
	Contact string `json:"contact,omitempty" doc:"the privacy contact or data protection officer"`
	Address string `json:"address,omitempty" doc:"the postal address, as the settings give it"`
	Email   string `json:"email,omitempty" doc:"the privacy address"`
	Phone   string `json:"phone,omitempty" doc:"not kept by Consentry: always absent"`
	URL     string `json:"piiControllerUrl,omitempty" doc:"the operator's website"`
}

// ConsentService is what the consent is for (Kantara services): one
// purpose.
type ConsentService struct {
	Service  string    `json:"service" doc:"the purpose's name: Consentry has no services apart from purposes"`
	Purposes []Purpose `json:"purposes"`
}

// Purpose is the purpose of a consent record with its legal basis.
type Purpose struct {
	Purpose     string `json:"purpose" doc:"the purpose's name"`
	PurposeID   string `json:"purposeId"`
	LegalBasis  string `json:"legalBasis" doc:"the record's legal basis under GDPR Art. 6(1): consent, contract, legal_obligation, vital_interests, public_task or legitimate_interests"`
	ConsentType string `json:"consentType" doc:"EXPLICIT when the legal basis is consent, else the legal basis"`
	// PIICategory is empty: purposes do not name data categories (yet).
	PIICategory          []string `json:"piiCategory,omitempty" doc:"the categories of personal data; absent: purposes do not name them"`
	PrimaryPurpose       bool     `json:"primaryPurpose"`
	Termination          string   `json:"termination" doc:"when the consent ends: its expiry, RFC 3339, or \"until withdrawn\""`
	ThirdPartyDisclosure bool     `json:"thirdPartyDisclosure" doc:"whether the purpose discloses data to third parties: purposes do not say so, so false"`
	ThirdPartyName       string   `json:"thirdPartyName,omitempty"`
}

// ConsentText is the text the contact was shown, with what pins it.
type ConsentText struct {
	Version int `json:"version" doc:"the purpose's consent text version; 0 for an imported record, whose text is the import's notice"`
	// Language is the language of Text's words when the record says in
	// which language the text was shown: that language, or the version's
	// own when it has no translation into it. It is empty when the record
	// does not say: a receipt states only what the record holds.
	Language string `json:"language,omitempty" doc:"the language of text's words: the record's language, or the version's own when it has no translation into it; absent when the record does not say in which language the text was shown"`
	Text     string `json:"text"`
	SHA256   string `json:"sha256" doc:"the lower-case hex SHA-256 of text's UTF-8 bytes"`
}

// LedgerPosition is a record's event in the consent ledger (docs/ledger.md):
// its position, its hash and the previous event's hash, which a copy of
// the ledger, or a later proof, checks.
type LedgerPosition struct {
	Seq       int64  `json:"seq"`
	EventHash string `json:"event_hash"`
	PrevHash  string `json:"prev_hash"`
	// Event is the ledger event itself, every field its hash covers, so
	// that a check needs no copy of the ledger: recompute event_hash from
	// it (docs/ledger.md has the encoding) and compare its fields with
	// the receipt's.
	Event *ledger.Event `json:"event"`
}

// Issued is a receipt as served: the compact JWS and its payload decoded.
// The ledger proof, when there is one, will go beside them.
type Issued struct {
	JWS     string   `json:"receipt" doc:"the receipt as a compact JWS (alg EdDSA, kid the signing key, typ JWT); check it with the keys at /.well-known/jwks.json"`
	Payload *Receipt `json:"payload" doc:"the receipt's payload, decoded: the same as the JWS carries"`
	// LedgerProof shows the receipt's ledger event is in the tree of a
	// signed checkpoint (docs/ledger.md); absent where the service keeps
	// no tree.
	LedgerProof *ledgertree.InclusionProof `json:"ledger_proof,omitempty" doc:"the inclusion proof of the record's ledger event in the tree a signed checkpoint names, with the checkpoint"`
}

// Service issues receipts.
type Service struct {
	DB      *store.DB
	Consent *consent.Service
	Signing *signing.Service
	// Tree proves each receipt's ledger event (Issued.LedgerProof); nil
	// issues receipts without a proof.
	Tree *ledgertree.Service
	// Issuer is the installation's base URL, the receipts' iss.
	Issuer string
	// Sender names the operator when the settings give no organisation
	// name: the name of the server's CONSENTRY_MAIL_FROM.
	Sender string
	// Mail renders the email that summarises a receipt (EmailTx).
	Mail *mail.Templates
	Now  func() time.Time
}

func (s *Service) now() time.Time {
	if s.Now == nil {
		return store.Now(time.Now)
	}
	return store.Now(s.Now)
}

// Issue builds and signs the receipt of consent record recordID. It
// returns a not-found error (code consent_record_not_found) when there is
// no such record.
func (s *Service) Issue(ctx context.Context, recordID string) (*Issued, error) {
	return s.IssueAt(ctx, recordID, 0)
}

// IssueAt is Issue with the ledger proof made against the checkpoint of
// tree size at (0: the latest, made first when none covers the record's
// event yet). An at with no checkpoint, or one that does not cover the
// event, is an error naming the field checkpoint.
func (s *Service) IssueAt(ctx context.Context, recordID string, at int64) (*Issued, error) {
	r, err := s.Consent.RecordByID(ctx, recordID)
	if err != nil {
		return nil, err
	}
	p, err := s.Build(ctx, r)
	if err != nil {
		return nil, err
	}
	issued, err := s.Sign(ctx, p)
	if err != nil || s.Tree == nil {
		return issued, err
	}
	issued.LedgerProof, err = s.Tree.Inclusion(ctx, p.Ledger.Seq, at)
	if e := errs.As(err); e != nil && e.Field == "at" {
		return nil, errs.Invalid("checkpoint", "%s", e.Message)
	}
	return issued, err
}

// Build gathers the receipt of r, unsigned.
func (s *Service) Build(ctx context.Context, r *consent.Record) (*Receipt, error) {
	ev, err := ledger.EventAt(ctx, s.DB.Read, r.LedgerSeq)
	return s.build(ctx, s.DB.Read, r, ev, err)
}

// BuildTx is Build inside tx, which may be the transaction that wrote r
// and its ledger event.
func (s *Service) BuildTx(tx *store.Tx, r *consent.Record) (*Receipt, error) {
	ev, err := ledger.EventIn(tx, r.LedgerSeq)
	return s.build(context.Background(), tx, r, ev, err)
}

// build gathers the receipt of r, with its ledger event ev (or the error
// reading it gave), reading the rest through q.
func (s *Service) build(ctx context.Context, q store.Querier, r *consent.Record, ev *ledger.Event, err error) (*Receipt, error) {
	if err != nil {
		// Not a missing receipt but a ledger that lost an event, which
		// the ledger's verification reports: an internal error here.
		return nil, fmt.Errorf("receipts: record %s: %v", r.ID, err)
	}
	if ev.RecordID != r.ID {
		return nil, fmt.Errorf("receipts: record %s: its ledger event %d is of %q", r.ID, r.LedgerSeq, ev.RecordID)
	}
	st, err := settings.Get(ctx, q)
	if err != nil {
		return nil, err
	}
	text, err := textOf(ctx, q, r)
	if err != nil {
		return nil, err
	}
	c := st.Controller(s.Sender)
	given := r.RecordedAt
	if r.Evidence.CollectedAt != nil {
		given = *r.Evidence.CollectedAt
	}
	termination := "until withdrawn"
	if r.ExpiresAt != nil {
		termination = r.ExpiresAt.UTC().Format(time.RFC3339)
	}
	if r.State != consent.StateGranted {
		termination = "withdrawn"
	}
	consentType := r.LegalBasis
	if r.LegalBasis == consent.BasisConsent {
		consentType = "EXPLICIT"
	}
	return &Receipt{
		Version: Version, Schema: Schema, Issuer: s.Issuer,
		Jurisdiction: st.Jurisdiction(), ConsentTimestamp: given.Unix(),
		RecordedAt: store.FromMicros(ev.RecordedAt).Format(recordedAtLayout), CollectionMethod: r.Evidence.Method, Source: r.Source,
		ConsentReceiptID: "urn:uuid:" + r.ID, Language: r.TextLanguage, PIIPrincipalID: ev.ContactRef,
		PIIControllers: []Controller{{Name: c.Name, Contact: c.PrivacyName, Address: c.PostalAddress, Email: c.PrivacyEmail, URL: c.Website}},
		PolicyURL:      st.PrivacyPolicyURL,
		Services: []ConsentService{{Service: r.PurposeName, Purposes: []Purpose{{Purpose: r.PurposeName, PurposeID: r.PurposeID,
			LegalBasis: r.LegalBasis, ConsentType: consentType, PrimaryPurpose: true, Termination: termination}}}},
		RecordID: r.ID, State: r.State, ConsentText: text,
		Ledger: LedgerPosition{Seq: ev.Seq, EventHash: ev.Hash, PrevHash: ev.PrevHash, Event: ev},
	}, nil
}

// textOf is the consent text r says was shown: the version in the
// language shown, or, for an imported record without a version, the
// import's notice. A record that does not say which language it was shown
// in gets the version's own text with no language: the version's own
// language would be a claim the record does not make.
func textOf(ctx context.Context, q store.Querier, r *consent.Record) (ConsentText, error) {
	if r.TextVersion == 0 {
		return hashed(ConsentText{Version: 0, Language: r.TextLanguage, Text: r.Evidence.Notice}), nil
	}
	t, err := consent.TextInVia(ctx, q, r.PurposeID, r.TextVersion, r.TextLanguage)
	if err != nil {
		return ConsentText{}, fmt.Errorf("receipts: record %s: consent text: %w", r.ID, err)
	}
	if r.TextLanguage == "" {
		t.Language = ""
	}
	return hashed(ConsentText{Version: t.Version, Language: t.Language, Text: t.Text}), nil
}

func hashed(t ConsentText) ConsentText {
	sum := sha256.Sum256([]byte(t.Text))
	t.SHA256 = hex.EncodeToString(sum[:])
	return t
}

// Sign signs p, with IssuedAt set to now, under the current signing key.
func (s *Service) Sign(ctx context.Context, p *Receipt) (*Issued, error) {
	key, err := s.Signing.Current(ctx)
	if err != nil {
		return nil, err
	}
	return s.signWith(key, p)
}

// SignTx is Sign inside tx (signing.Service.CurrentIn).
func (s *Service) SignTx(tx *store.Tx, p *Receipt) (*Issued, error) {
	key, err := s.Signing.CurrentIn(tx)
	if err != nil {
		return nil, err
	}
	return s.signWith(key, p)
}

func (s *Service) signWith(key *signing.Key, p *Receipt) (*Issued, error) {
	p.IssuedAt = s.now().Unix()
	payload, err := json.Marshal(p)
	if err != nil {
		return nil, fmt.Errorf("receipts: encode: %w", err)
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.EdDSA, Key: key.Private()},
		(&jose.SignerOptions{}).WithType(Type).WithHeader(jose.HeaderKey("kid"), key.ID))
	if err != nil {
		return nil, fmt.Errorf("receipts: signer: %w", err)
	}
	obj, err := signer.Sign(payload)
	if err != nil {
		return nil, fmt.Errorf("receipts: sign: %w", err)
	}
	compact, err := obj.CompactSerialize()
	if err != nil {
		return nil, fmt.Errorf("receipts: serialise: %w", err)
	}
	return &Issued{JWS: compact, Payload: p}, nil
}

// JWKS is every signing key's public half, retired ones too, as a JSON
// Web Key Set: what /.well-known/jwks.json serves.
func JWKS(keys []signing.PublicKey) jose.JSONWebKeySet {
	set := jose.JSONWebKeySet{Keys: make([]jose.JSONWebKey, 0, len(keys))}
	for _, k := range keys {
		set.Keys = append(set.Keys, jose.JSONWebKey{Key: k.Public, KeyID: k.ID, Algorithm: string(jose.EdDSA), Use: "sig"})
	}
	return set
}

// JWKS reads every public key as a JSON Web Key Set. It makes the first
// key when there is none yet, so that the set served never starts empty
// and a verifier that fetched it before the first receipt need not
// fetch it again.
func (s *Service) JWKS(ctx context.Context) (jose.JSONWebKeySet, error) {
	if _, err := s.Signing.Current(ctx); err != nil {
		return jose.JSONWebKeySet{}, err
	}
	keys, err := s.Signing.Public(ctx)
	if err != nil {
		return jose.JSONWebKeySet{}, fmt.Errorf("receipts: read keys: %w", err)
	}
	return JWKS(keys), nil
}

// ErrInvalid is what Verify returns, wrapped, for a receipt that does not
// verify.
var ErrInvalid = errors.New("receipts: the receipt does not verify")

// Verify checks a compact JWS receipt against keys (its kid picks the
// key) and returns its payload. A receipt that is not a JWS, names
// another algorithm or type or an unknown key, or whose signature does
// not hold, is an error wrapping ErrInvalid.
func Verify(compact string, keys []signing.PublicKey) (*Receipt, error) {
	obj, err := jose.ParseSigned(compact, []jose.SignatureAlgorithm{jose.EdDSA})
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	if len(obj.Signatures) != 1 {
		return nil, fmt.Errorf("%w: %d signatures", ErrInvalid, len(obj.Signatures))
	}
	h := obj.Signatures[0].Header
	if typ, _ := h.ExtraHeaders[jose.HeaderType].(string); typ != Type {
		return nil, fmt.Errorf("%w: type %q", ErrInvalid, typ)
	}
	for _, k := range keys {
		if k.ID != h.KeyID {
			continue
		}
		payload, err := obj.Verify(k.Public)
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrInvalid, err)
		}
		var p Receipt
		if err := json.Unmarshal(payload, &p); err != nil {
			return nil, fmt.Errorf("%w: payload: %v", ErrInvalid, err)
		}
		return &p, nil
	}
	return nil, fmt.Errorf("%w: no key %q", ErrInvalid, h.KeyID)
}
