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
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/consentry/consentry/internal/audit"
	"github.com/consentry/consentry/internal/consent"
	"github.com/consentry/consentry/internal/contact"
	"github.com/consentry/consentry/internal/contactstate"
	"github.com/consentry/consentry/internal/mail/mailtest"
	"github.com/consentry/consentry/internal/settings"
	"github.com/consentry/consentry/internal/store"
	"github.com/consentry/consentry/internal/store/storetest"
)

// largestBatch bounds the recipients of one campaign batch: at most this
// many can become unknown per kill.
const largestBatch = 1000

// killPlan is how many contacts the kill test seeds and after what share
// of them arrived at the mail server it kills the service: 3,000 contacts
// and three kills, or with CONSENTRY_LONG=1 50,000 contacts and nine.
func killPlan() (contacts int, at []float64) {
	if os.Getenv("CONSENTRY_LONG") == "1" {
		return 50_000, []float64{0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.9}
	}
	return 3_000, []float64{0.1, 0.4, 0.7}
}

// TestCampaignSurvivesKill9 runs the built binary as a child process,
// sends a campaign through the API and kills the process with SIGKILL
// several times while it hands messages to a real SMTP server, starting
// it again each time. The campaign must still end sent, nobody may get it
// twice, everyone sent to got exactly one message, and only the batches
// in flight at the kills may be unknown.
func TestCampaignSurvivesKill9(t *testing.T) {
	eachKillRun(t, "sends thousands of messages", func(t *testing.T, bin string, db *store.DB, env []string) {
		// A short lease, so that the batch in flight at a kill is
		// declared unknown seconds after the restart, not minutes
		// (PostgreSQL; on SQLite at once).
		killRun(t, bin, db, append(env, "CONSENTRY_CAMPAIGN_LEASE=3s"))
	})
}

// eachKillRun runs run, a test that kills the built binary, on a fresh
// SQLite database and on a fresh PostgreSQL schema, each with the
// environment that runs the binary on it. It skips where there is no
// SIGKILL, and with -short, since it builds the binary and does what
// does says.
func eachKillRun(t *testing.T, does string, run func(t *testing.T, bin string, db *store.DB, env []string)) {
	switch runtime.GOOS {
	case "windows", "plan9", "js", "wasip1":
		t.Skipf("no SIGKILL on %s", runtime.GOOS)
	}
	if testing.Short() {
		t.Skip("builds the binary and " + does + "; skipped with -short")
	}
	bin := buildBinary(t)
	t.Run("sqlite", func(t *testing.T) {
		db, env := sqliteEnv(t)
		run(t, bin, db, env)
	})
	t.Run("postgres", func(t *testing.T) {
		db := storetest.OpenPostgres(t)
		run(t, bin, db, postgresEnv(t, bin, db))
	})
}

