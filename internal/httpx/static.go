package httpx

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"net/http"
	"path"
	"strings"
	"time"
)

// staticTypes are the content types of the files StaticFiles serves, set
// rather than guessed, since the system's MIME table may differ.
var staticTypes = map[string]string{".css": "text/css; charset=utf-8", ".js": "text/javascript; charset=utf-8"}

// StaticFiles serves the files at the top of fsys (embedded stylesheets
// and scripts) under prefix, which ends in a slash: "/admin/static/" for
// the admin pages, "/static/" for the public ones. They are the same for
// everyone, so, unlike pages, the browser may keep them; it asks each time
// (no-cache, replacing Headers' no-store) and is answered 304 Not Modified
// while the ETag, a hash of the content, is unchanged, so that after an
// upgrade no page runs with an old script or looks as it did before. An
// unknown file is a 404. A file of a type it does not know (only .css and
// .js) is an error when it starts, not a guess at run time.
func StaticFiles(fsys fs.FS, prefix string) (http.Handler, error) {
	type file struct {
		data        []byte
		etag, ctype string
	}
	byName := map[string]file{}
	entries, err := fs.ReadDir(fsys, ".")
	if err != nil {
		return nil, err
	}
	for _, e := range entries {
		ctype, ok := staticTypes[path.Ext(e.Name())]
		if !ok || e.IsDir() {
			return nil, fmt.Errorf("httpx: static file %s: no content type for it", e.Name())
		}
		data, err := fs.ReadFile(fsys, e.Name())
		if err != nil {
			return nil, err
		}
		sum := sha256.Sum256(data)
		byName[e.Name()] = file{data: data, etag: `"` + hex.EncodeToString(sum[:12]) + `"`, ctype: ctype}
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f, ok := byName[strings.TrimPrefix(r.URL.Path, prefix)]
		if !ok {
			http.NotFound(w, r)
			return
		}
		h := w.Header()
		h.Set("Content-Type", f.ctype)
		h.Set("ETag", f.etag)
		h.Set("Cache-Control", "no-cache")
		http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(f.data))
	}), nil
}
