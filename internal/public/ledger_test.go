package public

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/consentry/consentry/internal/ledger/ledgertest"
	"github.com/consentry/consentry/internal/ledgertree"
	"github.com/consentry/consentry/internal/signing"
	"github.com/consentry/consentry/internal/store"
	"github.com/consentry/consentry/internal/store/storetest"
)

// appendLedger appends n events to the ledger, a hundred to a write.
func appendLedger(t testing.TB, db *store.DB, n int) { t.Helper(); ledgertest.Append(t, db, n, 100) }

// ledgerSite is the public server with the ledger's endpoints only, over
// tree; its per-client limit is the default one unless unlimited.
func ledgerSite(t testing.TB, tree *ledgertree.Service, unlimited bool) *Server {
	t.Helper()
	s, err := New(&Server{DB: tree.DB, Log: slog.New(slog.DiscardHandler), Tree: tree})
	if err != nil {
		t.Fatal(err)
	}
	if unlimited {
		s.limiter = newLimiter(1<<30, 1<<30, time.Minute)
	}
	return s
}

// httpTiles is a tlog.TileReader that fetches each tile from a server over
// HTTP at its tlog.Tile.Path, as an auditor's mirror would.
type httpTiles struct {
	base    string // up to and with /ledger/
	fetched int
}

func (h *httpTiles) Height() int { return 8 }

func (h *httpTiles) ReadTiles(tiles []tlog.Tile) ([][]byte, error) {
	out := make([][]byte, len(tiles))
	for i, t := range tiles {
		resp, err := http.Get(h.base + t.Path())
		if err != nil {
			return nil, err
		}
		out[i], err = io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			return nil, err
		}
		if resp.StatusCode != 200 {
			return nil, fmt.Errorf("GET %s: %d %s", t.Path(), resp.StatusCode, out[i])
		}
		h.fetched++
	}
	return out, nil
}

func (h *httpTiles) SaveTiles([]tlog.Tile, [][]byte) {}

// eventLeaf is the tree leaf of event seq as an auditor computes it from
// the event: the record hash of its chain hash.
func eventLeaf(t testing.TB, db *store.DB, seq int64) tlog.Hash {
	t.Helper()
	var h string
	if err := db.Read.QueryRow(`SELECT hash FROM ledger_events WHERE seq = $1`, seq).Scan(&h); err != nil {
		t.Fatal(err)
	}
	data, err := hex.DecodeString(h)
	if err != nil {
		t.Fatal(err)
	}
	return tlog.RecordHash(data)
}

