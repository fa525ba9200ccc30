// Package app puts Consentry together from its configuration: the database,
// the domain services and the HTTP handler. The command and the end-to-end
// tests both start the service through it.
package app

import (
	"context"
	"log/slog"
	"net/http"
	"runtime/debug"

	"github.com/consentry/consentry/internal/api"
	"github.com/consentry/consentry/internal/auth"
	"github.com/consentry/consentry/internal/config"
	"github.com/consentry/consentry/internal/consent"
	"github.com/consentry/consentry/internal/contact"
	"github.com/consentry/consentry/internal/store"
)

// App is a running Consentry: its database and services.
type App struct {
	Config   *config.Config
	Log      *slog.Logger
	DB       *store.DB
	Consent  *consent.Service
	Contacts *contact.Service
	Tokens   *auth.Tokens
	API      *api.Server
}

// Version is the module version the binary was built from, or "dev".
func Version() string {
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "dev"
}

// Open connects to the configured database, applies migrations and builds
// the services.
func Open(ctx context.Context, cfg *config.Config, log *slog.Logger) (*App, error) {
	db, err := store.Open(ctx, cfg.DatabaseURL, store.Options{})
	if err != nil {
		return nil, err
	}
	n, err := db.Migrate(ctx)
	if err != nil {
		db.Close()
		return nil, err
	}
	if n > 0 {
		log.Info("database migrated", "migrations", n)
	}
	return New(cfg, log, db), nil
}

// New builds the services on an open, migrated database.
func New(cfg *config.Config, log *slog.Logger, db *store.DB) *App {
	a := &App{Config: cfg, Log: log, DB: db}
	a.Consent = consent.NewService(db)
	a.Contacts = contact.NewService(db, a.Consent)
	a.Tokens = auth.NewTokens(db)
	a.API = api.New(&api.Server{DB: db, Consent: a.Consent, Contacts: a.Contacts, Tokens: a.Tokens, Log: log, Version: Version()})
	return a
}

// Handler serves everything the service answers over HTTP.
func (a *App) Handler() http.Handler { return a.API }

// Close closes the database.
func (a *App) Close() error { return a.DB.Close() }
