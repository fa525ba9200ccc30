package erasure_test

import (
	"bytes"
	"context"
	"encoding/csv"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/consentry/consentry/internal/audit"
	"github.com/consentry/consentry/internal/consent"
	"github.com/consentry/consentry/internal/contact"
	"github.com/consentry/consentry/internal/errs"
	"github.com/consentry/consentry/internal/imports"
	"github.com/consentry/consentry/internal/jobs"
	"github.com/consentry/consentry/internal/lists"
	"github.com/consentry/consentry/internal/store"
	"github.com/consentry/consentry/internal/store/storetest"
)

// importer runs imports in a world, as the server wires them.
type importer struct {
	w    *world
	svc  *imports.Service
	jobs *jobs.Runner
}

func (w *world) importer() *importer {
	ctx := context.Background()
	clock := func() time.Time { return w.now }
	if _, err := w.consent.CreateSource(ctx, audit.Actor{Kind: "user"}, consent.SourceInput{Name: ptr("Trade fair 2026")}); err != nil {
		w.t.Fatal(err)
	}
	log := slog.New(slog.DiscardHandler)
	i := &importer{w: w, svc: &imports.Service{DB: w.db, Contacts: w.people, Consent: w.consent, Lists: &lists.Service{DB: w.db, Now: clock},
		Log: log, Now: clock}}
	i.jobs = jobs.NewRunner(w.db, log)
	i.jobs.Now = clock
	i.jobs.Handle(imports.JobKind, i.svc.Handle)
	i.jobs.Handle(imports.DropJobKind, i.svc.HandleDrop)
	return i
}

// fileHeader is the header of the files importer reads (definition).
var fileHeader = []string{"E-post", "Förnamn", "Gata", "Personnummer", "Nyhetsbrev", "Datum"}

func (i *importer) definition() imports.Definition {
	return imports.Definition{Source: "Trade fair 2026", Duplicates: contact.DuplicateSkip,
		Columns: []imports.Column{{Column: "E-post", Field: "email"}, {Column: "Förnamn", Field: "first_name"},
			{Column: "Gata", Field: "street"}, {Column: "Personnummer", Field: "national_id"}},
		Consents: []imports.Consent{{Purpose: "E-marketing", Column: "Nyhetsbrev", LegalBasis: consent.BasisConsent,
			CollectedAtColumn: "Datum", TextVersion: 1}}}
}

func csvOf(rows ...[]string) []byte {
	var b bytes.Buffer
	cw := csv.NewWriter(&b)
	cw.WriteAll(append([][]string{fileHeader}, rows...))
	return b.Bytes()
}

func (i *importer) upload(rows ...[]string) *imports.Import {
	i.w.t.Helper()
	imp, err := i.svc.Upload(context.Background(), "fair.csv", bytes.NewReader(csvOf(rows...)), user)
	if err != nil {
		i.w.t.Fatal(err)
	}
	return imp
}

// run starts the import and runs its jobs until none is due.
func (i *importer) run(id string, dryRun bool) *imports.Import {
	i.w.t.Helper()
	if _, err := i.svc.Start(context.Background(), id, i.definition(), dryRun); err != nil {
		i.w.t.Fatal(err)
	}
	i.runJobs()
	return i.get(id)
}

// runJobs runs the importer's jobs until none is due.
func (i *importer) runJobs() {
	i.w.t.Helper()
	for range 100 {
		if n, err := i.jobs.RunDue(context.Background()); err != nil {
			i.w.t.Fatal(err)
		} else if n == 0 {
			return
		}
	}
	i.w.t.Fatal("the importer's jobs did not run out")
}

func (i *importer) get(id string) *imports.Import {
	i.w.t.Helper()
	imp, err := i.svc.Get(context.Background(), id)
	if err != nil {
		i.w.t.Fatal(err)
	}
	return imp
}

// report returns the import's failed and skipped rows by row number.
func (i *importer) report(id string) map[int64]imports.ReportRow {
	i.w.t.Helper()
	rows, err := i.svc.ReportRows(context.Background(), id, 0, 100)
	if err != nil {
		i.w.t.Fatal(err)
	}
	out := map[int64]imports.ReportRow{}
	for _, r := range rows {
		out[r.Row] = r
	}
	return out
}

