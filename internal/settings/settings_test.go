package settings_test

import (
	"bytes"
	"context"
	"image"
	"image/png"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/consentry/consentry/internal/audit"
	"github.com/consentry/consentry/internal/errs"
	"github.com/consentry/consentry/internal/settings"
	"github.com/consentry/consentry/internal/store"
	"github.com/consentry/consentry/internal/store/storetest"
)

func ptr[T any](v T) *T { return &v }

// TestDataSubjectRightsSettings: the privacy address, the erasure keywords,
// the fields kept after erasure and the retention grace period are
// checked, normalised and stored; a bad value names its field and changes
// nothing.
func TestDataSubjectRightsSettings(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		ctx := context.Background()
		def, err := settings.Get(ctx, db.Read)
		if err != nil {
			t.Fatal(err)
		}
		if def.PrivacyAddress != "" || !slices.Equal(def.ErasureKeywords, settings.DefaultErasureKeywords) || def.RetentionGraceDays != 30 ||
			len(def.KeptAfterErasure) != 0 {
			t.Fatalf("defaults: %+v", def)
		}
		for _, bad := range []struct {
			p     settings.Patch
			field string
		}{
			{settings.Patch{PrivacyAddress: ptr("Privacy <privacy@example.com>")}, "privacy_address"},
			{settings.Patch{PrivacyAddress: ptr("not an address")}, "privacy_address"},
			{settings.Patch{ErasureKeywords: &[]string{}}, "erasure_keywords"},
			{settings.Patch{ErasureKeywords: &[]string{"DELETE", "two words"}}, "erasure_keywords"},
			{settings.Patch{KeptAfterErasure: &[]string{"country", "email"}}, "kept_after_erasure"},
			{settings.Patch{RetentionGraceDays: ptr(-1)}, "retention_grace_days"},
			{settings.Patch{RetentionGraceDays: ptr(366)}, "retention_grace_days"},
		} {
			_, err := settings.Update(ctx, db, bad.p, audit.Actor{Kind: "user"}, time.Now())
			if e := errs.As(err); e == nil || e.Field != bad.field {
				t.Errorf("%+v: want an error on %s, got %v", bad.p, bad.field, err)
			}
		}
		if got, err := settings.Get(ctx, db.Read); err != nil || got.PrivacyAddress != "" {
			t.Fatalf("a refused change was stored: %+v %v", got, err)
		}
		got, err := settings.Update(ctx, db, settings.Patch{PrivacyAddress: ptr(" privacy@example.com "),
			ErasureKeywords: &[]string{"delete", "Radera", "DELETE", "glöm"}, KeptAfterErasure: &[]string{"region", "region"},
			RetentionGraceDays: ptr(0)}, audit.Actor{Kind: "user"}, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		if got.PrivacyAddress != "privacy@example.com" || !slices.Equal(got.ErasureKeywords, []string{"DELETE", "RADERA", "GLÖM"}) ||
			!slices.Equal(got.KeptAfterErasure, []string{"region"}) || got.RetentionGraceDays != 0 {
			t.Fatalf("stored: %+v", got)
		}
	})
}

// TestSentBodyDays: sent email keeps its content 30 days by default; the
// setting takes 1 to 3650 days, and a value outside is refused by name
// with nothing stored.
func TestSentBodyDays(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		ctx := context.Background()
		if def, err := settings.Get(ctx, db.Read); err != nil || def.SentBodyDays != 30 {
			t.Fatalf("default: %d %v", def.SentBodyDays, err)
		}
		for _, bad := range []int{0, -5, 3651} {
			_, err := settings.Update(ctx, db, settings.Patch{SentBodyDays: ptr(bad), RetentionGraceDays: ptr(7)}, audit.Actor{Kind: "user"}, time.Now())
			if e := errs.As(err); e == nil || e.Field != "sent_body_days" || !strings.Contains(e.Message, "between 1 and 3650") {
				t.Errorf("%d: want an error on sent_body_days, got %v", bad, err)
			}
		}
		if got, err := settings.Get(ctx, db.Read); err != nil || got.SentBodyDays != 30 || got.RetentionGraceDays != 30 {
			t.Fatalf("a refused change was stored: %+v %v", got, err)
		}
		for _, good := range []int{1, 3650} {
			if got, err := settings.Update(ctx, db, settings.Patch{SentBodyDays: ptr(good)}, audit.Actor{Kind: "user"}, time.Now()); err != nil || got.SentBodyDays != good {
				t.Fatalf("%d: %d %v", good, got.SentBodyDays, err)
			}
		}
	})
}

