package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/consentry/consentry/internal/audit"
	"github.com/consentry/consentry/internal/consent"
	"github.com/consentry/consentry/internal/contact"
	"github.com/consentry/consentry/internal/imports"
	"github.com/consentry/consentry/internal/imports/importstest"
	"github.com/consentry/consentry/internal/lists"
	"github.com/consentry/consentry/internal/store"
	"github.com/consentry/consentry/internal/store/storetest"
)

// Load made beside the import: besideWorkers goroutines together send
// besideRate requests a second, alternating a read of a contact and a
// consent change, to contacts that existed before the import.
const (
	besideWorkers  = 4
	besideRate     = 50
	besideContacts = 20
)

// BenchmarkImportFromOutside imports a CSV of b.N rows (10 columns,
// consents for two purposes, a list: importstest.File, as BenchmarkImport
// in internal/imports) through the API of `consentry serve` running as its
// own process: the file is streamed to POST /api/v1/imports as it is
// generated, then the import is started with its definition and its
// status polled every second. From the upload's first byte to the
// deletion of the import's file after its end, other API requests are
// made at a steady 50 a second from 4 goroutines: GET
// /api/v1/contacts/{id} and a consent change, POST
// /api/v1/contacts/{id}/consents, for contacts that existed before.
//
// It reports rows/s from the start request to the import's finished_at,
// rows/s with the upload, how long the file's deletion took after the
// end, the p50, p99 and largest latency of the other requests and how
// many there were (those over 250 ms are logged with when they began),
// and the server's peak resident memory (VmHWM). Targets (docs/imports.md, for 1,000,000 rows): other
// requests' p99 ≤ 100 ms, peak RSS ≤ 200 MB:
//
//	go test ./cmd/consentry -run XXX -bench ImportFromOutside -benchtime 1000000x -timeout 60m
func BenchmarkImportFromOutside(b *testing.B) {
	bin := buildBinary(b)
	b.Run("sqlite", func(b *testing.B) {
		db, env := sqliteEnv(b)
		importRun(b, bin, db, env)
	})
	b.Run("postgres", func(b *testing.B) {
		db := storetest.OpenPostgres(b)
		importRun(b, bin, db, postgresEnv(b, bin, db))
	})
}

