package tabular

import (
	"errors"
	"io"
)

var (
	errTooLarge    = errors.New("tabular: the file is larger than the limit")
	errLineTooLong = errors.New("tabular: a line is longer than the limit")
)

// sizeLimit reads at most left bytes from r and then fails with
// errTooLarge if more follow. Its first error, io.EOF included, is
// returned from then on: a bufio.Reader above it forgets an error once
// reported, and the next read must not go past it.
type sizeLimit struct {
	r    io.Reader
	left int64
	err  error
}

func (l *sizeLimit) Read(p []byte) (int, error) {
	if l.err != nil {
		return 0, l.err
	}
	if int64(len(p)) > l.left+1 {
		p = p[:l.left+1] // one byte more than allowed tells "more follow"
	}
	n, err := l.r.Read(p)
	if int64(n) > l.left {
		n, l.err = int(l.left), errTooLarge
		l.left = 0
		return n, l.err
	}
	l.left -= int64(n)
	if err != nil {
		l.err = err
	}
	return n, err
}

// recordLimit fails with errLineTooLong once more than max bytes have been
// read since the last reset, which the reader does before each record:
// encoding/csv would otherwise buffer a line of any length. Its errors are
// sticky as sizeLimit's are.
type recordLimit struct {
	r      io.Reader
	n, max int64
	err    error
}

func (l *recordLimit) reset() { l.n = 0 }

func (l *recordLimit) Read(p []byte) (int, error) {
	if l.err != nil {
		return 0, l.err
	}
	n, err := l.r.Read(p)
	l.n += int64(n)
	if l.n > l.max {
		l.err = errLineTooLong
		return n, l.err
	}
	if err != nil {
		l.err = err
	}
	return n, err
}

// crToLF turns every CR into LF, for text whose lines end in CR alone
// (Excel's "CSV (Macintosh)"); encoding/csv knows LF and CRLF only.
type crToLF struct{ r io.Reader }

func (c crToLF) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	for i, b := range p[:n] {
		if b == '\r' {
			p[i] = '\n'
		}
	}
	return n, err
}