// sqliteEnv opens a new migrated SQLite database for the binary, and the
// environment that runs the binary on it.
func sqliteEnv(t testing.TB) (*store.DB, []string) {
	path := filepath.Join(t.TempDir(), "data", "consentry.db")
	db, err := store.Open(context.Background(), path, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if _, err := db.Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	return db, []string{"CONSENTRY_DATABASE_URL=" + path}
}

// killRun seeds db, runs the campaign with kills through the binary bin
// configured by env, and checks the outcome.
func killRun(t testing.TB, bin string, db *store.DB, env []string) {
	n, at := killPlan()
	seedReachable(t, db, n)

	smtp := mailtest.Start(t)
	smtp.Count = true
	got := &arrivals{to: map[string]int{}, more: make(chan struct{}, 1)}
	smtp.OnData = got.add
	env = append(env, "CONSENTRY_SMTP_URL="+smtp.URL(), "CONSENTRY_LOG_LEVEL=warn")
	code, secret, stderr := runBinary(t, bin, env, "token", "create", "--name", "kill test", "--scope", "campaigns")
	if code != 0 {
		t.Fatalf("token create: %d %s", code, stderr)
	}
	api := &apiClient{t: t, token: strings.TrimSpace(secret)}

	start := time.Now()
	child := startChild(t, bin, env)
	api.base = "http://" + child.addr
	var c struct{ ID string }
	api.do("POST", "/api/v1/campaigns", map[string]any{"name": "Everyone", "condition": `email != ""`,
		"variants": []map[string]string{{"language": "en", "subject": "Hi {{first_name}}", "html": "<p>Hi {{first_name}}.</p>"}}}, &c)
	api.do("POST", "/api/v1/campaigns/"+c.ID+"/send", nil, nil)

	for _, share := range at {
		want := int(share * float64(n))
		stalled := time.Now().Add(2 * time.Minute)
		for got.count() < want {
			if time.Now().After(stalled) {
				t.Fatalf("%d of %d messages arrived, waiting for %d; the service's goroutines:\n%s", got.count(), n, want, child.dump())
			}
			child.waitMore(t, got)
		}
		child.kill(t)
		t.Logf("killed after %d of %d messages arrived", got.count(), n)
		child = startChild(t, bin, env)
		api.base = "http://" + child.addr
	}

	var p struct {
		Status     string
		Recipients map[string]int
	}
	deadline := time.Now().Add(5 * time.Minute)
	for api.do("GET", "/api/v1/campaigns/"+c.ID+"/progress", nil, &p); p.Status != "sent"; api.do("GET", "/api/v1/campaigns/"+c.ID+"/progress", nil, &p) {
		if time.Now().After(deadline) {
			t.Fatalf("the campaign did not end: %+v; the service's goroutines:\n%s", p, child.dump())
		}
		child.waitMore(t, got)
	}
	took := time.Since(start)
	child.stop(t)

	checkCampaignOutcome(t, db, c.ID, got, n, len(at))
	t.Logf("%d contacts, %d kills, %s", n, len(at), took.Round(time.Millisecond))

	code, out, stderr := runBinary(t, bin, env, "ledger", "verify")
	var rep struct{ OK bool }
	if code != 0 || json.Unmarshal([]byte(out), &rep) != nil || !rep.OK {
		t.Fatalf("ledger verify: %d %s %s", code, out, stderr)
	}
}

// seedReachable creates n contacts c<i>@example.com through the contact
// service, so that the consent ledger holds them: opted in by a user, and
// E-marketing granted. The campaign opt-in policy is set to accept that
// status. Contacts are created from many goroutines, whose writes share
// transactions.
func seedReachable(t testing.TB, db *store.DB, n int) {
	ctx := context.Background()
	p := settings.PolicyDoubleAndUser
	if _, err := settings.Update(ctx, db, settings.Patch{CampaignOptInPolicy: &p}, audit.Actor{Kind: "user"}, time.Now()); err != nil {
		t.Fatal(err)
	}
	people := contact.NewService(db, consent.NewService(db))
	api := consent.Actor{Kind: consent.ActorSystem}
	next := make(chan int)
	errs := make(chan error, 64)
	var wg sync.WaitGroup
	for range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				email := fmt.Sprintf("c%d@example.com", i)
				_, err := people.Create(ctx, contact.NewContact{Input: contact.Input{Email: &email},
					OptInStatus: contactstate.SingleOptInUser, Actor: api, Evidence: consent.Evidence{Method: "api"},
					Consents: []consent.RecordInput{{Purpose: "E-marketing", State: consent.StateGranted, Source: "API",
						Actor: api, Evidence: consent.Evidence{Method: "api"}}}})
				if err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	for i := range n {
		select {
		case next <- i + 1:
		case err := <-errs:
			close(next)
			wg.Wait()
			t.Fatalf("seed: %v", err)
		}
	}
	close(next)
	wg.Wait()
	select {
	case err := <-errs:
		t.Fatalf("seed: %v", err)
	default:
	}
}

var built struct {
	once sync.Once
	path string
	err  error
}

// buildBinary builds this command once per test run.
func buildBinary(t testing.TB) string {
	t.Helper()
	built.once.Do(func() {
		dir, err := os.MkdirTemp("", "consentry-bin")
		if err != nil {
			built.err = err
			return
		}
		built.path = filepath.Join(dir, "consentry")
		out, err := exec.Command(filepath.Join(runtime.GOROOT(), "bin", "go"), "build", "-o", built.path, ".").CombinedOutput()
		if err != nil {
			built.err = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if built.err != nil {
		t.Fatal(built.err)
	}
	return built.path
}

// childEnv is the environment of a child process: this one's without
// its Consentry settings, then env.
func childEnv(env []string) []string {
	var out []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "CONSENTRY_") {
			out = append(out, kv)
		}
	}
	return append(out, env...)
}

// runBinary runs a command of the binary to its end.
func runBinary(t testing.TB, bin string, env []string, args ...string) (int, string, string) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env = childEnv(env)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	if _, ok := err.(*exec.ExitError); err != nil && !ok {
		t.Fatal(err)
	}
	return cmd.ProcessState.ExitCode(), out.String(), errOut.String()
}

// child is `consentry serve` running as a separate process.
type child struct {
	cmd    *exec.Cmd
	addr   string
	log    string // the file with its output
	exited chan struct{}
}

// startChild starts serve on a free port and waits until /healthz answers.
func startChild(t testing.TB, bin string, env []string) *child {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	c := &child{addr: ln.Addr().String(), log: filepath.Join(t.TempDir(), "serve.log"), exited: make(chan struct{})}
	ln.Close()
	log, err := os.Create(c.log)
	if err != nil {
		t.Fatal(err)
	}
	defer log.Close()
	c.cmd = exec.Command(bin, "serve")
	c.cmd.Env = childEnv(append(env, "CONSENTRY_HTTP_ADDR="+c.addr))
	c.cmd.Stdout, c.cmd.Stderr = log, log
	if err := c.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { c.cmd.Wait(); close(c.exited) }()
	t.Cleanup(func() {
		c.cmd.Process.Kill()
		<-c.exited
	})
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get("http://" + c.addr + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return c
			}
		}
		select {
		case <-c.exited:
			t.Fatalf("serve exited with %v before answering:\n%s", c.cmd.ProcessState, c.output())
		case <-time.After(20 * time.Millisecond): // back off between polls
		}
		if time.Now().After(deadline) {
			t.Fatalf("serve did not answer /healthz:\n%s", c.output())
		}
	}
}

