package campaign

// CheckTags reports the first tag in src that is not one of allowed, or
// an unclosed tag, as an invalid-input error naming field with the tag's
// position; nil when every tag is allowed. Other email written with tags
// (workflow rules) is checked with it, so that a tag means the same
// everywhere.
func CheckTags(field, src string, allowed []string) error { return checkTags(field, src, allowed) }

// NormalizeTags writes every tag in src as {{name}}, without the spaces a
// writer may put inside the braces.
func NormalizeTags(src string) string { return normalizeTags(src) }