func importRun(b *testing.B, bin string, db *store.DB, env []string) {
	importWorld(b, db)
	env = append(env, "CONSENTRY_LOG_LEVEL=warn")
	code, secret, stderr := runBinary(b, bin, env, "token", "create", "--name", "import bench")
	if code != 0 {
		b.Fatalf("token create: %d %s", code, stderr)
	}
	child := startChild(b, bin, env)
	api := &apiClient{t: b, token: strings.TrimSpace(secret), base: "http://" + child.addr}
	var ids []string
	for i := range besideContacts {
		var c struct{ ID string }
		api.do("POST", "/api/v1/contacts", map[string]any{"email": fmt.Sprintf("beside%d@example.org", i)}, &c)
		ids = append(ids, c.ID)
	}

	b.ResetTimer()
	stop := make(chan struct{})
	load := startBeside(api, ids, stop)
	stopped := false
	stopLoad := func() besideResult {
		if !stopped {
			close(stop)
			stopped = true
		}
		return load.wait()
	}
	defer stopLoad()

	start := time.Now()
	imp := uploadStream(b, api, importstest.File(b.N))
	if imp.TotalRows != int64(b.N) {
		b.Fatalf("upload: %d rows, want %d", imp.TotalRows, b.N)
	}
	uploaded := time.Now()
	api.do("POST", "/api/v1/imports/"+imp.ID+"/start", importstest.Definition(), nil)
	// The status is polled once a second; the import's end is its own
	// finished_at, on this machine's clock, not the poll that saw it.
	poll := time.NewTicker(time.Second)
	defer poll.Stop()
	var got imports.Import
	for {
		select {
		case <-poll.C:
		case <-child.exited:
			b.Fatalf("serve exited with %v:\n%s", child.cmd.ProcessState, child.output())
		}
		api.do("GET", "/api/v1/imports/"+imp.ID, nil, &got)
		if got.Status != imports.StatusQueued && got.Status != imports.StatusRunning {
			break
		}
	}
	done := time.Now()
	if got.FinishedAt != nil {
		done = *got.FinishedAt
	}
	b.StopTimer()
	// The other requests go on until the import's file is deleted, which
	// follows its end: what that makes them wait counts too.
	for left := 1; left > 0; {
		select {
		case <-poll.C:
		case <-child.exited:
			b.Fatalf("serve exited with %v:\n%s", child.cmd.ProcessState, child.output())
		}
		if err := db.Read.QueryRow(`SELECT (SELECT count(*) FROM import_file_chunks WHERE import_id = $1)
			+ (SELECT count(*) FROM import_file_addresses WHERE import_id = $1)`, imp.ID).Scan(&left); err != nil {
			b.Fatal(err)
		}
	}
	dropped := time.Now()
	res := stopLoad()
	for _, r := range res.slow {
		phase := "during the import"
		switch {
		case r.began.Before(uploaded):
			phase = "during the upload"
		case r.began.After(done):
			phase = "after the import's end, while its file was deleted"
		}
		b.Logf("slow: %s took %v, began %v after the upload's start, %s", r.what, r.took.Round(time.Millisecond),
			r.began.Sub(start).Round(time.Millisecond), phase)
	}
	if got.Status != imports.StatusDone || got.Created != int64(b.N) {
		b.Fatalf("import: status %s, created %d of %d, failed %d, skipped %d, error %q",
			got.Status, got.Created, b.N, got.Failed, got.Skipped, got.Error)
	}
	if len(res.errs) > 0 {
		b.Fatalf("%d of %d requests beside the import failed; the first: %v", len(res.errs), len(res.lat)+len(res.errs), res.errs[0])
	}
	mb := importstest.PeakRSS(strconv.Itoa(child.cmd.Process.Pid))
	child.stop(b)

	b.ReportMetric(float64(b.N)/done.Sub(uploaded).Seconds(), "rows/s")
	b.ReportMetric(dropped.Sub(done).Seconds(), "file-deleted-s")
	b.ReportMetric(float64(b.N)/done.Sub(start).Seconds(), "rows/s-with-upload")
	b.ReportMetric(float64(len(res.lat)), "requests")
	if lat := res.lat; len(lat) > 0 {
		slices.Sort(lat)
		ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
		b.ReportMetric(ms(lat[len(lat)/2]), "api-p50-ms")
		b.ReportMetric(ms(lat[len(lat)*99/100]), "api-p99-ms")
		b.ReportMetric(ms(lat[len(lat)-1]), "api-max-ms")
	}
	if mb > 0 {
		b.ReportMetric(mb, "peak-RSS-MB")
	}
}

// importWorld creates in db what importstest.Definition names beyond the
// built-in E-marketing purpose: the Share with partners purpose, the
// Trade fair 2026 source, the company field and the Newsletter list.
func importWorld(t testing.TB, db *store.DB) {
	ctx := context.Background()
	cs := consent.NewService(db)
	people := contact.NewService(db, cs)
	str := func(s string) *string { return &s }
	if _, err := cs.CreatePurpose(ctx, audit.Actor{Kind: "user"}, consent.PurposeInput{Name: str(importstest.Purpose), LegalBasis: str(consent.BasisConsent),
		Text: str("May we share your details with our partners?")}); err != nil {
		t.Fatal(err)
	}
	if _, err := cs.CreateSource(ctx, audit.Actor{Kind: "user"}, consent.SourceInput{Name: str(importstest.Source)}); err != nil {
		t.Fatal(err)
	}
	if _, err := people.CreateField(ctx, audit.Actor{Kind: "user"}, contact.FieldInput{Name: str(importstest.Field), Label: str("Company"), Type: str("text")}); err != nil {
		t.Fatal(err)
	}
	if _, err := (&lists.Service{DB: db, Now: time.Now}).Create(ctx, audit.Actor{Kind: "user"}, lists.Input{Name: str(importstest.List)}); err != nil {
		t.Fatal(err)
	}
}

