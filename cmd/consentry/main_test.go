package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/consentry/consentry/internal/logtest"
	"github.com/consentry/consentry/internal/store"
)

// runCmd runs the command with an SQLite database in a temporary directory.
func runCmd(t *testing.T, dbPath string, args ...string) (int, string, string) {
	t.Helper()
	t.Setenv("CONSENTRY_DATABASE_URL", dbPath)
	var out, errOut bytes.Buffer
	code := run(context.Background(), args, &out, &errOut)
	return code, out.String(), errOut.String()
}

func TestCommands(t *testing.T) {
	db := filepath.Join(t.TempDir(), "data", "consentry.db")
	if code, out, _ := runCmd(t, db, "version"); code != 0 || !strings.HasPrefix(out, "consentry ") {
		t.Fatalf("version: %d %q", code, out)
	}
	if code, _, _ := runCmd(t, db, "migrate"); code != 0 {
		t.Fatalf("migrate: %d", code)
	}
	code, secret, stderr := runCmd(t, db, "token", "create", "--name", "website")
	if code != 0 || !strings.HasPrefix(secret, "cst_") || strings.Contains(stderr, strings.TrimSpace(secret)) {
		t.Fatalf("token create: %d %q %q", code, secret, stderr)
	}
	code, list, _ := runCmd(t, db, "token", "list")
	if code != 0 || !strings.Contains(list, "website") || strings.Contains(list, strings.TrimSpace(secret)) {
		t.Fatalf("token list: %d %q", code, list)
	}
	if code, _, _ := runCmd(t, db, "token", "create"); code != 2 {
		t.Fatalf("token create without --name: %d, want 2", code)
	}
	code, out, _ := runCmd(t, db, "ledger", "verify")
	var rep struct{ OK bool }
	if code != 0 || json.Unmarshal([]byte(out), &rep) != nil || !rep.OK {
		t.Fatalf("ledger verify: %d %q", code, out)
	}
	if code, _, _ := runCmd(t, db, "frobnicate"); code != 2 {
		t.Fatalf("unknown command: %d, want 2", code)
	}
	t.Setenv("CONSENTRY_HTTP_ADDR", "nope")
	if code, _, stderr := runCmd(t, db, "migrate"); code != 2 || !strings.Contains(stderr, "CONSENTRY_HTTP_ADDR") {
		t.Fatalf("bad configuration: %d %q", code, stderr)
	}
}

// TestOlderBinaryRefusesNewerDatabase: a database a newer version migrated
// is refused at start, by serve and migrate alike, saying why.
func TestOlderBinaryRefusesNewerDatabase(t *testing.T) {
	path := filepath.Join(t.TempDir(), "data", "consentry.db")
	if code, _, _ := runCmd(t, path, "migrate"); code != 0 {
		t.Fatalf("migrate: %d", code)
	}
	db, err := store.Open(context.Background(), path, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Write(context.Background(), func(tx *store.Tx) error {
		_, err := tx.Exec(`INSERT INTO goose_db_version (version_id, is_applied) VALUES (99999, TRUE)`)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	db.Close()
	t.Setenv("CONSENTRY_HTTP_ADDR", "127.0.0.1:0") // should serve start after all, it does not take a port in use
	for _, cmd := range []string{"migrate", "serve"} {
		code, _, stderr := runCmd(t, path, cmd)
		if code == 0 || !strings.Contains(stderr, "newer version of Consentry") || !strings.Contains(stderr, "99999") {
			t.Errorf("%s on a newer database: %d %q", cmd, code, stderr)
		}
	}
}

// startServer runs `consentry serve` in-process on a free port with a fresh
// SQLite database, waits until /healthz answers, and returns the address and
// the database path. The server stops, and must exit 0, when the test ends.
func startServer(t *testing.T) (addr, dbPath string) {
	addr, dbPath, _ = startServerLogged(t)
	return addr, dbPath
}

// startServerLogged runs serve as startServer does and returns its log.
func startServerLogged(t *testing.T) (addr, dbPath string, log *logtest.Buffer) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr = ln.Addr().String()
	ln.Close()
	dbPath = filepath.Join(t.TempDir(), "consentry.db")
	t.Setenv("CONSENTRY_DATABASE_URL", dbPath)
	t.Setenv("CONSENTRY_HTTP_ADDR", addr)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int, 1)
	log = &logtest.Buffer{}
	go func() { done <- run(ctx, []string{"serve"}, io.Discard, log) }()
	t.Cleanup(func() {
		cancel()
		select {
		case code := <-done:
			if code != 0 {
				t.Errorf("serve exited with %d", code)
			}
		case <-time.After(30 * time.Second):
			buf := make([]byte, 1<<20)
			t.Fatalf("serve did not stop within 30 s; goroutines:\n%s", buf[:runtime.Stack(buf, true)])
		}
	})
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := http.Get("http://" + addr + "/healthz")
		if err == nil {
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 || !strings.Contains(string(body), `"status":"ok"`) {
				t.Fatalf("healthz: %d %s", resp.StatusCode, body)
			}
			return addr, dbPath, log
		}
		select {
		case code := <-done:
			t.Fatalf("serve exited with %d before answering", code)
		case <-time.After(20 * time.Millisecond): // back off between polls
		}
		if time.Now().After(deadline) {
			t.Fatal("serve did not answer /healthz")
		}
	}
}

// TestServe: serve answers, and its log says where the admin UI is and,
// while no user exists, how to create the first admin.
func TestServe(t *testing.T) {
	_, _, log := startServerLogged(t)
	out := log.String()
	for _, want := range []string{"consentry is ready", "admin=http://", "/admin/setup/"} {
		if !strings.Contains(out, want) {
			t.Errorf("the log lacks %q:\n%s", want, out)
		}
	}
}

// TestServeMetricsListener: with CONSENTRY_METRICS_ADDR, the metrics and
// the health endpoints are served on a listener of their own, and the
// main listener serves no metrics (no token is set).
func TestServeMetricsListener(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	maddr := ln.Addr().String()
	ln.Close()
	t.Setenv("CONSENTRY_METRICS_ADDR", maddr)
	addr, _ := startServer(t)
	get := func(url string) (int, string) {
		t.Helper()
		resp, err := http.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}
	if code, body := get("http://" + maddr + "/metrics"); code != 200 || !strings.Contains(body, "consentry_build_info") ||
		!strings.Contains(body, "consentry_metrics_database_up 1") {
		t.Fatalf("metrics listener: %d %.300s", code, body)
	}
	if code, body := get("http://" + maddr + "/readyz"); code != 200 || !strings.Contains(body, `"status":"ready"`) {
		t.Fatalf("readyz on the metrics listener: %d %s", code, body)
	}
	if code, _ := get("http://" + addr + "/metrics"); code != http.StatusNotFound {
		t.Fatalf("metrics on the main listener without a token: %d", code)
	}
}