// TestLedgerTilesMirror reads the tree's tiles over HTTP as an auditor
// mirroring the ledger would, with only tlog and note: the tree hash the
// tiles give for the signed checkpoint's size is its root, and an event's
// inclusion proof computed from them checks; the same for an older
// checkpoint, whose partial tiles have since grown. Tiles the tree does
// not hold, and paths that are no tile's, get a 404 or 400 saying why; a
// changed tile byte is caught by the tile reader's own checks.
func TestLedgerTilesMirror(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		ctx := context.Background()
		tree := &ledgertree.Service{DB: db, Signing: &signing.Service{DB: db, Name: "ledger.example.org/ledger"}, Batch: 500}
		appendLedger(t, db, 300)
		if _, err := tree.MakeCheckpoint(ctx); err != nil {
			t.Fatal(err)
		}
		// 600 events: of level 0, two full tiles and one of 88 hashes; of
		// level 1, one of 2. The tree of 300 had a tile of 44 at level 0
		// and one of 1 at level 1.
		appendLedger(t, db, 300)
		if _, err := tree.MakeCheckpoint(ctx); err != nil {
			t.Fatal(err)
		}
		srv := httptest.NewServer(ledgerSite(t, tree, true))
		defer srv.Close()
		get := func(path string) (*http.Response, []byte) {
			t.Helper()
			resp, err := http.Get(srv.URL + path)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, err := io.ReadAll(resp.Body)
			if err != nil {
				t.Fatal(err)
			}
			return resp, body
		}
		_, key := get("/ledger/key")
		v, err := note.NewVerifier(strings.Split(strings.TrimSpace(string(key)), "\n")[0])
		if err != nil {
			t.Fatal(err)
		}
		checkpoint := func(path string) tlog.Tree {
			t.Helper()
			resp, body := get(path)
			n, err := note.Open(body, note.VerifierList(v))
			if resp.StatusCode != 200 || err != nil {
				t.Fatalf("GET %s: %d %s: %v", path, resp.StatusCode, body, err)
			}
			lines := strings.Split(n.Text, "\n")
			var size int64
			fmt.Sscan(lines[1], &size)
			h, err := base64.StdEncoding.DecodeString(lines[2])
			if err != nil || len(h) != tlog.HashSize {
				t.Fatalf("checkpoint root %q", lines[2])
			}
			return tlog.Tree{N: size, Hash: tlog.Hash(h)}
		}
		// mirror checks, over tiles fetched over HTTP, that they give the
		// checkpoint's root and prove the events seqs in its tree; it
		// returns the first error.
		mirror := func(cp tlog.Tree, seqs ...int64) error {
			tiles := &httpTiles{base: srv.URL + "/ledger/"}
			r := tlog.TileHashReader(cp, tiles)
			root, err := tlog.TreeHash(cp.N, r)
			if err != nil {
				return err
			}
			if root != cp.Hash {
				return fmt.Errorf("the tiles give the root %x for %d events, the checkpoint %x", root, cp.N, cp.Hash)
			}
			for _, seq := range seqs {
				got, err := r.ReadHashes([]int64{tlog.StoredHashIndex(0, seq-1)})
				if err != nil {
					return err
				}
				if want := eventLeaf(t, db, seq); got[0] != want {
					return fmt.Errorf("the tiles give event %d the leaf %x, its hash %x", seq, got[0], want)
				}
				p, err := tlog.ProveRecord(cp.N, seq-1, r)
				if err != nil {
					return err
				}
				if err := tlog.CheckRecord(p, cp.N, cp.Hash, seq-1, got[0]); err != nil {
					return fmt.Errorf("event %d: %w", seq, err)
				}
			}
			if tiles.fetched == 0 {
				return fmt.Errorf("no tile was fetched")
			}
			return nil
		}
		latest := checkpoint("/ledger/checkpoint")
		if latest.N != 600 {
			t.Fatalf("the latest checkpoint covers %d events, want 600", latest.N)
		}
		if err := mirror(latest, 1, 5, 256, 257, 523, 600); err != nil {
			t.Fatalf("the tiles of the latest checkpoint: %v", err)
		}
		older := checkpoint("/ledger/checkpoint?size=300")
		if err := mirror(older, 7, 290, 300); err != nil {
			t.Fatalf("the tiles of the checkpoint of 300, after the tree grew to 600: %v", err)
		}

		// A full tile is kept for good, a partial one briefly.
		for path, want := range map[string]struct {
			bytes int
			cache string
		}{
			"tile/8/0/000":      {256 * 32, "public, max-age=31536000, immutable"},
			"tile/8/0/001":      {256 * 32, "public, max-age=31536000, immutable"},
			"tile/8/0/002.p/88": {88 * 32, "public, max-age=60"},
			"tile/8/0/001.p/44": {44 * 32, "public, max-age=60"},
			"tile/8/1/000.p/2":  {2 * 32, "public, max-age=60"},
			"tile/8/1/000.p/1":  {32, "public, max-age=60"},
		} {
			resp, body := get("/ledger/" + path)
			if resp.StatusCode != 200 || len(body) != want.bytes || resp.ContentLength != int64(want.bytes) || resp.Header.Get("Content-Type") != "application/octet-stream" ||
				resp.Header.Get("Cache-Control") != want.cache {
				t.Errorf("GET %s: %d, %d bytes, %s, %q; want 200, %d bytes of application/octet-stream, %q", path, resp.StatusCode, len(body),
					resp.Header.Get("Content-Type"), resp.Header.Get("Cache-Control"), want.bytes, want.cache)
			}
		}
		// A partial tile is the start of the longer one.
		_, full := get("/ledger/tile/8/0/001")
		if _, part := get("/ledger/tile/8/0/001.p/44"); !bytes.Equal(part, full[:44*32]) {
			t.Error("tile 0/1.p/44 is not the first 44 hashes of tile 0/1")
		}

		for path, want := range map[string]struct {
			status int
			says   string
		}{
			"tile/8/0/002":          {404, "holds 88 hashes, not 256"},
			"tile/8/0/002.p/89":     {404, "holds 88 hashes, not 89"},
			"tile/8/0/003.p/1":      {404, "no tile 3 at level 0"},
			"tile/8/0/x001/000":     {404, "no tile 1000 at level 0"},
			"tile/8/1/000":          {404, "holds 2 hashes, not 256"},
			"tile/8/2/000.p/1":      {404, "no tile 0 at level 2"},
			"tile/8/8/000.p/1":      {404, "levels 0 to 7"},
			"tile/8/2147483648/000": {404, "levels 0 to 7"},
			"tile/4/0/000":          {404, "height 8 only"},
			"tile/8/data/000":       {404, "not served as tiles"},
			"tile/8/0/1":            {400, "groups of three digits"},
			"tile/8/0/x000/001":     {400, "groups of three digits"},
			"tile/8/0/000.p/0":      {400, "tile/8/L/N.p/W"},
			"tile/8/0/000.p/256":    {400, "tile/8/L/N.p/W"},
			"tile/8/-1/000":         {400, "tile/8/L/N"},
			"tile/8/0/000.p/":       {400, "tile/8/L/N"},
			"tile/":                 {400, "tile/8/L/N"},
			"tile/8/0/x999/x999/x999/x999/x999/x999/x999/999": {400, "tile/8/L/N"},
		} {
			resp, body := get("/ledger/" + path)
			var e struct {
				Error struct{ Code, Field, Message string }
			}
			json.Unmarshal(body, &e)
			if resp.StatusCode != want.status || e.Error.Field != "tile" || !strings.Contains(e.Error.Message, want.says) ||
				resp.Header.Get("Cache-Control") != "no-store" {
				t.Errorf("GET %s: %d %s (%q); want %d on the field tile saying %q, not to be kept", path, resp.StatusCode, body,
					resp.Header.Get("Cache-Control"), want.status, want.says)
			}
			// The error has the code of the API's error shape.
			if code := map[int]string{400: "invalid", 404: "tile_not_found"}[want.status]; e.Error.Code != code {
				t.Errorf("GET %s: %s; want the code %q", path, body, code)
			}
		}

		// A changed byte in a stored tile: the tile reader, checking each
		// tile against the ones above it and the top against the signed
		// root, refuses it.
		tamper := func(level, n int, fn func() error) error {
			t.Helper()
			var data []byte
			if err := db.Read.QueryRow(`SELECT hashes FROM ledger_tree_tiles WHERE level = $1 AND idx = $2`, level, n).Scan(&data); err != nil {
				t.Fatal(err)
			}
			changed := bytes.Clone(data)
			changed[40] ^= 1
			set := func(d []byte) {
				if err := db.Write(ctx, func(tx *store.Tx) error {
					_, err := tx.Exec(`UPDATE ledger_tree_tiles SET hashes = $1 WHERE level = $2 AND idx = $3`, d, level, n)
					return err
				}); err != nil {
					t.Fatal(err)
				}
			}
			set(changed)
			defer set(data)
			return fn()
		}
		// The top tile: the root it gives is not the signed one.
		if err := tamper(1, 0, func() error { return mirror(latest) }); err == nil {
			t.Error("a changed byte in tile 1/0 went unnoticed")
		}
		// A tile under it: its hash is not the one its parent holds.
		if err := tamper(0, 0, func() error { return mirror(latest, 2) }); err == nil {
			t.Error("a changed byte in tile 0/0 went unnoticed")
		}
		if err := mirror(latest, 2, 600); err != nil {
			t.Fatalf("the tiles put back: %v", err)
		}
	})
}