// uploadStream sends file as the body of POST /api/v1/imports, in chunks
// of unknown total length, and returns the import it made. No timeout
// bounds it: a large file takes minutes (the benchmark's -timeout does).
func uploadStream(t testing.TB, api *apiClient, file io.ReadCloser) *imports.Import {
	t.Helper()
	req, err := http.NewRequest("POST", api.base+"/api/v1/imports?name=bench.csv", file)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+api.token)
	req.Header.Set("Content-Type", "application/octet-stream")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("upload: %d %s", resp.StatusCode, body)
	}
	var imp imports.Import
	if err := json.Unmarshal(body, &imp); err != nil {
		t.Fatalf("upload: %v", err)
	}
	return &imp
}

// besideResult is what the requests beside the import saw: each
// successful request's latency, the slowest ones with when they began
// and what they were, and each failure.
type besideResult struct {
	lat  []time.Duration
	slow []slowRequest
	errs []error
}

// slowRequest is a request beside the import that took more than
// slowBeside: logged, so that a stall can be placed in the upload or the
// import, and at its start or end.
type slowRequest struct {
	began time.Time
	took  time.Duration
	what  string
}

const slowBeside = 250 * time.Millisecond

type besideLoad struct {
	wg  sync.WaitGroup
	mu  sync.Mutex
	res besideResult
}

// wait waits for the goroutines to end (after stop is closed) and returns
// what they saw.
func (l *besideLoad) wait() besideResult {
	l.wg.Wait()
	return l.res
}

// startBeside starts the requests beside the import, until stop is
// closed: besideWorkers goroutines, each on a ticker, so that together
// they send besideRate a second; a request that outlasts its interval
// makes its goroutine skip the ticks it missed, which the request count
// shows. Each goroutine has its own contacts of ids, so that their
// consent changes do not race each other.
func startBeside(api *apiClient, ids []string, stop chan struct{}) *besideLoad {
	l := &besideLoad{}
	client := &http.Client{Timeout: 30 * time.Second,
		Transport: &http.Transport{MaxIdleConnsPerHost: besideWorkers, MaxConnsPerHost: besideWorkers}}
	states := []string{consent.StateGranted, consent.StateWithdrawn}
	for g := range besideWorkers {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			tick := time.NewTicker(time.Second * besideWorkers / besideRate)
			defer tick.Stop()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				case <-tick.C:
				}
				id := ids[(g+besideWorkers*(i/2))%len(ids)]
				var err error
				t0 := time.Now()
				what := "GET /api/v1/contacts/{id}"
				if i%2 == 0 {
					err = besideRequest(client, api, "GET", "/api/v1/contacts/"+id, nil)
				} else {
					what = "POST /api/v1/contacts/{id}/consents"
					err = besideRequest(client, api, "POST", "/api/v1/contacts/"+id+"/consents",
						map[string]any{"purpose": "E-marketing", "state": states[(i/2)%2], "source": importstest.Source})
				}
				took := time.Since(t0)
				l.mu.Lock()
				if err != nil {
					l.res.errs = append(l.res.errs, err)
				} else {
					l.res.lat = append(l.res.lat, took)
				}
				if took > slowBeside {
					l.res.slow = append(l.res.slow, slowRequest{began: t0, took: took, what: what})
				}
				l.mu.Unlock()
			}
		}()
	}
	return l
}

// besideRequest sends one API request with body as JSON and wants a 2xx
// answer, read to its end.
func besideRequest(client *http.Client, api *apiClient, method, path string, body any) error {
	var r io.Reader
	if body != nil {
		data, _ := json.Marshal(body)
		r = bytes.NewReader(data)
	}
	req, err := http.NewRequest(method, api.base+path, r)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+api.token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("%s %s: %d %s", method, path, resp.StatusCode, data)
	}
	return nil
}
