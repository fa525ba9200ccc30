package clientip

import (
	"net/http/httptest"
	"testing"
)

func TestIP(t *testing.T) {
	r, err := Parse("127.0.0.1, 10.0.0.0/8")
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct{ remote, xff, want string }{
		{"203.0.113.5:1234", "", "203.0.113.5"},
		{"203.0.113.5:1234", "198.51.100.1", "203.0.113.5"}, // an untrusted client cannot choose its address
		{"127.0.0.1:1234", "198.51.100.1", "198.51.100.1"},
		{"127.0.0.1:1234", "198.51.100.1, 10.1.2.3", "198.51.100.1"},
		{"127.0.0.1:1234", "6.6.6.6, 198.51.100.1", "198.51.100.1"}, // what the client wrote itself is not believed
		{"127.0.0.1:1234", "", "127.0.0.1"},
		{"127.0.0.1:1234", "garbage", "127.0.0.1"},
	}
	for _, c := range cases {
		req := httptest.NewRequest("GET", "/", nil)
		req.RemoteAddr = c.remote
		if c.xff != "" {
			req.Header.Set("X-Forwarded-For", c.xff)
		}
		if got := r.IP(req).String(); got != c.want {
			t.Errorf("%s via %q: got %s, want %s", c.remote, c.xff, got, c.want)
		}
	}
	req := httptest.NewRequest("GET", "/", nil)
	req.RemoteAddr = "127.0.0.1:1"
	if !Direct(req) {
		t.Fatal("a local request is direct")
	}
	req.Header.Set("X-Forwarded-For", "198.51.100.1")
	if Direct(req) {
		t.Fatal("a proxied request is not direct")
	}
	if _, err := Parse("nonsense"); err == nil {
		t.Fatal("a bad list was accepted")
	}
}
