// Package importstest holds the file and definition the import benchmarks
// (BenchmarkImport in internal/imports, BenchmarkImportFromOutside in
// cmd/consentry) import, so that their figures measure the same work.
package importstest

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/consentry/consentry/internal/consent"
	"github.com/consentry/consentry/internal/contact"
	"github.com/consentry/consentry/internal/contactstate"
	"github.com/consentry/consentry/internal/imports"
)

// Source, Purpose and List are what Definition names beyond the built-in
// E-marketing purpose and the core fields; a benchmark creates them, and
// the text field Field, before it imports.
const (
	Source  = "Trade fair 2026"
	Purpose = "Share with partners"
	List    = "Newsletter"
	Field   = "company"
)

// File streams a CSV of n rows of 10 columns: an address, names, phone,
// country, region, company, two consent answers and a date. It is
// generated as it is read, never held; generation stops when the reader
// is closed.
func File(n int) io.ReadCloser {
	pr, pw := io.Pipe()
	go func() {
		w := bufio.NewWriterSize(pw, 1<<16)
		fmt.Fprintln(w, "email,first_name,last_name,phone,country,region,company,newsletter,partners,signed_up")
		for i := range n {
			yes := [2]string{"yes", "no"}
			if _, err := fmt.Fprintf(w, "person%07d@example.com,Anna%d,Lind%d,+46 70 %07d,SE,Region %d,Company %d,%s,%s,2026-%02d-%02d\n",
				i, i%1000, i%997, i, i%21, i%5000, yes[i%2], yes[(i/2)%2], 1+i%11, 1+i%28); err != nil {
				pw.CloseWithError(err)
				return
			}
		}
		pw.CloseWithError(w.Flush())
	}()
	return pr
}

// Definition maps File's columns: seven fields, consents for two
// purposes dated by a column, and the newsletter list.
func Definition() imports.Definition {
	return imports.Definition{Source: Source, Duplicates: contact.DuplicateSkip,
		Columns: []imports.Column{{Column: "email", Field: "email"}, {Column: "first_name", Field: "first_name"},
			{Column: "last_name", Field: "last_name"}, {Column: "phone", Field: "phone"}, {Column: "country", Field: "country"},
			{Column: "region", Field: "region"}, {Column: "company", Field: Field}},
		OptIn: &imports.OptIn{Value: contactstate.SingleOptInUser},
		Consents: []imports.Consent{
			{Purpose: "E-marketing", Column: "newsletter", LegalBasis: consent.BasisConsent, CollectedAtColumn: "signed_up", TextVersion: 1},
			{Purpose: Purpose, Column: "partners", LegalBasis: consent.BasisConsent, CollectedAtColumn: "signed_up",
				Notice: "Sign-up form of the 2026 fair"},
		},
		Lists: []imports.List{{List: List, Column: "newsletter"}}}
}

// PeakRSS is the peak resident set (VmHWM) in MB of the process pid, a
// process id or "self", from /proc; 0 where there is none.
func PeakRSS(pid string) float64 {
	data, err := os.ReadFile("/proc/" + pid + "/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			var kb float64
			fmt.Sscan(strings.TrimSuffix(strings.TrimSpace(rest), "kB"), &kb)
			return kb / 1024
		}
	}
	return 0
}
