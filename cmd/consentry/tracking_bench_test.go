package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/consentry/consentry/internal/audit"
	"github.com/consentry/consentry/internal/contact/contacttest"
	"github.com/consentry/consentry/internal/mail/mailtest"
	"github.com/consentry/consentry/internal/settings"
	"github.com/consentry/consentry/internal/store"
	"github.com/consentry/consentry/internal/store/storetest"
)

// BenchmarkTrackingFromOutside measures the engagement events that
// `consentry serve`, running as its own process with its default logging,
// records a second while opens of a tracked message's pixel come from
// this process: 64 clients at once, each request from its own address
// behind a trusted proxy, as mail providers' image proxies fetch them.
// events/s counts from the first request to the last event written to the
// database. With CONSENTRY_BENCH_CONTACTS set, a campaign to that many
// contacts sends meanwhile. Run it with a fixed count, for example
// -benchtime 200000x.
func BenchmarkTrackingFromOutside(b *testing.B) {
	bin := buildBinary(b)
	b.Run("sqlite", func(b *testing.B) {
		db, env := sqliteEnv(b)
		trackingRun(b, bin, db, env)
	})
	b.Run("postgres", func(b *testing.B) {
		db := storetest.OpenPostgres(b)
		trackingRun(b, bin, db, postgresEnv(b, bin, db))
	})
}

// postgresEnv is the environment that runs the binary on db's schema,
// with a key set of its own.
func postgresEnv(t testing.TB, bin string, db *store.DB) []string {
	u, err := url.Parse(storetest.PostgresURL())
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set("search_path", db.Schema())
	u.RawQuery = q.Encode()
	keyset := filepath.Join(t.TempDir(), "keyset.json")
	code, master, stderr := runBinary(t, bin, nil, "keys", "create", "--file", keyset)
	if code != 0 {
		t.Fatalf("keys create: %d %s", code, stderr)
	}
	return []string{"CONSENTRY_DATABASE_URL=" + u.String(), "CONSENTRY_KEYSET_FILE=" + keyset,
		"CONSENTRY_MASTER_KEY=" + strings.TrimSpace(master)}
}

var pixelRE = regexp.MustCompile(`src="[^"]*(/m/o/[^"]+)"`)