// arrivals counts the messages the SMTP server accepted, by recipient.
type arrivals struct {
	mu    sync.Mutex
	to    map[string]int
	total int
	more  chan struct{}
}

func (a *arrivals) add(to []string, _ time.Time) {
	a.mu.Lock()
	for _, addr := range to {
		a.to[addr]++
	}
	a.total++
	a.mu.Unlock()
	select {
	case a.more <- struct{}{}:
	default:
	}
}

func (a *arrivals) count() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.total
}

// waitMore returns once a message arrived or a poll interval passed, so
// that the caller looks again, and fails the test if the child died on
// its own meanwhile.
func (c *child) waitMore(t testing.TB, got *arrivals) {
	t.Helper()
	select {
	case <-got.more:
	case <-c.exited:
		t.Fatalf("serve exited with %v:\n%s", c.cmd.ProcessState, c.output())
	case <-time.After(100 * time.Millisecond): // let the caller look again
	}
}

// output is what the child wrote so far.
func (c *child) output() string {
	b, _ := os.ReadFile(c.log)
	return string(b)
}

// kill sends SIGKILL and waits until the process is gone.
func (c *child) kill(t testing.TB) {
	t.Helper()
	if err := c.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-c.exited
}

// dump makes a child that stalled print its goroutines (SIGQUIT) and
// returns its output, for the test's failure message.
func (c *child) dump() string {
	c.cmd.Process.Signal(syscall.SIGQUIT)
	select {
	case <-c.exited:
	case <-time.After(10 * time.Second):
	}
	return c.output()
}

// stop asks the child to shut down and wants it to exit 0 within 30 s.
func (c *child) stop(t testing.TB) {
	t.Helper()
	if err := c.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-c.exited:
	case <-time.After(30 * time.Second):
		t.Fatalf("serve did not stop within 30 s of SIGTERM; its goroutines:\n%s", c.dump())
	}
	if code := c.cmd.ProcessState.ExitCode(); code != 0 {
		t.Fatalf("serve exited with %d:\n%s", code, c.output())
	}
}

// apiHTTP bounds each API call, so that a service that stopped answering
// fails the test rather than hanging it.
var apiHTTP = &http.Client{Timeout: 30 * time.Second}

// apiClient calls the API with a bearer token.
type apiClient struct {
	t     testing.TB
	base  string
	token string
}

// do sends body as JSON and decodes a 2xx answer into out; any other
// answer fails the test.
func (a *apiClient) do(method, path string, body, out any) {
	a.t.Helper()
	var r io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		r = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, a.base+path, r)
	req.Header.Set("Authorization", "Bearer "+a.token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := apiHTTP.Do(req)
	if err != nil {
		a.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode/100 != 2 {
		a.t.Fatalf("%s %s: %d %s", method, path, resp.StatusCode, b)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			a.t.Fatalf("%s %s: %v", method, path, err)
		}
	}
}

// checkCampaignOutcome checks campaign id's recipients in db against what
// the mail server got: each sent recipient received exactly one message,
// nobody received two or is not a recipient, the suppressed and excluded
// received none, and at most kills batches' worth ended unknown.
func checkCampaignOutcome(t testing.TB, db *store.DB, id string, got *arrivals, n, kills int) {
	t.Helper()
	ctx := context.Background()
	// The outcome, from the database, against what the mail server got.
	byStatus := map[string]int{}
	unknownReceived := 0
	rows, err := db.Read.QueryContext(ctx, `SELECT k.email, r.status FROM campaign_recipients r
		JOIN campaigns c ON c.no = r.campaign_no JOIN contacts k ON k.id = r.contact_id WHERE c.id = $1`, id)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	got.mu.Lock()
	defer got.mu.Unlock()
	seen := map[string]bool{}
	for rows.Next() {
		var addr, status string
		if err := rows.Scan(&addr, &status); err != nil {
			t.Fatal(err)
		}
		seen[addr] = true
		byStatus[status]++
		switch status {
		case "sent":
			if got.to[addr] != 1 {
				t.Errorf("%s is sent but received %d messages", addr, got.to[addr])
			}
		case "unknown":
			unknownReceived += min(got.to[addr], 1)
		case "suppressed", "excluded":
			if got.to[addr] != 0 {
				t.Errorf("%s is %s but received %d messages", addr, status, got.to[addr])
			}
		default:
			t.Errorf("%s ended %s", addr, status)
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	for addr, k := range got.to {
		if k > 1 {
			t.Errorf("%s received %d messages", addr, k)
		}
		if !seen[addr] {
			t.Errorf("%s received a message but is no recipient", addr)
		}
	}
	if len(seen) != n {
		t.Errorf("%d recipients, want %d", len(seen), n)
	}
	if byStatus["unknown"] > kills*largestBatch {
		t.Errorf("%d unknown after %d kills, want at most %d", byStatus["unknown"], kills, kills*largestBatch)
	}
	t.Logf("%v; %d of the unknown received the message", byStatus, unknownReceived)
}