// checkCounts fails unless the import's counts add up to the rows it read
// and its report has a row for each skip and failure.
func (i *importer) checkCounts(imp *imports.Import) {
	i.w.t.Helper()
	var by int64
	for _, n := range imp.SkippedBy {
		by += n
	}
	if sum := imp.Created + imp.Updated + imp.Unchanged + imp.Skipped + imp.Failed; sum != imp.TotalRows || by != imp.Skipped ||
		int64(len(i.report(imp.ID))) != imp.Skipped+imp.Failed {
		i.w.t.Errorf("the counts of %s do not add up: %+v, report %+v", imp.ID, imp, i.report(imp.ID))
	}
}

// Rows of the erased contact in the files below: one fails (its date),
// one is skipped as a duplicate of the contact; both keep their cells
// until the erasure.
var (
	annaFails  = []string{address, "Anna", "Importgatan 7", "19800101-5555", "ja", "31-31-2026"}
	annaAgain  = []string{strings.ToUpper(address), "Anna", "Importgatan 9", "", "", ""}
	boFails    = []string{"bo@example.com", "Bo", "Bogatan 1", "", "ja", "31-31-2026"}
	cyIsFine   = []string{"cy@example.com", "Cy", "", "", "ja", "2026-10-14"}
	dyUploaded = []string{"dy@example.com", "Dy", "", "", "ja", "2026-10-14"}
	// Another person's row that fails and holds the address in another
	// column.
	evaMentionsAnna = []string{"eva@example.com", "Eva", "c/o " + address + ", Importgatan 7", "", "ja", "31-31-2026"}
)

// An erasure reaches what imports keep of the address, in its own
// transaction: the cells of the reported rows that have it in any column
// go (the counts still add up), and a kept file that has it and is not being
// imported is discarded; other rows and files stay. An import of the
// address afterwards keeps no cells of its failed row.
func TestErasureReachesImports(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		ctx := context.Background()
		w := newWorld(t, db)
		c := w.person(address)
		im := w.importer()

		done := im.run(im.upload(annaFails, boFails, cyIsFine, annaAgain, evaMentionsAnna).ID, false)
		if done.Status != imports.StatusDone || done.Created != 1 || done.Failed != 3 || done.SkippedBy[contact.SkipDuplicate] != 1 {
			t.Fatalf("import: %+v", done)
		}
		dry := im.run(im.upload(annaFails, boFails, cyIsFine, annaAgain, evaMentionsAnna).ID, true)
		if dry.Status != imports.StatusUploaded || !dry.DryRun || dry.Failed != 3 {
			t.Fatalf("dry run: %+v", dry)
		}
		never := im.upload(dyUploaded, annaFails)
		other := im.upload(dyUploaded, cyIsFine)
		for _, n := range []int64{2, 6} {
			if r := im.report(done.ID)[n]; !strings.Contains(strings.Join(r.Cells, ","), "Importgatan 7") {
				t.Fatalf("before the erasure, the report keeps row %d's cells: %+v", n, r)
			}
		}

		if _, err := w.erase.Erase(ctx, c.ID, byUser); err != nil {
			t.Fatal(err)
		}

		for _, id := range []string{done.ID, dry.ID} {
			report := im.report(id)
			for _, n := range []int64{2, 5, 6} {
				if r := report[n]; len(r.Cells) != 0 || r.Code == "" || r.Outcome == "" || strings.Contains(r.Reason, "31-31") {
					t.Errorf("row %d of %s after the erasure: %+v", n, id, r)
				}
			}
			if r := report[3]; r.Cells[2] != "Bogatan 1" || !strings.Contains(r.Reason, `"31-31-2026"`) {
				t.Errorf("another person's row lost its cells or reason: %+v", r)
			}
			if r := report[2]; r.Field != "consents[0].collected_at" || r.Outcome != imports.OutcomeFailed {
				t.Errorf("the erased row's outcome or field changed: %+v", r)
			}
		}
		im.checkCounts(im.get(done.ID))
		im.checkCounts(im.get(dry.ID))
		if n := w.count(`SELECT count(*) FROM import_rows WHERE lower(cells) LIKE '%anna.erasable%' OR lower(reason) LIKE '%anna.erasable%'
			OR cells LIKE '%Importgatan%'`); n != 0 {
			t.Errorf("%d reported rows still hold the erased address or its values", n)
		}

		// The discarded files' keys go with the erasure, so that they are
		// never read again; their chunks and hashes in pieces after it.
		for _, id := range []string{dry.ID, never.ID} {
			imp := im.get(id)
			if imp.Status != imports.StatusDiscarded || !strings.Contains(imp.Error, "erased") ||
				w.count(`SELECT count(*) FROM imports WHERE id = $1 AND file_key = ''`, id) != 1 {
				t.Errorf("a kept file with the address: %+v", imp)
			}
		}
		im.runJobs()
		for _, id := range []string{dry.ID, never.ID} {
			if n := w.count(`SELECT count(*) FROM import_file_chunks WHERE import_id = $1`, id) +
				w.count(`SELECT count(*) FROM import_file_addresses WHERE import_id = $1`, id) +
				w.count(`SELECT count(*) FROM imports WHERE id = $1 AND file_key <> ''`, id); n != 0 {
				t.Errorf("%d chunks, address hashes or keys of the discarded file %s remain", n, id)
			}
		}
		if _, err := im.svc.Start(ctx, never.ID, im.definition(), false); errs.As(err) == nil || errs.As(err).Code != "import_discarded" {
			t.Errorf("starting a discarded import: %v", err)
		}
		if imp := im.get(other.ID); imp.Status != imports.StatusUploaded ||
			w.count(`SELECT count(*) FROM import_file_chunks WHERE import_id = $1`, other.ID) == 0 {
			t.Errorf("a file without the address was discarded too: %+v", imp)
		}

		// The file uploaded again after the erasure: the erased address's
		// row fails, and keeps no cells, as a row skipped for it keeps none.
		w.now = w.now.Add(time.Hour)
		again := im.run(im.upload(annaFails, boFails, evaMentionsAnna).ID, false)
		if r := im.report(again.ID); again.Failed != 3 || len(r[2].Cells) != 0 || r[3].Cells[2] != "Bogatan 1" || len(r[4].Cells) != 0 {
			t.Errorf("a failed row of an erased address: %+v, report %+v", again, r)
		}
	})
}

