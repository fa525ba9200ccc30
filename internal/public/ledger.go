package public

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/consentry/consentry/internal/errs"
	"github.com/consentry/consentry/internal/httpx"
	"github.com/consentry/consentry/internal/store"
)

// The ledger's public face: what anyone needs to check a receipt or the
// ledger without an account and without trusting the database. None of
// it is personal data: checkpoints and proofs are hashes.
//
//	GET /ledger/checkpoint           the latest signed checkpoint (?size=N: the one of that size)
//	GET /ledger/consistency?from=N   a proof that the tree grew from size N to the latest (or &to=M)
//	GET /ledger/key                  the verifier keys, current first, one per line
//	GET /ledger/tile/8/L/N[.p/W]     a tile of the tree, as tlog.Tile.Path names it
func (s *Server) ledgerRoutes() {
	if s.Tree == nil {
		return
	}
	s.mux.HandleFunc("GET /ledger/checkpoint", s.ledgerCheckpoint)
	s.mux.HandleFunc("GET /ledger/consistency", s.ledgerConsistency)
	s.mux.HandleFunc("GET /ledger/key", s.ledgerKey)
	s.mux.HandleFunc("GET "+tilePrefix, s.ledgerTile)
}

// tilePrefix is where the tree's tiles are served: under it, each tile at
// its tlog.Tile.Path, as the Go checksum database serves its own, so that
// tlog.TileHashReader over plain HTTP fetches can mirror and check them.
const tilePrefix = "/ledger/tile/"

// ledgerTile serves a tile of the tree: the raw hashes, 32 bytes each. A
// full tile never changes; a partial one is the start of a tile that is
// still filling, so it is kept briefly, as the next one is longer.
func (s *Server) ledgerTile(w http.ResponseWriter, r *http.Request) {
	t, err := parseTilePath(strings.TrimPrefix(r.URL.Path, "/ledger/"))
	if err != nil {
		ledgerError(w, err)
		return
	}
	data, err := s.Tree.Tile(r.Context(), t)
	if err != nil {
		s.ledgerFail(w, err)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "application/octet-stream")
	h.Set("Content-Length", strconv.Itoa(len(data)))
	h.Set("Cache-Control", "public, max-age=60")
	if t.W == 1<<t.H {
		h.Set("Cache-Control", "public, max-age=31536000, immutable")
	}
	w.Write(data)
}

// parseTilePath reads a tile's path, tile/H/L/N or tile/H/L/N.p/W, in the
// one form tlog.Tile.Path writes it: N in groups of three digits, all but
// the last prefixed with x (x001/x234/067). The error names the field
// "tile" and says what the form is.
func parseTilePath(p string) (tlog.Tile, error) {
	t, err := tlog.ParseTilePath(p)
	if err != nil {
		return tlog.Tile{}, errs.Invalid("tile", "a tile's path is tile/8/L/N, or tile/8/L/N.p/W for the first W (1 to 255) hashes of a tile: "+
			"the level L and the number N in decimal, N in groups of three digits, all but the last prefixed with x (tile/8/0/x001/234)")
	}
	return t, nil
}

func (s *Server) ledgerCheckpoint(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	var size int64
	if v := r.URL.Query().Get("size"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 1 {
			ledgerError(w, errs.Invalid("size", "a tree size is a whole number from 1"))
			return
		}
		size = n
	}
	c, err := s.Tree.Latest(ctx)
	if size > 0 {
		c, err = s.Tree.CheckpointAt(ctx, size)
	} else if errs.Is(err, errs.KindNotFound) {
		c, err = s.Tree.MakeCheckpoint(ctx) // the first, on demand
		if err == nil && c == nil {
			err = errs.NotFound("checkpoint", "")
		}
	}
	if err != nil {
		s.ledgerFail(w, err)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("Cache-Control", "no-cache")
	if size > 0 {
		h.Set("Cache-Control", "public, max-age=31536000, immutable") // a checkpoint never changes
	}
	w.Write([]byte(c.Note))
}

func (s *Server) ledgerConsistency(w http.ResponseWriter, r *http.Request) {
	var from, to int64
	for _, p := range []struct {
		name string
		to   *int64
	}{{"from", &from}, {"to", &to}} {
		v := r.URL.Query().Get(p.name)
		if v == "" {
			continue
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			ledgerError(w, errs.Invalid(p.name, "a tree size is a whole number"))
			return
		}
		*p.to = n
	}
	if from == 0 {
		ledgerError(w, errs.Required("from"))
		return
	}
	proof, err := s.Tree.Consistency(r.Context(), from, to)
	if err != nil {
		s.ledgerFail(w, err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(proof)
}

func (s *Server) ledgerKey(w http.ResponseWriter, r *http.Request) {
	// The first key is made here if need be, so that the list is never
	// empty: what a verifier copies today checks what is signed tomorrow.
	if _, err := s.Tree.Signing.Current(r.Context()); err != nil {
		s.ledgerFail(w, err)
		return
	}
	keys, err := s.Tree.Signing.Public(r.Context())
	if err != nil {
		s.ledgerFail(w, err)
		return
	}
	var b strings.Builder
	for _, k := range keys {
		b.WriteString(k.VerifierKey() + "\n")
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-cache")
	w.Write([]byte(b.String()))
}

// ledgerFail answers err: the input's fault as a 4xx naming the field, a
// database that cannot be reached as a 503 to try again, anything else as
// a 500 that tells nothing.
func (s *Server) ledgerFail(w http.ResponseWriter, err error) {
	if errs.As(store.Unavailable(err)) != nil {
		ledgerError(w, store.Unavailable(err))
		return
	}
	s.Log.Error("ledger: answer a request", "err", err)
	http.Error(w, "The ledger could not be read.", http.StatusInternalServerError)
}

// ledgerError answers the domain error err in the API's error shape,
// {"error": {"code", "message", "field"}}, field left out when the error
// is about no one input.
func ledgerError(w http.ResponseWriter, err error) {
	e := errs.As(err)
	status := http.StatusBadRequest
	switch e.Kind {
	case errs.KindNotFound:
		status = http.StatusNotFound
	case errs.KindUnavailable:
		status = http.StatusServiceUnavailable
		w.Header().Set("Retry-After", httpx.RetryAfter)
		e = &errs.Error{Code: e.Code, Message: "the ledger cannot be read just now; try again shortly"} // not why: that is the operator's
	}
	type detail struct {
		Code    string `json:"code"`
		Message string `json:"message"`
		Field   string `json:"field,omitempty"`
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]detail{"error": {Code: e.Code, Message: e.Message, Field: e.Field}})
}
