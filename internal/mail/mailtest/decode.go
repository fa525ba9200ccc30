package mailtest

import (
	"encoding/base64"
	"io"
	"mime/quotedprintable"
	"strings"
)

// decode undoes a part's transfer encoding.
func decode(encoding string, r io.Reader) string {
	switch strings.ToLower(encoding) {
	case "quoted-printable":
		r = quotedprintable.NewReader(r)
	case "base64":
		r = base64.NewDecoder(base64.StdEncoding, stripNewlines{r})
	}
	b, _ := io.ReadAll(r)
	return string(b)
}

type stripNewlines struct{ r io.Reader }

func (s stripNewlines) Read(p []byte) (int, error) {
	n, err := s.r.Read(p)
	j := 0
	for _, c := range p[:n] {
		if c != '\r' && c != '\n' {
			p[j] = c
			j++
		}
	}
	return j, err
}