func trackingRun(b *testing.B, bin string, db *store.DB, env []string) {
	ctx := context.Background()
	others := 0
	if v := os.Getenv("CONSENTRY_BENCH_CONTACTS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			b.Fatalf("CONSENTRY_BENCH_CONTACTS: %v", err)
		}
		others = n
	}
	contacttest.SeedReachable(b, db, 1+others)
	tracking := settings.TrackingLegitimate
	if _, err := settings.Update(ctx, db, settings.Patch{CampaignsPatch: settings.CampaignsPatch{EngagementTracking: &tracking}}, audit.Actor{Kind: "user"}, time.Now()); err != nil {
		b.Fatal(err)
	}
	smtp := mailtest.Start(b)
	env = append(env, "CONSENTRY_SMTP_URL="+smtp.URL(), "CONSENTRY_TRUSTED_PROXIES=127.0.0.1")
	code, secret, stderr := runBinary(b, bin, env, "token", "create", "--name", "tracking bench", "--scope", "campaigns")
	if code != 0 {
		b.Fatalf("token create: %d %s", code, stderr)
	}
	child := startChild(b, bin, env)
	api := &apiClient{t: b, token: strings.TrimSpace(secret), base: "http://" + child.addr}
	send := func(name, cond string) string {
		var c struct{ ID string }
		api.do("POST", "/api/v1/campaigns", map[string]any{"name": name, "condition": cond,
			"variants": []map[string]string{{"language": "en", "subject": "Hi {{first_name}}", "html": "<p>Hi {{first_name}}.</p>"}}}, &c)
		api.do("POST", "/api/v1/campaigns/"+c.ID+"/send", nil, nil)
		return c.ID
	}
	// One tracked message, whose pixel the clients fetch; its recipient
	// must be recorded as tracked before the opens count.
	first := send("Pixel", `email == "c1@example.com"`)
	m := pixelRE.FindStringSubmatch(smtp.Wait(b, 1)[0].HTML)
	if m == nil {
		b.Fatal("no pixel in the message")
	}
	pixel := "http://" + child.addr + strings.ReplaceAll(m[1], "&amp;", "&")
	for status := ""; status != "sent"; {
		var p struct{ Status string }
		api.do("GET", "/api/v1/campaigns/"+first+"/progress", nil, &p)
		status = p.Status
		child.waitMore(b, &arrivals{more: make(chan struct{})})
	}
	if others > 0 {
		smtp.SetCount(true)
		send("Everyone else", `email != "c1@example.com"`)
		for smtp.Received() < 1+others/100 { // sending has begun
			child.waitMore(b, &arrivals{more: make(chan struct{})})
		}
	}

	var seq, failed atomic.Int64
	var latencies []time.Duration
	var mu sync.Mutex
	cpu0 := processCPU(b, child.cmd.Process.Pid)
	b.ResetTimer()
	start := time.Now()
	var wg sync.WaitGroup
	for range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			mine, err := fetchAll(child.addr, pixel, &seq, int64(b.N))
			if err != nil {
				failed.Add(1)
				b.Error(err)
			}
			mu.Lock()
			latencies = append(latencies, mine...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	if failed.Load() > 0 {
		b.FailNow()
	}
	for opens(b, db) < b.N {
		child.waitMore(b, &arrivals{more: make(chan struct{})})
	}
	took := time.Since(start)
	b.StopTimer()
	cpu := processCPU(b, child.cmd.Process.Pid) - cpu0
	slices.Sort(latencies)
	b.ReportMetric(float64(b.N)/took.Seconds(), "events/s")
	b.ReportMetric(float64(latencies[len(latencies)*99/100].Microseconds())/1000, "request-p99-ms")
	b.ReportMetric(float64(cpu.Microseconds())/float64(b.N), "server-CPU-µs/event")
	if others > 0 {
		b.ReportMetric(float64(smtp.Received()-1), "campaign-messages-meanwhile")
	}
	child.stop(b)
}

// opens counts the open events in the database.
func opens(t testing.TB, db *store.DB) int {
	var n int
	if err := db.Read.QueryRow(`SELECT count(*) FROM campaign_events WHERE kind = 'open'`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// processCPU is the CPU time (user and system) process pid has used, from
// /proc; 0 where there is no /proc.
func processCPU(t testing.TB, pid int) time.Duration {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// The fields after the command name, which is in parentheses: utime
	// and stime are the 12th and 13th of them, in clock ticks (100 a
	// second on Linux).
	f := strings.Fields(string(raw[strings.LastIndexByte(string(raw), ')')+1:]))
	utime, _ := strconv.ParseInt(f[11], 10, 64)
	stime, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(utime+stime) * 10 * time.Millisecond
}

// fetchAll sends GET requests for target over one keep-alive connection
// to addr, the way a load tool such as wrk does, until seq passes n; each
// request comes from its own address behind the proxy. It returns each
// request's latency. A plain HTTP/1.1 exchange keeps the client's own cost
// small, so that the server's share of the two cores is what is measured.
func fetchAll(addr, target string, seq *atomic.Int64, n int64) ([]time.Duration, error) {
	u, err := url.Parse(target)
	if err != nil {
		return nil, err
	}
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	r := bufio.NewReader(conn)
	var out []time.Duration
	var req []byte
	for {
		i := seq.Add(1)
		if i > n {
			return out, nil
		}
		req = fmt.Appendf(req[:0], "GET %s HTTP/1.1\r\nHost: %s\r\nX-Forwarded-For: 10.%d.%d.%d\r\n\r\n",
			u.RequestURI(), addr, i>>16&255, i>>8&255, i&255)
		t0 := time.Now()
		if _, err := conn.Write(req); err != nil {
			return out, err
		}
		res, err := http.ReadResponse(r, nil)
		if err != nil {
			return out, err
		}
		io.Copy(io.Discard, res.Body)
		res.Body.Close()
		if res.StatusCode != http.StatusOK {
			return out, fmt.Errorf("pixel: %s", res.Status)
		}
		out = append(out, time.Since(t0))
	}
}
