package public

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/consentry/consentry/internal/ledgertree"
	"github.com/consentry/consentry/internal/signing"
	"github.com/consentry/consentry/internal/store/storetest"
)

// FuzzLedgerTilePath asks for arbitrary paths under /ledger/tile/ of a
// tree of 300 events: never a server error; a tile exactly when the path
// is one tlog.Tile.Path writes for a tile of height 8 the tree holds (of
// level 0, tile 0 and the first 44 hashes of tile 1; of level 1, the first
// hash of tile 0), and then its hashes as stored; else a 400 or 404 whose
// JSON names the field tile (or the redirect to a cleaned path).
func FuzzLedgerTilePath(f *testing.F) {
	db := storetest.OpenSQLite(f)
	tree := &ledgertree.Service{DB: db, Signing: &signing.Service{DB: db, Name: "ledger.example.org/ledger"}}
	appendLedger(f, db, 300)
	if _, err := tree.CatchUp(context.Background()); err != nil {
		f.Fatal(err)
	}
	s := ledgerSite(f, tree, true) // the fuzzer is one client sending fast
	for _, seed := range []string{"8/0/000", "8/0/001.p/44", "8/0/001.p/45", "8/1/000.p/1", "8/0/x001/234", "8/0/x001/234.p/7", "9/0/000",
		"8/data/000", "8/data/000.p/3", "8/0/000.p/0", "8/0/000.p/256", "8/99999999999999999999/000", "8/7/x999/x999/x999/x999/x999/x999/999",
		"8/0/x-01/000", "8/0/+01", "8/0/00 ", "../checkpoint", "", "8/-1/000", "8//000", "8/0/000/", "08/0/000", "8/00/000"} {
		f.Add(seed)
	}
	held := func(t tlog.Tile) bool {
		return t.H == 8 && ((t.L == 0 && (t.N == 0 || t.N == 1 && t.W <= 44)) || (t.L == 1 && t.N == 0 && t.W == 1))
	}
	f.Fuzz(func(t *testing.T, rest string) {
		req := httptest.NewRequest("GET", "/", nil)
		req.URL = &url.URL{Path: tilePrefix + rest}
		rec := httptest.NewRecorder()
		s.ServeHTTP(rec, req)
		tile, err := tlog.ParseTilePath("tile/" + rest)
		valid := err == nil && held(tile)
		switch rec.Code {
		case http.StatusOK:
			if !valid {
				t.Fatalf("GET %q: a tile, for no tile the tree holds", rest)
			}
			var data []byte
			if err := db.Read.QueryRow(`SELECT hashes FROM ledger_tree_tiles WHERE level = $1 AND idx = $2`, tile.L, tile.N).Scan(&data); err != nil {
				t.Fatal(err)
			}
			if got := rec.Body.Bytes(); len(got) != tile.W*tlog.HashSize || !bytes.HasPrefix(data, got) {
				t.Fatalf("GET %q: %d bytes, not the first %d hashes of the stored tile", rest, len(got), tile.W)
			}
		case http.StatusBadRequest, http.StatusNotFound:
			if valid || !strings.Contains(rec.Body.String(), `"field":"tile"`) {
				t.Fatalf("GET %q: %d %s", rest, rec.Code, rec.Body)
			}
		case http.StatusMovedPermanently, http.StatusTemporaryRedirect:
			if valid {
				t.Fatalf("GET %q: %d, for a tile the tree holds", rest, rec.Code)
			}
		default:
			t.Fatalf("GET %q: %d %s", rest, rec.Code, rec.Body)
		}
	})
}
