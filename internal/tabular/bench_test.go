package tabular

import (
	"bytes"
	"io"
	"strconv"
	"testing"

	"github.com/xuri/excelize/v2"
)

// generated reads as a header and rows CSV rows of 10 columns, made on the
// fly in chunks.
type generated struct {
	rows, done int
	buf        []byte
	pos        int
	bytes      int64
}

func (g *generated) Read(p []byte) (int, error) {
	if g.pos == len(g.buf) {
		if g.done > g.rows {
			return 0, io.EOF
		}
		g.buf, g.pos = g.buf[:0], 0
		if g.done == 0 {
			g.buf = append(g.buf, "email;first_name;last_name;phone;city;country;language;source;consent;note\r\n"...)
			g.done++
		}
		for ; g.done <= g.rows && len(g.buf) < 60<<10; g.done++ {
			n := g.done
			b := append(g.buf, "person"...)
			b = strconv.AppendInt(b, int64(n), 10)
			b = append(b, "@example.se;Åsa;Öberg;+4670"...)
			b = strconv.AppendInt(b, int64(1000000+n), 10)
			b = append(b, ";Malmö;SE;sv;import;yes;\"Kund sedan 2019; gillar kaffe\"\r\n"...)
			g.buf = b
		}
	}
	n := copy(p, g.buf[g.pos:])
	g.pos += n
	g.bytes += int64(n)
	return n, nil
}

// BenchmarkReadCSV reads 1,000,000 rows of 10 columns (UTF-8, ";", a
// quoted cell in each row) per iteration.
func BenchmarkReadCSV(b *testing.B) {
	const rows = 1_000_000
	var total int64
	b.ReportAllocs()
	for b.Loop() {
		src := &generated{rows: rows}
		readRows(b, src, Options{}, rows)
		total += src.bytes
	}
	s := b.Elapsed().Seconds()
	b.ReportMetric(float64(rows*b.N)/s, "rows/s")
	b.ReportMetric(float64(total)/s/1e6, "MB/s")
}

// BenchmarkReadXLSX reads a workbook of 100,000 rows of 10 columns per
// iteration, unpacking included; the workbook is made before the timing.
func BenchmarkReadXLSX(b *testing.B) {
	const rows = 100_000
	f := excelize.NewFile()
	sw, err := f.NewStreamWriter("Sheet1")
	if err != nil {
		b.Fatal(err)
	}
	row := []any{"email", "first_name", "last_name", "phone", "city", "country", "language", "source", "consent", "note"}
	if err := sw.SetRow("A1", row); err != nil {
		b.Fatal(err)
	}
	for i := 2; i <= rows+1; i++ {
		row = []any{"person" + strconv.Itoa(i) + "@example.se", "Åsa", "Öberg", 46701000000 + i, "Malmö", "SE", "sv", "import", true, "Kund sedan 2019"}
		cell, _ := excelize.CoordinatesToCellName(1, i)
		if err := sw.SetRow(cell, row); err != nil {
			b.Fatal(err)
		}
	}
	if err := sw.Flush(); err != nil {
		b.Fatal(err)
	}
	var book bytes.Buffer
	if err := f.Write(&book); err != nil {
		b.Fatal(err)
	}
	f.Close()
	dir := b.TempDir()

	b.ReportAllocs()
	for b.Loop() {
		readRows(b, bytes.NewReader(book.Bytes()), Options{TempDir: dir}, rows)
	}
	s := b.Elapsed().Seconds()
	b.ReportMetric(float64(rows*b.N)/s, "rows/s")
	b.ReportMetric(float64(book.Len()*b.N)/s/1e6, "MB/s")
}

// readRows reads in to the end and fails unless it has rows rows.
func readRows(b *testing.B, in io.Reader, opts Options, rows int) {
	r, err := Open(in, opts)
	if err != nil {
		b.Fatal(err)
	}
	defer r.Close()
	n := 0
	for {
		_, err := r.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			b.Fatal(err)
		}
		n++
	}
	if n != rows {
		b.Fatalf("read %d rows", n)
	}
}
