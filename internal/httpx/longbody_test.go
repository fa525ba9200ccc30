package httpx

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"
)

// An upload that takes longer to arrive than the server's ReadTimeout and
// WriteTimeout gets its answer when its handler calls LongBody; without
// it, the connection is cut and the client is told nothing.
func TestLongBodyIsAnswered(t *testing.T) {
	const timeout = 100 * time.Millisecond
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/long" {
			LongBody(w, time.Minute)
		}
		n, err := io.Copy(io.Discard, r.Body)
		if err != nil {
			return
		}
		w.WriteHeader(http.StatusCreated)
		fmt.Fprint(w, n)
	}))
	srv.Config.ReadTimeout, srv.Config.WriteTimeout = timeout, timeout
	srv.Start()
	defer srv.Close()

	// The body arrives in four pieces over about three times the
	// server's timeouts: the client's pace is what the test is about.
	upload := func(path string) (*http.Response, error) {
		pr, pw := io.Pipe()
		go func() {
			for range 4 {
				<-time.After(timeout)
				if _, err := pw.Write(make([]byte, 1024)); err != nil {
					return
				}
			}
			pw.Close()
		}()
		req, _ := http.NewRequest("POST", srv.URL+path, pr)
		return srv.Client().Do(req)
	}

	resp, err := upload("/long")
	if err != nil {
		t.Fatalf("a long upload was not answered: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated || string(body) != strconv.Itoa(4*1024) {
		t.Fatalf("long upload: %d %q, want 201 with all 4096 bytes read", resp.StatusCode, body)
	}

	if resp, err := upload("/short"); err == nil {
		resp.Body.Close()
		if resp.StatusCode == http.StatusCreated {
			t.Fatal("without LongBody the same upload was answered: the test shows nothing")
		}
	}
}

// A download written in one go that takes longer than the server's
// WriteTimeout arrives whole when it is written through KeptWriting, and
// is cut without it.
func TestKeptWritingIsNotCut(t *testing.T) {
	const timeout = 100 * time.Millisecond
	piece := make([]byte, 16<<10)
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var out io.Writer = w
		if r.URL.Path == "/kept" {
			out = KeptWriting(w, time.Minute)
		}
		// Four pieces over about three times the server's timeout: the
		// pace at which the rows are read is what the test is about.
		for range 4 {
			if _, err := out.Write(piece); err != nil {
				return
			}
			<-time.After(timeout)
		}
	}))
	srv.Config.WriteTimeout = timeout
	srv.Start()
	defer srv.Close()
	download := func(path string) (int, error) {
		resp, err := srv.Client().Get(srv.URL + path)
		if err != nil {
			return 0, err
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		return len(body), err
	}
	if n, err := download("/kept"); err != nil || n != 4*len(piece) {
		t.Fatalf("kept writing: %d bytes (%v), want %d", n, err, 4*len(piece))
	}
	if n, err := download("/plain"); err == nil && n == 4*len(piece) {
		t.Fatal("without KeptWriting the same download arrived whole: the test shows nothing")
	}
}
