package tabular

import (
	"bytes"
	"errors"
	"io"
	"os"
	"testing"

	"github.com/xuri/excelize/v2"

	"github.com/consentry/consentry/internal/errs"
)

// FuzzReader reads any bytes to the end: Open and Next never panic and
// always end, leave no temporary file, Open's errors are *errs.Error on "file" (the reader given
// cannot fail), Next's are *RowError, and a row has a cell per column.
func FuzzReader(f *testing.F) {
	for _, s := range []string{
		"email;name\na@example.com;Anna\n",
		"\xEF\xBB\xBFemail,name\r\n\"a,b\",\"c\"\"d\"\r\n",
		"\xFF\xFEe\x00;\x00n\x00\r\x00\n\x00a\x00;\x00b\x00",
		"\xFE\xFF\x00e\x00;\x00n",
		"e;n\n\xe5;\x80\n",
		"sep=,\na,b\n1,2,3\n\n\"x\ny\",z\n",
		"a\tb\rc\td\r",
		"a;\"b\nc;d\n",
		"a;b\nc\"d;e\n",
		"",
		"\x00\x01",
	} {
		f.Add([]byte(s))
	}
	book := excelize.NewFile()
	book.SetCellValue("Sheet1", "A1", "email")
	book.SetCellValue("Sheet1", "A2", "a@example.com")
	var b bytes.Buffer
	book.Write(&b)
	book.Close()
	f.Add(b.Bytes())

	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, data []byte) {
		defer func() {
			if left, _ := os.ReadDir(dir); len(left) > 0 {
				t.Fatalf("temporary files left: %v", left)
			}
		}()
		const maxBytes = 1 << 20
		r, err := Open(bytes.NewReader(data), Options{MaxLineBytes: 256, MaxBytes: maxBytes, TempDir: dir})
		if err != nil {
			if e := errs.As(err); e == nil || e.Field != "file" || e.Kind != errs.KindInvalid {
				t.Fatalf("Open error %v is not a file error", err)
			}
			return
		}
		defer r.Close()
		width := len(r.Header())
		for range maxBytes + 2 { // each row with text takes a byte, unpacked
			row, err := r.Next()
			if err == io.EOF {
				return
			}
			var re *RowError
			if err != nil && !errors.As(err, &re) {
				t.Fatalf("Next error %v is not a *RowError", err)
			}
			if err == nil && len(row.Cells) != width {
				t.Fatalf("row %d has %d cells; the header %d", row.Number, len(row.Cells), width)
			}
			if re != nil && re.Fatal {
				if _, again := r.Next(); again != err {
					t.Fatalf("after a fatal error Next = %v", again)
				}
				return
			}
		}
		t.Fatalf("more rows than MaxBytes")
	})
}
