package tabular

import (
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/xuri/excelize/v2"
)

// xlsxSource reads the first sheet of a workbook with excelize's
// streaming row iterator.
type xlsxSource struct {
	f        *excelize.File
	rows     *excelize.Rows // the cells as shown
	raw      *excelize.Rows // the same rows' stored values (exactValue)
	date1904 bool
	row      int
	maxLine  int
	err      error
}

// openXLSX copies the workbook to a temporary file, which excelize needs
// to read a zip, and opens its first sheet. The copy is removed as soon as
// excelize has unpacked it: the parts it reads later are in memory or in
// its own temporary files, which Close removes.
func openXLSX(in io.Reader, opts Options) (*xlsxSource, error) {
	spool, err := os.CreateTemp(opts.TempDir, "tabular-*.xlsx")
	if err != nil {
		return nil, fmt.Errorf("tabular: copy the workbook: %w", err)
	}
	defer os.Remove(spool.Name())
	_, err = io.Copy(spool, in)
	if cerr := spool.Close(); err == nil {
		err = cerr
	}
	switch {
	case errors.Is(err, errTooLarge):
		return nil, tooLarge(opts.MaxBytes)
	case err != nil:
		return nil, fmt.Errorf("tabular: copy the workbook: %w", err)
	}
	if err := checkWorkbook(spool.Name(), opts); err != nil {
		return nil, err
	}
	s := &xlsxSource{maxLine: opts.MaxLineBytes}
	err = recovered(func() error {
		var err error
		s.f, err = excelize.OpenFile(spool.Name(), excelize.Options{
			UnzipSizeLimit:    opts.MaxBytes,
			UnzipXMLSizeLimit: min(opts.MaxBytes, unpackedInMemory),
			TmpDir:            opts.TempDir,
		})
		if err != nil {
			return unreadable(err)
		}
		sheets := s.f.GetSheetList()
		if len(sheets) == 0 {
			return notWorkbook()
		}
		if err := markDates(s.f); err != nil {
			return unreadable(err)
		}
		if p, err := s.f.GetWorkbookProps(); err == nil && p.Date1904 != nil {
			s.date1904 = *p.Date1904
		}
		s.rows, err = s.f.Rows(sheets[0])
		if err != nil {
			return unreadable(err)
		}
		s.raw, err = s.f.Rows(sheets[0])
		if err != nil {
			return unreadable(err)
		}
		return nil
	})
	if err != nil {
		s.close()
		return nil, err
	}
	return s, nil
}

// unreadable reports a workbook that excelize or archive/zip cannot read.
// Their errors name temporary files and parts of the zip, nothing the
// person importing can act on, so the message leaves them out.
func unreadable(error) error {
	return fileError(CodeFormat, "the file begins as an Excel workbook (.xlsx) does but cannot be read as one: it is damaged, or another kind of zip archive; save it again as an Excel workbook (.xlsx) or as CSV UTF-8")
}

func notWorkbook() error {
	return fileError(CodeFormat, "the file is a zip archive but not an Excel workbook; save it as an Excel workbook (.xlsx) or as CSV UTF-8")
}

// recovered runs fn and returns a panic in it as an error: a workbook is
// untrusted input to a large parser.
func recovered(fn func() error) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = unreadable(fmt.Errorf("%v", p))
		}
	}()
	return fn()
}

// read returns the next row with text. excelize numbers rows by their
// place in the sheet: each Next moves one row on, a missing (empty) row
// included.
func (s *xlsxSource) read() ([]string, int, error) {
	if s.err != nil {
		return nil, 0, s.err
	}
	for {
		var cells []string
		more := false
		err := recovered(func() error {
			var err error
			if more = s.rows.Next(); more {
				cells, err = s.rows.Columns()
			} else {
				err = s.rows.Error()
			}
			if err != nil || !more || !s.raw.Next() {
				return err
			}
			raw, err := s.raw.Columns(excelize.Options{RawCellValue: true})
			for i := range min(len(cells), len(raw)) {
				cells[i] = exactValue(cells[i], raw[i], s.date1904)
			}
			return err
		})
		if more {
			s.row++
		}
		if err != nil {
			row := s.row
			if !more {
				row++
			}
			s.err = &RowError{Row: row, Fatal: true, Err: err, Reason: "the workbook cannot be read from here on: " + err.Error()}
			return nil, row, s.err
		}
		if !more {
			return nil, 0, io.EOF
		}
		// The check before excelize read the workbook bounds a row's
		// text; this is the exact count, after number formats.
		size := len(cells) - 1
		for _, c := range cells {
			size += len(c)
		}
		if size > s.maxLine {
			s.err = &RowError{Row: s.row, Fatal: true, Err: errLineTooLong, Reason: rowTooLong(s.maxLine)}
			return nil, s.row, s.err
		}
		if !trimBlank(cells) {
			return cells, s.row, nil
		}
	}
}

func (s *xlsxSource) close() error {
	if s.rows != nil {
		// Its error is the iterator's, already reported, or the closing of
		// a file only read.
		_ = s.rows.Close()
	}
	if s.raw != nil {
		_ = s.raw.Close()
	}
	if s.f != nil {
		return s.f.Close()
	}
	return nil
}