// TestCampaignSettingsClear: the optional campaign settings (sender name
// and address, postal address, bounce address) can be set and emptied
// again, which means their defaults; a bad address is refused by name.
func TestCampaignSettingsClear(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		ctx := context.Background()
		set := func(v string) (settings.Settings, error) {
			return settings.Update(ctx, db, settings.Patch{CampaignsPatch: settings.CampaignsPatch{SenderName: ptr(v + "Acme"),
				SenderAddress: ptr(v + "news@acme.example"), BounceAddress: ptr(v + "b@acme.example")},
				IdentityPatch: settings.IdentityPatch{PostalAddress: ptr(v + "1 Main Street")}}, audit.Actor{Kind: "user"}, time.Now())
		}
		if _, err := set("x "); errs.As(err) == nil || errs.As(err).Field != "sender_address" {
			t.Fatalf("bad address: %v", err)
		}
		if got, err := set(""); err != nil || got.SenderAddress != "news@acme.example" || got.PostalAddress != "1 Main Street" {
			t.Fatalf("set: %+v %v", got.Campaigns, err)
		}
		empty := ptr("")
		got, err := settings.Update(ctx, db, settings.Patch{CampaignsPatch: settings.CampaignsPatch{SenderName: empty,
			SenderAddress: empty, BounceAddress: empty}, IdentityPatch: settings.IdentityPatch{PostalAddress: empty}}, audit.Actor{Kind: "user"}, time.Now())
		if err != nil || got.SenderName != "" || got.SenderAddress != "" || got.PostalAddress != "" || got.BounceAddress != "" {
			t.Fatalf("emptied: %+v %v", got.Campaigns, err)
		}
	})
}

