package httpx

import (
	"mime"
	"net/http"
)

// Attachment sets the headers of a file to save rather than show: its
// media type, and Content-Disposition attachment with filename, encoded
// as RFC 6266 asks (the caller keeps the name to safe characters too).
func Attachment(w http.ResponseWriter, contentType, filename string) {
	w.Header().Set("Content-Type", contentType)
	w.Header().Set("Content-Disposition", mime.FormatMediaType("attachment", map[string]string{"filename": filename}))
}
