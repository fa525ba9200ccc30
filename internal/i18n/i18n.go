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
)

// Languages are the supported languages, the first the fallback.
var Languages = []string{"en", "sv", "nl"}

//go:embed catalog/*.json
var files embed.FS

var catalogs = map[string]map[string]string{}

func init() {
	for _, lang := range Languages {
		b, err := files.ReadFile("catalog/" + lang + ".json")
		if err != nil {
			panic(err)
		}
		m := map[string]string{}
		if err := json.Unmarshal(b, &m); err != nil {
			panic(fmt.Sprintf("i18n: catalog %s: %v", lang, err))
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