// pausingReader gives data, waiting at pauseAt for resume, after telling
// reached: an upload stopped midway.
type pausingReader struct {
	data            []byte
	off, pauseAt    int
	reached, resume chan struct{}
}

func (r *pausingReader) Read(p []byte) (int, error) {
	if r.off == r.pauseAt && r.reached != nil {
		close(r.reached)
		r.reached = nil
		<-r.resume
	}
	if r.off == len(r.data) {
		return 0, io.EOF
	}
	end := len(r.data)
	if r.off < r.pauseAt {
		end = r.pauseAt
	}
	n := copy(p, r.data[r.off:end])
	r.off += n
	return n, nil
}

// A file still arriving when an address in it is erased is not kept,
// whether the erasure found the address already or the upload meets it
// erased: the upload is refused and out of sight at once, its key gone,
// and nothing of it stays once its pieces are deleted.
func TestErasureDuringAnUploadKeepsNothingOfIt(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		ctx := context.Background()
		w := newWorld(t, db)
		c := w.person(address)
		im := w.importer()
		rows := [][]string{annaFails}
		for i := 0; len(rows) < 20000; i++ {
			rows = append(rows, []string{fmt.Sprintf("padding %d", i), strings.Repeat("x", 80), "", "", "", ""})
		}
		r := &pausingReader{data: csvOf(rows...), pauseAt: 1 << 20, reached: make(chan struct{}), resume: make(chan struct{})}
		if len(r.data) <= r.pauseAt {
			t.Fatalf("the file (%d bytes) is not longer than the first chunk", len(r.data))
		}
		reached := r.reached
		uploaded := make(chan error, 1)
		go func() {
			_, err := im.svc.Upload(ctx, "big.csv", r, user)
			uploaded <- err
		}()
		<-reached // the first chunk is stored
		w.now = w.now.Add(time.Minute)
		if _, err := w.erase.Erase(ctx, c.ID, byUser); err != nil {
			t.Fatal(err)
		}
		close(r.resume)
		if err := <-uploaded; errs.As(err) == nil || errs.As(err).Code != "upload_discarded" {
			t.Fatalf("the upload: %v", err)
		}
		if all, err := im.svc.List(ctx, 10); err != nil || len(all) != 0 || w.count(`SELECT count(*) FROM imports WHERE file_key <> ''`) != 0 {
			t.Errorf("the refused upload is listed, or its key kept: %v %v", all, err)
		}
		im.runJobs()
		if _, err := im.svc.Prune(ctx, imports.KeepFor); err != nil {
			t.Fatal(err)
		}
		if n := w.count(`SELECT count(*) FROM imports`) + w.count(`SELECT count(*) FROM import_file_chunks`) +
			w.count(`SELECT count(*) FROM import_file_addresses`); n != 0 {
			t.Errorf("%d rows of the refused upload remain", n)
		}
	})
}

