// Package tabulartest builds workbooks for tests part by part, hostile
// ones included: excelize writes only well-formed workbooks.
package tabulartest

import (
	"archive/zip"
	"bytes"
	"fmt"
	"io"
	"strings"
	"testing"
)

// Book is a workbook written part by part with archive/zip, as a
// spreadsheet program would not: excelize writes only well-formed
// workbooks, and these are hostile ones.
type Book struct {
	// Sheet is the first sheet's rows (the XML inside sheetData).
	Sheet string
	// Shared are the shared strings, XML-escaped; nil for none.
	Shared []string
	// Spaces is how many MiB of spaces come before the rows inside
	// sheetData.
	Spaces int
	// Split puts an empty element after each MiB of spaces, so that no
	// run of them is longer than a MiB.
	Split bool
	// Styles is the styles part; "" for none.
	Styles string
	// Parts are more parts, by name.
	Parts map[string]string
}

// Bytes returns the workbook as a file.
func (b Book) Bytes(t testing.TB) []byte {
	t.Helper()
	var out bytes.Buffer
	z := zip.NewWriter(&out)
	put := func(name, text string) {
		w, err := z.Create(name)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.WriteString(w, text); err != nil {
			t.Fatal(err)
		}
	}
	const xmlDecl = `<?xml version="1.0" encoding="UTF-8" standalone="yes"?>`
	types := xmlDecl + `<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"><Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/><Default Extension="xml" ContentType="application/xml"/><Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/><Override PartName="/xl/worksheets/sheet1.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/>`
	rels := `<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet" Target="worksheets/sheet1.xml"/>`
	if b.Shared != nil {
		types += `<Override PartName="/xl/sharedStrings.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sharedStrings+xml"/>`
		rels += `<Relationship Id="rId2" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/sharedStrings" Target="sharedStrings.xml"/>`
	}
	if b.Styles != "" {
		types += `<Override PartName="/xl/styles.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.styles+xml"/>`
		rels += `<Relationship Id="rId3" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/styles" Target="styles.xml"/>`
		put("xl/styles.xml", b.Styles)
	}
	put("[Content_Types].xml", types+`</Types>`)
	put("_rels/.rels", xmlDecl+`<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="xl/workbook.xml"/></Relationships>`)
	put("xl/workbook.xml", xmlDecl+`<workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships"><sheets><sheet name="Sheet1" sheetId="1" r:id="rId1"/></sheets></workbook>`)
	put("xl/_rels/workbook.xml.rels", xmlDecl+`<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">`+rels+`</Relationships>`)
	if b.Shared != nil {
		var s strings.Builder
		s.WriteString(xmlDecl + `<sst xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">`)
		for _, x := range b.Shared {
			s.WriteString("<si><t>" + x + "</t></si>")
		}
		put("xl/sharedStrings.xml", s.String()+"</sst>")
	}
	w, err := z.Create("xl/worksheets/sheet1.xml")
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(w, xmlDecl+`<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData>`)
	mib := bytes.Repeat([]byte{' '}, 1<<20)
	for range b.Spaces {
		w.Write(mib)
		if b.Split {
			io.WriteString(w, "<x/>")
		}
	}
	io.WriteString(w, b.Sheet+`</sheetData></worksheet>`)
	for name, text := range b.Parts {
		put(name, text)
	}
	if err := z.Close(); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

// Inline is a cell holding text in the sheet.
func Inline(ref, text string) string {
	return `<c r="` + ref + `" t="inlineStr"><is><t>` + text + `</t></is></c>`
}

// Shared is a cell holding shared string i.
func Shared(ref string, i int) string { return fmt.Sprintf(`<c r="%s" t="s"><v>%d</v></c>`, ref, i) }

// Row is row n of the sheet, its cells given.
func Row(n int, cells ...string) string {
	return fmt.Sprintf(`<row r="%d">%s</row>`, n, strings.Join(cells, ""))
}
