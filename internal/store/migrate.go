package store

import (
	"bytes"
	"context"
	"embed"
	"fmt"
	"io/fs"
	"testing/fstest"
	"text/template"

	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"
)

// The migrations are written once and rendered for each database: the
// template fields below are the only places the two differ.
//
//go:embed migrations/*.sql
var migrations embed.FS

var dialectTerms = map[Dialect]struct{ JSON, Now string }{
	SQLite:   {JSON: "TEXT", Now: "CAST(strftime('%s','now') AS INTEGER) * 1000000"},
	Postgres: {JSON: "JSONB", Now: "(extract(epoch FROM now()) * 1000000)::bigint"},
}

// Migrations returns the migration files rendered for d.
func Migrations(d Dialect) (fs.FS, error) {
	files, err := fs.Glob(migrations, "migrations/*.sql")
	if err != nil {
		return nil, err
	}
	out := fstest.MapFS{}
	for _, name := range files {
		src, err := migrations.ReadFile(name)
		if err != nil {
			return nil, err
		}
		tmpl, err := template.New(name).Option("missingkey=error").Parse(string(src))
		if err != nil {
			return nil, fmt.Errorf("store: migration %s: %w", name, err)
		}
		var buf bytes.Buffer
		if err := tmpl.Execute(&buf, dialectTerms[d]); err != nil {
			return nil, fmt.Errorf("store: migration %s: %w", name, err)
		}
		out[name[len("migrations/"):]] = &fstest.MapFile{Data: buf.Bytes(), Mode: 0o444}
	}
	return out, nil
}

// Migrate applies every migration not yet applied and returns how many ran.
func (db *DB) Migrate(ctx context.Context) (int, error) {
	gd := goose.DialectSQLite3
	if db.Dialect == Postgres {
		gd = goose.DialectPostgres
	}
	fsys, err := Migrations(db.Dialect)
	if err != nil {
		return 0, err
	}
	var opts []goose.ProviderOption
	if db.Dialect == Postgres {
		// Instances starting together take turns: the first migrates, the
		// others then find nothing to do.
		locker, err := lock.NewPostgresSessionLocker()
		if err != nil {
			return 0, fmt.Errorf("store: migration lock: %w", err)
		}
		opts = append(opts, goose.WithSessionLocker(locker))
	}
	p, err := goose.NewProvider(gd, db.write, fsys, opts...)
	if err != nil {
		return 0, fmt.Errorf("store: migrations: %w", err)
	}
	res, err := p.Up(ctx)
	if err != nil {
		return 0, fmt.Errorf("store: migrate: %w", err)
	}
	return len(res), nil
}
