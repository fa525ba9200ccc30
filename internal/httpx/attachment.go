package httpx

import (
	"io"
	"mime"
	"net/http"
	"time"
)

// Attachment sets the headers of a file to save rather than show: its
// media type, and Content-Disposition attachment with filename, encoded
// as RFC 6266 asks (the caller keeps the name to safe characters too).
func Attachment(w http.ResponseWriter, contentType, filename string) {
	w.Header().Set("Content-Type", contentType)
	w.Header().Set("Content-Disposition", mime.FormatMediaType("attachment", map[string]string{"filename": filename}))
}

// KeepWriting returns a function that moves the response's write deadline
// d ahead, for a long download to call as it makes progress: the server's
// WriteTimeout suits ordinary answers and would cut an export of a
// million contacts midway, while a client that stops reading is still
// cut once nothing has moved for d. On a writer without deadlines (a
// test's recorder) it does nothing.
func KeepWriting(w http.ResponseWriter, d time.Duration) func() {
	rc := http.NewResponseController(w)
	return func() { _ = rc.SetWriteDeadline(time.Now().Add(d)) }
}

// LongBody gives a request whose body may take up to d to arrive (an
// uploaded file) that long to read it, and a minute beyond for its
// answer. The server's ReadTimeout and WriteTimeout suit ordinary
// requests; the write deadline, set as the request began, would
// otherwise cut the answer to an upload that took longer than it to
// arrive, and the client would see its connection closed with nothing
// said. On a writer without deadlines (a test's recorder) it does
// nothing.
func LongBody(w http.ResponseWriter, d time.Duration) {
	rc := http.NewResponseController(w)
	end := time.Now().Add(d)
	_ = rc.SetReadDeadline(end)
	_ = rc.SetWriteDeadline(end.Add(time.Minute))
}

// KeptWriting returns w as a writer each write to which moves the
// response's write deadline d ahead (KeepWriting), for a download written
// in one go by code that takes an io.Writer (a report of a million rows).
func KeptWriting(w http.ResponseWriter, d time.Duration) io.Writer {
	keep := KeepWriting(w, d)
	keep()
	return keptWriter{w: w, keep: keep}
}

type keptWriter struct {
	w    io.Writer
	keep func()
}

func (k keptWriter) Write(p []byte) (int, error) {
	k.keep()
	return k.w.Write(p)
}
