package webhook_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strconv"
	"strings"
	"testing"

	"github.com/consentry/consentry/internal/errs"
	"github.com/consentry/consentry/internal/events"
	"github.com/consentry/consentry/internal/store"
	"github.com/consentry/consentry/internal/store/storetest"
	"github.com/consentry/consentry/internal/webhook"
)

func TestURLPolicy(t *testing.T) {
	cases := []struct {
		url         string
		prod, local bool // allowed without the setting, with it
	}{
		{"https://crm.example.com/hooks", true, true},
		{"https://10.1.2.3:8443/hooks", true, true}, // a private network is the operator's own
		{"http://crm.example.com/hooks", false, false},
		{"ftp://crm.example.com/", false, false},
		{"crm.example.com/hooks", false, false},
		{"https://user:pw@crm.example.com/", false, false},
		{"http://localhost:8080/hooks", false, true},
		{"https://localhost/hooks", false, true},
		{"http://127.0.0.1:9000/", false, true},
		{"http://[::1]:9000/", false, true},
		{"http://127.0.0.2/", false, true},
		{"https://169.254.169.254/latest/meta-data", false, false},
		{"https://169.254.10.1/", false, false},
		{"https://[fe80::1]/", false, false},
		{"https://[fd00:ec2::254]/", false, false},
		{"https://metadata.google.internal/computeMetadata/v1/", false, false},
		{"https://0.0.0.0/", false, false},
		{"https://[::]/", false, false},
		{"https://224.0.0.1/", false, false},
		{"https://[ff02::1]/", false, false},
		{"https://[::ffff:169.254.169.254]/", false, false},
		{"http://10.1.2.3/", false, false},
		{"https://crm.example.com:65535/hooks", true, true},
		{"https://crm.example.com:99999/hooks", false, false}, // no such port: every delivery would fail
		{"https://crm.example.com:0/hooks", false, false},
		{"http://localhost:70000/hooks", false, false},
	}
	for _, c := range cases {
		for _, allow := range []bool{false, true} {
			_, err := webhook.Policy{AllowHTTPLocalhost: allow}.CheckURL(c.url)
			want := c.prod
			if allow {
				want = c.local
			}
			if (err == nil) != want {
				t.Errorf("%s (localhost allowed: %v): got %v", c.url, allow, err)
			}
			if err != nil && (errs.As(err) == nil || errs.As(err).Field != "url") {
				t.Errorf("%s: the error does not name the field url: %v", c.url, err)
			}
		}
	}
}

// A name that resolved elsewhere when saved but resolves to this machine
// when called (DNS rebinding) is refused where the connection is made.
func TestANameResolvingToLoopbackIsRefusedWhenCalled(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		f := newFixture(t, db)
		rc := newReceiver(t, nil)
		port := rc.Listener.Addr().(interface{ AddrPort() netip.AddrPort }).AddrPort().Port()
		f.svc.Policy = webhook.Policy{Lookup: func(context.Context, string) ([]netip.Addr, error) {
			return []netip.Addr{netip.MustParseAddr("127.0.0.1")}, nil
		}}
		f.worker = webhook.NewWorker(f.svc)
		e, _ := f.endpoint(t, "https://rebind.example:"+strconv.Itoa(int(port))+"/hooks")
		f.emit(t, events.ConsentGranted, "c1")
		f.send(t)
		if n := len(rc.all()); n != 0 {
			t.Fatalf("the receiver on loopback was called %d times", n)
		}
		d := f.deliveries(t, e.ID)[0]
		if d.Status != webhook.StatusPending || !strings.Contains(d.LastError, "not allowed") {
			t.Fatalf("delivery: %+v", d)
		}
	})
}

func TestRedirectsAreNotFollowedAndAnswersAreCutAndKeptAsText(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		f := newFixture(t, db)
		target := newReceiver(t, nil)
		redirect := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, target.URL, http.StatusFound)
		}))
		t.Cleanup(redirect.Close)
		huge := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(http.StatusOK)
			chunk := []byte(strings.Repeat("é", 512))
			for i := 0; i < 10<<10; i++ { // 10 MiB
				if _, err := w.Write(chunk); err != nil {
					return
				}
			}
		}))
		t.Cleanup(huge.Close)
		binary := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Write([]byte("\x00\xffok"))
		}))
		t.Cleanup(binary.Close)
		r, _ := f.endpoint(t, redirect.URL)
		h, _ := f.endpoint(t, huge.URL)
		b, _ := f.endpoint(t, binary.URL)
		f.emit(t, events.ConsentGranted, "c1")
		f.send(t)
		if n := len(target.all()); n != 0 {
			t.Fatalf("the redirect was followed")
		}
		d := f.deliveries(t, r.ID)[0]
		if d.Status != webhook.StatusPending || d.LastStatus != http.StatusFound || !strings.Contains(d.LastError, "redirect") {
			t.Fatalf("redirected delivery: %+v", d)
		}
		d = f.deliveries(t, h.ID)[0]
		as, err := f.svc.Attempts(context.Background(), d.ID, webhook.Page{})
		if err != nil || d.Status != webhook.StatusDelivered || len(as) != 1 {
			t.Fatalf("huge answer: %+v %+v %v", d, as, err)
		}
		d = f.deliveries(t, b.ID)[0]
		if bs, err := f.svc.Attempts(context.Background(), d.ID, webhook.Page{}); err != nil || d.Status != webhook.StatusDelivered ||
			len(bs) != 1 || bs[0].Response != "\uFFFD\uFFFDok" {
			t.Fatalf("an answer that is not text: %+v %+v %v", d, bs, err)
		}
		if n := len(as[0].Response); n > 1024 || n < 1020 || !strings.HasPrefix(as[0].Response, "éé") || strings.ContainsRune(as[0].Response, '\uFFFD') {
			t.Fatalf("kept %d bytes of the answer: %q", n, as[0].Response[max(0, n-10):])
		}
	})
}
