package store

import (
	"context"
	"embed"
	"fmt"
	"io/fs"

	"github.com/pressly/goose/v3"
)

// The migrations come in one folder per database with the same versions in
// each; a test keeps the two lists equal.
//
//go:embed migrations
var migrations embed.FS

// Migrations returns the embedded migration files for d.
func Migrations(d Dialect) fs.FS {
	sub, err := fs.Sub(migrations, "migrations/"+string(d))
	if err != nil {
		panic(err) // the folders are embedded at build time
	}
	return sub
}

// Migrate applies every migration not yet applied and returns how many ran.
func (db *DB) Migrate(ctx context.Context) (int, error) {
	gd := goose.DialectSQLite3
	if db.Dialect == Postgres {
		gd = goose.DialectPostgres
	}
	p, err := goose.NewProvider(gd, db.write, Migrations(db.Dialect))
	if err != nil {
		return 0, fmt.Errorf("store: migrations: %w", err)
	}
	res, err := p.Up(ctx)
	if err != nil {
		return 0, fmt.Errorf("store: migrate: %w", err)
	}
	return len(res), nil
}