// Deleting a contact reaches what imports keep of its address as an
// erasure does.
func TestDeletionReachesImports(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		ctx := context.Background()
		w := newWorld(t, db)
		c := w.person(address)
		im := w.importer()
		done := im.run(im.upload(annaFails, boFails).ID, false)
		kept := im.upload(annaFails)
		if err := w.erase.Delete(ctx, c.ID, user); err != nil {
			t.Fatal(err)
		}
		if r := im.report(done.ID); len(r[2].Cells) != 0 || len(r[3].Cells) == 0 {
			t.Errorf("the report after the deletion: %+v", r)
		}
		if imp := im.get(kept.ID); imp.Status != imports.StatusDiscarded {
			t.Errorf("the upload holding the address: %+v", imp)
		}
	})
}

// An erasure that comes between an import's end and the deletion of its
// file (a job of its own, after the end) deletes the rest of the file at
// once: without a keyset the chunks are the file as it came. The import
// stays done.
func TestErasureReachesAnEndedImportsFileLeft(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		ctx := context.Background()
		w := newWorld(t, db)
		c := w.person(address)
		im := w.importer()
		// The file's deletion has not run yet: no runner takes its job.
		im.jobs = jobs.NewRunner(db, slog.New(slog.DiscardHandler))
		im.jobs.Now = func() time.Time { return w.now }
		im.jobs.Handle(imports.JobKind, im.svc.Handle)
		done := im.run(im.upload(annaFails, cyIsFine).ID, false)
		left := func() int {
			return w.count(`SELECT count(*) FROM import_file_chunks WHERE import_id = $1`, done.ID) +
				w.count(`SELECT count(*) FROM import_file_addresses WHERE import_id = $1`, done.ID)
		}
		if done.Status != imports.StatusDone || left() == 0 {
			t.Fatalf("import %+v, %d rows of its file left", done, left())
		}
		if _, err := w.erase.Erase(ctx, c.ID, byUser); err != nil {
			t.Fatal(err)
		}
		if n := left(); n != 0 {
			t.Fatalf("after the erasure, %d rows of the ended import's file are left", n)
		}
		if got := im.get(done.ID); got.Status != imports.StatusDone {
			t.Fatalf("the erasure changed the ended import: %+v", got)
		}
	})
}

// A large kept file holding the erased address is discarded with the
// erasure, its key gone so that nobody opens it again, and its chunks and
// hashes are deleted in pieces after it, rather than in the erasure's
// transaction while every other change waits.
func TestErasureDiscardsALargeFileInPieces(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		ctx := context.Background()
		w := newWorld(t, db)
		c := w.person(address)
		im := w.importer()
		rows := [][]string{annaFails}
		for i := 0; len(rows) < 60000; i++ {
			rows = append(rows, []string{fmt.Sprintf("p%d@example.com", i), strings.Repeat("x", 80), "", "", "", ""})
		}
		large, err := im.svc.Upload(ctx, "large.csv", bytes.NewReader(csvOf(rows...)), user)
		if err != nil {
			t.Fatal(err)
		}
		chunks := func() int { return w.count(`SELECT count(*) FROM import_file_chunks WHERE import_id = $1`, large.ID) }
		if n := chunks(); n <= 4 {
			t.Fatalf("the file is kept in %d chunks: not large", n)
		}
		if _, err := w.erase.Erase(ctx, c.ID, byUser); err != nil {
			t.Fatal(err)
		}
		if imp := im.get(large.ID); imp.Status != imports.StatusDiscarded ||
			w.count(`SELECT count(*) FROM imports WHERE id = $1 AND file_key = ''`, large.ID) != 1 || chunks() == 0 {
			t.Fatalf("right after the erasure: %+v, %d chunks", imp, chunks())
		}
		if _, err := im.svc.Preview(ctx, large.ID, im.definition(), 1); errs.As(err) == nil || errs.As(err).Code != "import_discarded" {
			t.Errorf("previewing the discarded file: %v", err)
		}
		im.runJobs()
		if n := chunks() + w.count(`SELECT count(*) FROM import_file_addresses WHERE import_id = $1`, large.ID); n != 0 {
			t.Errorf("%d chunks and hashes of the discarded file remain", n)
		}
	})
}
