// Package tabular reads the rows of an imported spreadsheet, a CSV file or an
// Excel workbook, one row at a time, so that a file of a million contacts is
// read in a few megabytes of memory. It knows nothing of contacts: it turns
// bytes into a header and rows of trimmed text, and says precisely which row
// is wrong and why, in words a spreadsheet user can act on.
//
// # Formats
//
// The format is told from the content, never from a file name:
//
//   - An Excel workbook (.xlsx, a zip archive starting with "PK\x03\x04"):
//     the upload is copied to a temporary file, unpacked by excelize, and the
//     first sheet (in tab order) is read through excelize's streaming row
//     iterator. Cells read as their formatted text, as Excel shows them, a
//     number as the number, with two exceptions. A date cell (one whose
//     number format shows a date or a time) reads as the date it holds,
//     from its serial number, whatever the format: 2026-03-04, or RFC 3339
//     in UTC (2026-03-04T09:30:00Z) when it has a time of day. Its shown
//     text could be month-first (mm/dd/yyyy), follow the region of the
//     computer showing it (the built-in short date), or name the month
//     (d-mmm-yy): 03-07-84 could be March or July, and the date is a
//     consent's collection date. A number of more than 15 digits, which
//     Excel shows with an exponent, reads as its digits. A formula cell
//     reads as the value Excel saved with it (its cached value); formulas
//     are never evaluated, so a workbook cannot make the import compute
//     anything, and a formula saved without a value reads as empty.
//   - Text (CSV, or tab-separated text): everything else that is text in one
//     of the encodings below.
//
// Old Excel workbooks (.xls) and password-protected workbooks, which are OLE
// compound files, are refused with a message asking for .xlsx or CSV; so
// are other zip archives (OpenDocument, a zip of CSV files).
//
// # Encodings of text files
//
// What spreadsheet programs write when asked for CSV or text: UTF-8 with or
// without a byte order mark ("CSV UTF-8"), UTF-16 little or big endian with a
// byte order mark ("Unicode text"), and Windows-1252 ("CSV" on Windows in
// Western Europe, Sweden and the Netherlands included; Latin-1 files read
// the same). The encoding is decided from the first 64 KiB:
//
//   - a byte order mark decides it (UTF-32's is refused);
//   - a NUL byte without a byte order mark (UTF-16 without a BOM, or a binary
//     file) is refused;
//   - valid UTF-8 is UTF-8;
//   - anything else is Windows-1252, unless it holds a byte Windows-1252
//     leaves undefined (0x81, 0x8D, 0x8F, 0x90, 0x9D), which is refused.
//
// A refusal names the row and the byte at fault: the first NUL byte, the
// first undefined byte (and the first byte that is not UTF-8), its row
// counted as Next counts rows. Reader.Encoding reports one of Encodings,
// UTF-8 with and without a byte order mark apart.
//
// When the first 64 KiB are plain ASCII, which both UTF-8 and Windows-1252
// read the same, the first row with other bytes decides: valid UTF-8 makes
// the file UTF-8, anything else Windows-1252. A row that is not valid text
// in the encoding once decided (UTF-8 turning into something else half way,
// a NUL byte, an undefined Windows-1252 byte) ends the reading with an error
// on that row: guessing again would import misspelt names. Other encodings
// (Mac Roman, ISO-8859-2, Shift JIS...) cannot be told apart from these by
// their bytes alone, so they are refused rather than imported garbled; the
// error names the supported encodings. In UTF-16 an unpaired surrogate
// reads as U+FFFD.
//
// # Delimiters
//
// A text file's delimiter is ";", "," or tab, whichever occurs most often
// outside quotes in the header line (the first line with any text). A tie,
// no delimiter at all included, goes to ";" before "," before tab: ";" is
// what Excel writes in the locales with a decimal comma (Swedish, Dutch,
// German), and a lone header name such as "Name, first" is likelier than one
// with a semicolon. A first line "sep=X", which Excel writes and reads, sets
// the delimiter to X and is not a row. Options.Delimiter overrides both.
// Quoting follows RFC 4180 (encoding/csv): a cell holding the delimiter, a
// quote or a line break is enclosed in quotes, and a quote inside is
// doubled. Lines end in CRLF or LF, or all in CR alone (old Mac files:
// the first 64 KiB have no LF).
//
// # Rows
//
// The header is the first row with any text; its names are trimmed, must be
// non-empty and unique (ignoring case), and empty names after the last named
// column are dropped. Every row read has exactly as many cells as the header
// has names, each trimmed of surrounding white space. Rows are numbered as a
// spreadsheet program shows them: from 1, blank rows counted, a cell with
// line breaks still one row (so a CSV row's number is not its line number
// once a cell holds a line break). Blank rows (no cell with text) are
// skipped.
//
// A row with more or fewer cells than the header (empty cells after the
// header's last column aside, and for a workbook empty cells at the end,
// which the format does not store) or with a quote in the wrong place is a
// *RowError for that row, and reading goes on with the next one. A problem
// that leaves the rest of the file in doubt (a line longer than
// Options.MaxLineBytes, text that is not in the file's encoding, a file
// larger than Options.MaxBytes, a read error) is a *RowError with Fatal
// set, and every later Next returns it again.
//
// # Limits
//
// Memory is bounded by Options.MaxLineBytes (default 1 MiB) per line of
// text: a file with a 50 MB line fails on that line after reading a little
// more than the limit. Options.MaxBytes (default 2 GiB) bounds the bytes
// read from the file and, for a workbook, the total size of its unpacked
// parts, which guards against zip bombs.
//
// A workbook's row has the same limit as a line of text: its cells, shared
// strings expanded, at most Options.MaxLineBytes, and at most MaxColumns
// cells; a longer row ends the reading as a text file's does. Because
// excelize parses the XML with encoding/xml, which holds a whole token in
// memory, and puts a row together before returning it, the workbook's
// worksheets and shared strings are first read as a stream and the
// workbook refused at Open (the field "file", the row when it is one row)
// when it holds a run of text or markup without a tag longer than 8 times
// Options.MaxLineBytes (64 MiB of spaces compress to 64 KB), more than 16
// MiB of text outside a sheet's rows, a row or a shared string whose text
// is longer than Options.MaxLineBytes, more than 2,000,000 shared strings,
// a DOCTYPE, more than 32 MiB of parts held in memory, or more than
// 250,000 elements in the parts excelize parses whole (styles, the list
// of sheets; 1,000,000 in the list of formulas to compute). Worksheets and
// shared strings above 1 MiB are unpacked to temporary files in
// Options.TempDir rather than memory, its other parts (styles, the list of
// sheets) to memory. Reading a million rows of ten columns takes about 15
// MB of memory from CSV and 40 MB from a workbook of inline text; each
// shared string adds about 25 bytes (excelize's index of them), 50 MB for
// two million.
//
// # Errors
//
// Open returns an *errs.Error of kind errs.KindInvalid on the field "file"
// with one of the Code... codes when the file itself cannot be read as a
// spreadsheet (empty, unsupported encoding or format, too large, a bad
// header), with its Row (and, for an encoding decided from the first 64
// KiB, its Byte) where the problem is one row's, and other errors
// (wrapped) for failures of the reader given or of the temporary files.
// Next returns io.EOF at the end and otherwise only *RowError; FileError
// turns a fatal one into the refusal of the file as Open's.
package tabular
