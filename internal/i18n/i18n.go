// Package i18n holds the message catalogs for what contacts read (emails
// and public pages) in English, Swedish and Dutch, and picks a language from
// a request or a contact's preference.
package i18n

import (
	"embed"
	"encoding/json"
	"fmt"
	"strings"

	"golang.org/x/text/language"

	"github.com/consentry/consentry/internal/errs"
)

// Languages are the supported languages, the first the fallback.
var Languages = []string{"en", "sv", "nl"}

//go:embed catalog/*.json
var files embed.FS

var catalogs = map[string]map[string]string{}

// init loads catalog/<lang>.json and every catalog/<area>.<lang>.json, so
// that each part of the product keeps its messages in its own file. A key
// defined twice is a programming error.
func init() {
	entries, err := files.ReadDir("catalog")
	if err != nil {
		panic(err)
	}
	for _, lang := range Languages {
		m := map[string]string{}
		for _, e := range entries {
			name := e.Name()
			if name != lang+".json" && !strings.HasSuffix(name, "."+lang+".json") {
				continue
			}
			b, err := files.ReadFile("catalog/" + name)
			if err != nil {
				panic(err)
			}
			part := map[string]string{}
			if err := json.Unmarshal(b, &part); err != nil {
				panic(fmt.Sprintf("i18n: catalog %s: %v", name, err))
			}
			for k, v := range part {
				if _, dup := m[k]; dup {
					panic(fmt.Sprintf("i18n: %s defined twice in %s", k, lang))
				}
				m[k] = v
			}
		}
		catalogs[lang] = m
	}
}

// Keys returns every key of a language's catalog, for tests.
func Keys(lang string) map[string]string { return catalogs[lang] }

// T returns the message for key in lang (English if lang is not supported),
// formatted with args. A missing key shows as the key itself, which the
// catalog test keeps from happening.
func T(lang, key string, args ...any) string {
	m, ok := catalogs[lang]
	if !ok {
		m = catalogs["en"]
	}
	s, ok := m[key]
	if !ok {
		s = key
	}
	if len(args) > 0 {
		return fmt.Sprintf(s, args...)
	}
	return s
}

var matcher = language.NewMatcher([]language.Tag{language.English, language.Swedish, language.Dutch})

// Match picks the supported language for an explicit choice (a ?lang=
// parameter or a contact's language) or, without one, an Accept-Language
// header. It uses the matcher's index, not the tag it returns, which may
// carry extensions ("sv-u-rg-fizzzz").
func Match(choice, acceptLanguage string) string {
	if choice != "" {
		if t, err := language.Parse(choice); err == nil {
			if _, i, conf := matcher.Match(t); conf != language.No {
				return Languages[i]
			}
		}
	}
	tags, _, err := language.ParseAcceptLanguage(acceptLanguage)
	if err != nil || len(tags) == 0 {
		return Languages[0]
	}
	_, i, _ := matcher.Match(tags...)
	return Languages[i]
}

// Supported reports whether lang is one of Languages.
func Supported(lang string) bool {
	for _, l := range Languages {
		if strings.EqualFold(l, lang) {
			return true
		}
	}
	return false
}

// maxTag bounds a language tag read from input: RFC 5646 (4.4.1) asks
// that storage for a tag hold at least 35 characters, which every tag of
// a language, script, region and variant fits in.
const maxTag = 35

// ParseTag returns the canonical form of the language tag v (BCP 47, as
// golang.org/x/text/language parses it: "pt-br" gives "pt-BR", "EN" "en",
// "iw" "he"), so that a language read from input is stored in one form and
// compared as such; an empty (or blank) v gives "". A v that is not a
// well-formed tag ("english", "en-"), names a language no registry knows
// ("xx"), or is longer than 35 characters is an invalid-input error on
// field.
func ParseTag(field, v string) (string, error) {
	v = strings.TrimSpace(v)
	if v == "" {
		return "", nil
	}
	tag, err := language.Parse(v)
	if err != nil || len(v) > maxTag {
		return "", errs.Invalid(field, "must be a language tag (BCP 47) such as en, sv or pt-BR, of at most %d characters", maxTag)
	}
	return tag.String(), nil
}
