package httpx

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"testing/fstest"
)

// TestStaticFiles: a file is served with its type, an ETag and no-cache
// (in place of Headers' no-store), and answered 304 while unchanged; an
// unknown file is a 404, and a file of an unknown type is refused at start.
func TestStaticFiles(t *testing.T) {
	files := fstest.MapFS{"site.css": {Data: []byte("body{color:#111}")}, "app.js": {Data: []byte("1")}}
	static, err := StaticFiles(files, "/s/")
	if err != nil {
		t.Fatal(err)
	}
	h := Headers(Policy{CSP: "default-src 'none'"}, static)
	get := func(path, etag string) *httptest.ResponseRecorder {
		req := httptest.NewRequest("GET", path, nil)
		if etag != "" {
			req.Header.Set("If-None-Match", etag)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec
	}
	rec := get("/s/site.css", "")
	etag := rec.Header().Get("ETag")
	if rec.Code != 200 || rec.Body.String() != "body{color:#111}" || rec.Header().Get("Content-Type") != "text/css; charset=utf-8" ||
		rec.Header().Get("Cache-Control") != "no-cache" || len(etag) < 10 {
		t.Fatalf("site.css: %d %v %q", rec.Code, rec.Header(), rec.Body)
	}
	if rec := get("/s/site.css", etag); rec.Code != http.StatusNotModified || rec.Body.Len() != 0 {
		t.Fatalf("site.css again: %d", rec.Code)
	}
	if rec := get("/s/app.js", ""); rec.Code != 200 || rec.Header().Get("Content-Type") != "text/javascript; charset=utf-8" ||
		rec.Header().Get("ETag") == etag {
		t.Fatalf("app.js: %d %v", rec.Code, rec.Header())
	}
	if rec := get("/s/other.css", ""); rec.Code != 404 {
		t.Fatalf("an unknown file: %d", rec.Code)
	}
	if _, err := StaticFiles(fstest.MapFS{"logo.svg": {Data: []byte("<svg/>")}}, "/s/"); err == nil {
		t.Fatal("a file of an unknown type was accepted")
	}
}
