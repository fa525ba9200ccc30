// Package docs holds the user guides. They are embedded so that the
// program serves them itself: the admin UI shows each one at
// /admin/docs/NAME, and links to them rather than to a site outside the
// installation.
package docs

import "embed"

// Guides are the guides in Markdown, one file per guide (conditions.md,
// campaigns.md, ...).
//
//go:embed *.md
var Guides embed.FS