// pngLogo is a small PNG image, as an operator's logo is.
func pngLogo(t testing.TB) []byte {
	img := image.NewRGBA(image.Rect(0, 0, 8, 8))
	for i := range img.Pix {
		img.Pix[i] = 0x80
	}
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// TestIdentitySettings: the operator's identity (organisation name, postal
// address, privacy contact, logo) is checked and stored; a logo that is
// not a PNG, JPEG or WebP by its content, or is over 256 KiB, and a bad
// privacy address are refused by name with nothing written, neither the
// other fields of the change nor the logo.
func TestIdentitySettings(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		ctx := context.Background()
		logo := pngLogo(t)
		svg := []byte(`<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>`)
		gif := []byte("GIF89a\x01\x00\x01\x00\x00\x00\x00;")
		huge := append(append([]byte{}, logo...), make([]byte, settings.MaxLogoBytes)...)
		for _, bad := range []struct {
			p     settings.IdentityPatch
			priv  *string
			field string
			msg   string
		}{
			{settings.IdentityPatch{Logo: &svg}, nil, "logo", "PNG, JPEG or WebP"},
			{settings.IdentityPatch{Logo: &gif}, nil, "logo", "image/gif"},
			{settings.IdentityPatch{Logo: ptr([]byte("plain text, named logo.png"))}, nil, "logo", "text/plain"},
			{settings.IdentityPatch{Logo: &huge}, nil, "logo", "at most 256 KiB"},
			{settings.IdentityPatch{Logo: &logo}, ptr("privacy at acme"), "privacy_address", "email address"},
			{settings.IdentityPatch{OrganisationName: ptr("Acme\nLtd"), Logo: &logo}, nil, "organisation_name", ""},
			{settings.IdentityPatch{Website: ptr("http://acme.example"), Logo: &logo}, nil, "website", "https"},
			{settings.IdentityPatch{Website: ptr("javascript:alert(1)"), Logo: &logo}, nil, "website", "absolute URL"},
			{settings.IdentityPatch{LogoURL: ptr("https://cdn.example/logo.png"), Logo: &logo}, nil, "logo_url", "as logo"},
		} {
			p := settings.Patch{IdentityPatch: bad.p, PrivacyAddress: bad.priv}
			if bad.p.OrganisationName == nil {
				p.OrganisationName = ptr("Acme Ltd")
			}
			_, err := settings.Update(ctx, db, p, audit.Actor{Kind: "user"}, time.Now())
			if e := errs.As(err); e == nil || e.Field != bad.field || !strings.Contains(e.Message, bad.msg) {
				t.Errorf("%s: want an error on %s saying %q, got %v", bad.field, bad.field, bad.msg, err)
			}
		}
		if got, err := settings.Get(ctx, db.Read); err != nil || got.OrganisationName != "" || got.LogoURL != "" || got.PrivacyAddress != "" {
			t.Fatalf("a refused change was stored: %+v %v", got.Identity, err)
		}
		if _, err := settings.GetLogo(ctx, db.Read); errs.As(err) == nil || errs.As(err).Kind != errs.KindNotFound {
			t.Fatalf("a refused logo was stored: %v", err)
		}
		if c := (settings.Settings{}).Controller("Consentry"); c.Name != "Consentry" {
			t.Fatalf("no organisation name: %+v", c)
		}

		got, err := settings.Update(ctx, db, settings.Patch{PrivacyAddress: ptr("dpo@acme.example"), IdentityPatch: settings.IdentityPatch{
			OrganisationName: ptr(" Acme Ltd "), PostalAddress: ptr("1 Main Street\nSpringfield"), PrivacyContactName: ptr("Dana Protector"),
			Logo: &logo}}, audit.Actor{Kind: "user"}, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		l, err := settings.GetLogo(ctx, db.Read)
		if err != nil || l.ContentType != "image/png" || !bytes.Equal(l.Data, logo) || l.ETag == "" {
			t.Fatalf("logo: %v %v", l, err)
		}
		want := settings.Controller{Name: "Acme Ltd", PostalAddress: "1 Main Street\nSpringfield", PrivacyName: "Dana Protector",
			PrivacyEmail: "dpo@acme.example", LogoURL: settings.LogoPath + "?v=" + l.Version()}
		if c := got.Controller("Consentry"); c != want || c.PrivacyContact() != "Dana Protector <dpo@acme.example>" {
			t.Fatalf("controller: %+v", c)
		}
		webp := []byte("RIFF\x00\x00\x00\x00WEBPVP8 ")
		if got, err = settings.Update(ctx, db, settings.Patch{IdentityPatch: settings.IdentityPatch{Logo: &webp}}, audit.Actor{Kind: "user"}, time.Now()); err != nil || got.LogoURL == "" {
			t.Fatalf("webp: %v", err)
		}
		if l2, err := settings.GetLogo(ctx, db.Read); err != nil || l2.ContentType != "image/webp" || l2.ETag == l.ETag {
			t.Fatalf("replaced logo: %v %v", l2, err)
		}
		got, err = settings.Update(ctx, db, settings.Patch{IdentityPatch: settings.IdentityPatch{Logo: ptr([]byte{})}}, audit.Actor{Kind: "user"}, time.Now())
		if err != nil || got.LogoURL != "" || got.OrganisationName != "Acme Ltd" {
			t.Fatalf("removed: %+v %v", got.Identity, err)
		}
		if _, err := settings.GetLogo(ctx, db.Read); errs.As(err) == nil {
			t.Fatalf("a removed logo is still served: %v", err)
		}
	})
}
