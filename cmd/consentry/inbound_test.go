package main

import (
	"bufio"
	"bytes"
	"context"
	"net"
	"path/filepath"
	"strings"
	"testing"
)

// TestServeInboundSMTP: with CONSENTRY_INBOUND_SMTP_ADDR set, serve
// listens for mail there; a port that cannot be had stops serve with an
// error naming the variable, rather than running without the listener.
func TestServeInboundSMTP(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	t.Setenv("CONSENTRY_INBOUND_SMTP_ADDR", taken.Addr().String())
	t.Setenv("CONSENTRY_DATABASE_URL", filepath.Join(t.TempDir(), "consentry.db"))
	t.Setenv("CONSENTRY_HTTP_ADDR", "127.0.0.1:0")
	var stderr bytes.Buffer
	if code := run(context.Background(), []string{"serve"}, &stderr, &stderr); code == 0 || !strings.Contains(stderr.String(), "CONSENTRY_INBOUND_SMTP_ADDR") {
		t.Fatalf("serve with the port taken: %d %s", code, stderr.String())
	}

	free, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	smtpAddr := free.Addr().String()
	free.Close()
	t.Setenv("CONSENTRY_INBOUND_SMTP_ADDR", smtpAddr)
	startServer(t)
	c, err := net.Dial("tcp", smtpAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	greeting, err := bufio.NewReader(c).ReadString('\n')
	if err != nil || !strings.HasPrefix(greeting, "220 ") {
		t.Fatalf("greeting %q %v", greeting, err)
	}
}