// TestLedgerTilesLimited: the ledger's endpoints have a per-client limit
// of their own (a mirror fetches thousands of tiles), apart from the
// public pages': a client past the pages' limit still gets tiles, and a
// client past the ledger's gets a 429.
func TestLedgerTilesLimited(t *testing.T) {
	db := storetest.OpenSQLite(t)
	tree := &ledgertree.Service{DB: db, Signing: &signing.Service{DB: db, Name: "ledger.example.org/ledger"}}
	appendLedger(t, db, 3)
	if _, err := tree.CatchUp(context.Background()); err != nil {
		t.Fatal(err)
	}
	s := ledgerSite(t, tree, false)
	now := time.Now()
	s.limiter.Now = func() time.Time { return now } // no token comes back meanwhile
	s.ledgerLimit.Now = s.limiter.Now
	ask := func(path string, n int) map[int]int {
		codes := map[int]int{}
		for range n {
			rec := httptest.NewRecorder()
			s.ServeHTTP(rec, httptest.NewRequest("GET", path, nil))
			codes[rec.Code]++
		}
		return codes
	}
	pages := DefaultLimits().Pages.Burst
	if codes := ask("/p/link-invalid", pages+1); codes[http.StatusTooManyRequests] != 1 {
		t.Fatalf("public pages answered %v; want the last of %d refused", codes, pages+1)
	}
	ledger := DefaultLimits().Ledger.Burst
	if ledger <= 10*pages {
		t.Fatalf("the ledger's burst is %d, hardly more than the pages' %d", ledger, pages)
	}
	if codes := ask("/ledger/tile/8/0/000.p/3", ledger+1); codes[200] != ledger || codes[http.StatusTooManyRequests] != 1 {
		t.Fatalf("tiles answered %v; want %d tiles, then 429", codes, ledger)
	}
}

// TestLedgerTileUnavailable: a tile asked for while the database cannot
// be reached gets a 503 and a time to try again.
func TestLedgerTileUnavailable(t *testing.T) {
	down, err := sql.Open("pgx", "postgres://consentry@127.0.0.1:1/none?sslmode=disable&connect_timeout=5")
	if err != nil {
		t.Fatal(err)
	}
	defer down.Close()
	db := &store.DB{Dialect: store.Postgres, Read: down}
	s := ledgerSite(t, &ledgertree.Service{DB: db, Signing: &signing.Service{DB: db, Name: "ledger.example.org/ledger"}}, true)
	rec := httptest.NewRecorder()
	s.ServeHTTP(rec, httptest.NewRequest("GET", "/ledger/tile/8/0/000", nil))
	if rec.Code != http.StatusServiceUnavailable || rec.Header().Get("Retry-After") == "" || !strings.Contains(rec.Body.String(), "try again") ||
		!strings.Contains(rec.Body.String(), `"code":"database_unavailable"`) {
		t.Fatalf("GET a tile with the database down: %d %s (Retry-After %q); want 503 with a time to try again", rec.Code, rec.Body,
			rec.Header().Get("Retry-After"))
	}
}
