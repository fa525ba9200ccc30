package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/consentry/consentry/internal/store"
)

// privatePostgres is a PostgreSQL server of the test's own, on a port of
// its own, which the test may stop and start without disturbing the
// shared server other tests use.
type privatePostgres struct {
	bin, dir string
	port     int
	as       []string // runs a command as the server's owner
}

// startPrivatePostgres makes a new cluster in a temporary directory and
// starts it. It skips the test where PostgreSQL's server programs are not
// installed, or where the test runs as root and there is no postgres user
// to own the cluster (PostgreSQL refuses to run as root).
func startPrivatePostgres(t *testing.T) *privatePostgres {
	t.Helper()
	bin := ""
	if out, err := exec.Command("pg_config", "--bindir").Output(); err == nil {
		bin = strings.TrimSpace(string(out))
	}
	if _, err := os.Stat(filepath.Join(bin, "initdb")); bin == "" || err != nil {
		matches, _ := filepath.Glob("/usr/lib/postgresql/*/bin/initdb")
		if len(matches) == 0 {
			t.Skip("no PostgreSQL server programs (initdb) to start a server of the test's own")
		}
		bin = filepath.Dir(matches[len(matches)-1])
	}
	// A directory of its own under the system's temporary directory,
	// since a test's temporary directories are closed to other users.
	dir, err := os.MkdirTemp("", "consentry-pg")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	p := &privatePostgres{bin: bin, dir: filepath.Join(dir, "data")}
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			t.Skip("runs as root and there is no postgres user to own a cluster")
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		if err := os.Chown(dir, uid, gid); err != nil {
			t.Skipf("cannot give the cluster directory to postgres: %v", err)
		}
		p.as = []string{"runuser", "-u", "postgres", "--"}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p.port = ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	p.run(t, "initdb", "-D", p.dir, "-U", "postgres", "--auth=trust", "--no-sync")
	p.start(t)
	t.Cleanup(func() { p.command("pg_ctl", "-D", p.dir, "-w", "-m", "immediate", "stop").Run() })
	return p
}

// run runs a server program as the cluster's owner and fails the test if
// it fails.
func (p *privatePostgres) run(t *testing.T, prog string, args ...string) {
	t.Helper()
	if out, err := p.command(prog, args...).CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", prog, err, out)
	}
}

func (p *privatePostgres) command(prog string, args ...string) *exec.Cmd {
	argv := append(append(append([]string(nil), p.as...), filepath.Join(p.bin, prog)), args...)
	return exec.Command(argv[0], argv[1:]...)
}

// start starts the server and waits until it accepts connections.
func (p *privatePostgres) start(t *testing.T) {
	t.Helper()
	p.run(t, "pg_ctl", "-D", p.dir, "-w", "-l", filepath.Join(filepath.Dir(p.dir), "server.log"), "-o",
		fmt.Sprintf("-p %d -k %s -c listen_addresses=127.0.0.1 -c fsync=off", p.port, p.dir), "start")
}

// stop stops the server as an operator's restart does: connections end.
func (p *privatePostgres) stop(t *testing.T) {
	t.Helper()
	p.run(t, "pg_ctl", "-D", p.dir, "-w", "-m", "fast", "stop")
}

func (p *privatePostgres) url() string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", p.port)
}

// TestPostgresRestartDuringLoad stops the database under eight writers and
// starts it again, three times. While it is down, a write is answered at
// once with a 503 that says the database is unavailable; once it is back,
// writes succeed again without restarting Consentry; every acknowledged
// write is kept, and the ledger verifies. The time from the database
// being back to the first acknowledged write is logged (target ≤ 5 s).
func TestPostgresRestartDuringLoad(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a PostgreSQL server and the binary; skipped with -short")
	}
	pg := startPrivatePostgres(t)
	bin := buildBinary(t)
	ctx := context.Background()
	db, err := store.Open(ctx, pg.url(), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	env := append([]string{"CONSENTRY_DATABASE_URL=" + pg.url()}, loadEnv...)
	child := startChild(t, bin, env)
	load := startLoad(t, bin, env, child)
	probe := load.writers[0]

	for round := range 3 {
		load.waitAcks(t, child, 40)
		load.pause()
		pg.stop(t)
		// A write while the database is down: a clear 503, at once.
		body, _ := json.Marshal(map[string]any{"email": fmt.Sprintf("down-%d@example.org", round)})
		req, _ := http.NewRequest("POST", load.base+"/api/v1/contacts", bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+probe.token)
		req.Header.Set("Content-Type", "application/json")
		asked := time.Now()
		resp, err := probe.client.Do(req)
		if err != nil {
			t.Fatalf("a write while the database is down got no answer: %v", err)
		}
		got, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		answered := time.Since(asked)
		if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(string(got), "database") || resp.Header.Get("Retry-After") == "" {
			t.Errorf("a write while the database is down: %d %s (Retry-After %q), want 503 naming the database", resp.StatusCode, got,
				resp.Header.Get("Retry-After"))
		}
		// Pages that read the database say so too, with a time to try
		// again, rather than failing as if broken.
		for _, path := range []string{"/ledger/checkpoint", "/ledger/tile/8/0/000.p/1", "/confirm/" + strings.Repeat("ab", 32), "/.well-known/jwks.json",
			"/p/" + strings.Repeat("cd", 32), "/u/" + strings.Repeat("ef", 32)} {
			resp, err := probe.client.Get(load.base + path)
			if err != nil {
				t.Fatalf("GET %s while the database is down got no answer: %v", path, err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode >= 500 && (resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "") {
				t.Errorf("GET %s while the database is down: %d (Retry-After %q), want a 503 with a time to try again", path,
					resp.StatusCode, resp.Header.Get("Retry-After"))
			}
		}
		load.drain() // what was acknowledged before
		pg.start(t)
		back := time.Now()
		load.resume(child)
		load.waitAcks(t, child, 1)
		t.Logf("round %d: answered %d in %s while the database was down; first write acknowledged %s after it was back", round,
			resp.StatusCode, answered.Round(time.Millisecond), time.Since(back).Round(time.Millisecond))
	}
	load.waitAcks(t, child, 40)
	load.stop()
	child.stop(t)
	load.check(t, db, "three database restarts")
	verifyLedger(t, bin, env)
}
