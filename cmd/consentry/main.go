// Command consentry runs the Consentry consent and privacy service and its
// maintenance tasks. Run it without arguments for the list of commands.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/consentry/consentry/internal/app"
	"github.com/consentry/consentry/internal/audit"
	"github.com/consentry/consentry/internal/config"
	"github.com/consentry/consentry/internal/ledger"
	"github.com/consentry/consentry/internal/ledgertree"
	"github.com/consentry/consentry/internal/receipts"
	"github.com/consentry/consentry/internal/vault"
)

const usage = `consentry: GDPR consent and privacy service

Usage:
  consentry serve                 start the HTTP server (migrates first)
  consentry migrate               apply database migrations and exit
  consentry ledger verify         check the consent ledger and its tree; exit status 1 if broken
  consentry ledger checkpoint     sign a checkpoint of the ledger now and print it
  consentry ledger rotate-key     make a new key for receipts and checkpoints; print its verifier key
  consentry ledger verify-receipt RECEIPT --checkpoint FILE --key PUBKEY
                                  check a downloaded consent receipt offline, with no database
  consentry token create --name NAME [--expires 720h]
                                  create an API token and print it once
  consentry token list            list API tokens (never their secrets)
  consentry token revoke ID       revoke an API token at once
  consentry keys create --file PATH
                                  make a keyset for encrypted fields; prints its master key once
  consentry keys rotate           add a keyset key and put every data key under it
  consentry keys retire           destroy the old keyset keys once nothing uses them
  consentry keys change-master-key
                                  encrypt the keyset file under a new master key; prints it once
  consentry backup [--force] FILE
                                  copy the SQLite database, while it is in use, to FILE and its keyset to FILE.keyset
  consentry restore FILE          restore a backup into an empty data directory
  consentry version               print the version

Configuration comes from environment variables; see README.md.
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

// run executes one command and returns the process exit status.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		fmt.Fprint(stdout, usage)
		return 0
	}
	if args[0] == "version" {
		fmt.Fprintln(stdout, "consentry", app.Version())
		return 0
	}
	if len(args) >= 2 && args[0] == "ledger" && args[1] == "verify-receipt" {
		return verifyReceipt(args[2:], stdout, stderr) // offline: no configuration, no database
	}
	cfg, err := config.FromEnv(os.Getenv)
	if err != nil {
		fmt.Fprintf(stderr, "consentry: configuration:\n%v\n", err)
		return 2
	}
	log := newLogger(cfg, stderr)
	for _, name := range config.Unknown(config.Environ()) {
		log.Warn("unknown setting ignored; check its spelling", "variable", name)
	}
	var cmdErr error
	switch args[0] {
	case "serve":
		cmdErr = serve(ctx, cfg, log)
	case "migrate":
		cmdErr = withApp(ctx, cfg, log, func(a *app.App) error { log.Info("database is up to date"); return nil })
	case "ledger":
		switch {
		case len(args) >= 2 && args[1] == "verify":
			return ledgerVerify(ctx, cfg, log, stdout, stderr)
		case len(args) >= 2 && args[1] == "checkpoint":
			return ledgerCheckpoint(ctx, cfg, log, stdout, stderr)
		case len(args) >= 2 && args[1] == "rotate-key":
			return ledgerRotateKey(ctx, cfg, log, stdout, stderr)
		}
		fmt.Fprint(stderr, "usage: consentry ledger verify | ledger checkpoint | ledger rotate-key | ledger verify-receipt RECEIPT --checkpoint FILE --key PUBKEY\n")
		return 2
	case "token":
		return token(ctx, cfg, log, args[1:], stdout, stderr)
	case "keys":
		return keys(ctx, cfg, log, args[1:], stdout, stderr)
	case "backup":
		return backupCmd(ctx, cfg, args[1:], stdout, stderr)
	case "restore":
		return restoreCmd(ctx, cfg, args[1:], stdout, stderr)
	default:
		fmt.Fprintf(stderr, "consentry: unknown command %q\n\n%s", args[0], usage)
		return 2
	}
	if cmdErr != nil {
		fmt.Fprintf(stderr, "consentry: %v\n", cmdErr)
		return 1
	}
	return 0
}

func newLogger(cfg *config.Config, w io.Writer) *slog.Logger {
	var level slog.Level
	level.UnmarshalText([]byte(cfg.LogLevel))
	opts := &slog.HandlerOptions{Level: level}
	if cfg.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

func withApp(ctx context.Context, cfg *config.Config, log *slog.Logger, fn func(*app.App) error) error {
	a, err := app.Open(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer a.Close()
	return fn(a)
}

func serve(ctx context.Context, cfg *config.Config, log *slog.Logger) error {
	return withApp(ctx, cfg, log, func(a *app.App) error {
		ln, err := net.Listen("tcp", cfg.HTTPAddr)
		if err != nil {
			return fmt.Errorf("listen on %s (CONSENTRY_HTTP_ADDR): %w", cfg.HTTPAddr, err)
		}
		srv := &http.Server{
			Handler:           a.Handler(),
			ReadHeaderTimeout: 10 * time.Second,
			ReadTimeout:       30 * time.Second,
			WriteTimeout:      60 * time.Second,
			IdleTimeout:       120 * time.Second,
			ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		}
		workers, stopWorkers := context.WithCancel(ctx)
		defer stopWorkers()
		a.Start(workers)
		if err := a.InboundSMTPError(); err != nil {
			return err
		}
		if cfg.SMTPURL == "" {
			log.Info("email goes to the dev mailbox, not to anyone's inbox; set CONSENTRY_SMTP_URL to send real email",
				"mailbox", cfg.BaseURL+"/dev/mailbox")
		} else {
			log.Info("email goes out over SMTP", "server", cfg.RedactedSMTP(), "connections", cfg.SMTPConnections)
		}
		log.Info("consentry is ready", "version", app.Version(), "addr", ln.Addr().String(), "admin", cfg.BaseURL+"/admin/", "base_url", cfg.BaseURL,
			"database", a.DB.Dialect, "location", cfg.RedactedDatabase())
		errc := make(chan error, 2)
		if cfg.MetricsAddr != "" {
			mln, err := net.Listen("tcp", cfg.MetricsAddr)
			if err != nil {
				return fmt.Errorf("listen on %s (CONSENTRY_METRICS_ADDR): %w", cfg.MetricsAddr, err)
			}
			msrv := &http.Server{Handler: a.MetricsHandler(), ReadHeaderTimeout: 10 * time.Second, WriteTimeout: 60 * time.Second,
				ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}
			defer msrv.Close()
			go func() { errc <- msrv.Serve(mln) }()
			log.Info("metrics, /healthz and /readyz served on a listener of their own", "addr", mln.Addr().String())
		}
		go func() { errc <- srv.Serve(ln) }()
		select {
		case err := <-errc:
			return err
		case <-ctx.Done():
		}
		log.Info("shutting down")
		stopWorkers()
		shutCtx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		if err := srv.Shutdown(shutCtx); err != nil && !errors.Is(err, http.ErrServerClosed) {
			return err
		}
		return nil
	})
}

func ledgerVerify(ctx context.Context, cfg *config.Config, log *slog.Logger, stdout, stderr io.Writer) int {
	status := 0
	err := withApp(ctx, cfg, log, func(a *app.App) error {
		rep, tree, err := a.LedgerTree.VerifyWithChain(ctx, a.Consent.VerifyLedger)
		if err != nil {
			return err
		}
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		ok := rep.OK
		rep.OK = rep.OK && tree.OK()
		enc.Encode(struct {
			*ledger.Report
			Tree *ledgertree.Report `json:"tree"`
		}{rep, tree})
		if !ok {
			fmt.Fprintf(stderr, "ledger verification FAILED at event %d: %s\n", rep.Problem.Seq, rep.Problem.Message)
			status = 1
		}
		if !tree.OK() {
			fmt.Fprintf(stderr, "ledger tree verification FAILED: %s\n", tree.Problem)
			status = 1
		}
		return nil
	})
	if err != nil {
		fmt.Fprintf(stderr, "consentry: %v\n", err)
		return 1
	}
	return status
}

// verifyReceipt checks a downloaded receipt with a checkpoint and the
// verifier keys alone (receipts.CheckOffline), and says what it proves.
func verifyReceipt(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("ledger verify-receipt", flag.ContinueOnError)
	fs.SetOutput(stderr)
	checkpoint := fs.String("checkpoint", "", "a signed checkpoint, as /ledger/checkpoint serves it (required)")
	keyFile := fs.String("key", "", "the verifier keys, as /ledger/key serves them (required)")
	files, ok := parseArgs(fs, args)
	if !ok {
		return 2
	}
	if len(files) != 1 || *checkpoint == "" || *keyFile == "" {
		fmt.Fprint(stderr, "usage: consentry ledger verify-receipt RECEIPT --checkpoint FILE --key PUBKEY\n")
		return 2
	}
	read := func(name string) []byte {
		b, err := os.ReadFile(name)
		if err != nil {
			fmt.Fprintf(stderr, "consentry: %v\n", err)
		}
		return b
	}
	doc, cp, keys := read(files[0]), read(*checkpoint), read(*keyFile)
	if doc == nil || cp == nil || keys == nil {
		return 1
	}
	c, err := receipts.CheckOffline(doc, cp, string(keys))
	if err != nil {
		fmt.Fprintf(stderr, "receipt verification FAILED: %v\n", err)
		return 1
	}
	r := c.Receipt
	purpose := ""
	if len(r.Services) > 0 {
		purpose = r.Services[0].Service
	}
	fmt.Fprintf(stdout, "receipt OK: consent record %s, %q %s on %s, signed by key %s;\n"+
		"its ledger event %d is in the tree of %d events the checkpoint signed by key %s names\n",
		r.RecordID, purpose, r.State, r.RecordedAt, c.KeyID, r.Ledger.Seq, c.TreeSize, c.Checkpoint)
	return 0
}

// parseArgs parses args with fs, flags and the other arguments in any
// order, and returns the other arguments; ok is false when a flag is
// wrong, which fs has reported.
func parseArgs(fs *flag.FlagSet, args []string) (rest []string, ok bool) {
	for len(args) > 0 {
		if err := fs.Parse(args); err != nil {
			return nil, false
		}
		if fs.NArg() == 0 {
			break
		}
		rest, args = append(rest, fs.Arg(0)), fs.Args()[1:]
	}
	return rest, true
}

// ledgerCheckpoint makes a checkpoint of the ledger as it is now (or
// finds the one already made at its size) and prints it.
func ledgerCheckpoint(ctx context.Context, cfg *config.Config, log *slog.Logger, stdout, stderr io.Writer) int {
	err := withApp(ctx, cfg, log, func(a *app.App) error {
		c, err := a.LedgerTree.MakeCheckpoint(ctx)
		if err != nil {
			return err
		}
		if c == nil {
			return fmt.Errorf("the ledger is empty: there is nothing to sign yet")
		}
		fmt.Fprint(stdout, c.Note)
		return nil
	})
	if err != nil {
		fmt.Fprintf(stderr, "consentry: %v\n", err)
		return 1
	}
	return 0
}

// ledgerRotateKey makes a new signing key for receipts and checkpoints and
// prints its verifier key. The old keys' private halves are deleted; their
// public halves stay published (/.well-known/jwks.json, and every
// checkpoint is still checked against them), so what they signed still
// verifies. Running instances take the new key within a minute.
func ledgerRotateKey(ctx context.Context, cfg *config.Config, log *slog.Logger, stdout, stderr io.Writer) int {
	err := withApp(ctx, cfg, log, func(a *app.App) error {
		k, err := a.Signing.Rotate(ctx)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "%s\n", k.VerifierKey())
		fmt.Fprint(stderr, "a new signing key signs receipts and checkpoints from now on; give its verifier key (above) to whoever checks them. "+
			"The old keys can no longer sign; what they signed still verifies with their public keys, which stay published.\n")
		return nil
	})
	if err != nil {
		fmt.Fprintf(stderr, "consentry: %v\n", err)
		return 1
	}
	return 0
}

func token(ctx context.Context, cfg *config.Config, log *slog.Logger, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, "usage: consentry token create --name NAME | token list | token revoke ID\n")
		return 2
	}
	var err error
	switch args[0] {
	case "create":
		fs := flag.NewFlagSet("token create", flag.ContinueOnError)
		fs.SetOutput(stderr)
		name := fs.String("name", "", "what the token is for, e.g. \"website\" (required)")
		expires := fs.Duration("expires", 0, "lifetime, e.g. 2160h; without it the token lasts until revoked")
		var scopes []string
		fs.Func("scope", "an extra permission: reveal (may reveal sensitive values); repeat for more. inbound makes a token for a mail provider's inbound route, which may post inbound email and nothing else; campaigns lets it keep and send campaigns; automation lets it keep workflow rules and webhook endpoints; admin lets it change settings, purposes and legal holds; erasure lets it erase and delete contacts", func(s string) error {
			scopes = append(scopes, s)
			return nil
		})
		if err := fs.Parse(args[1:]); err != nil {
			return 2
		}
		expiresGiven := false
		fs.Visit(func(f *flag.Flag) { expiresGiven = expiresGiven || f.Name == "expires" })
		if expiresGiven && *expires <= 0 {
			fmt.Fprint(stderr, "consentry: token create: --expires must be a positive duration, e.g. 2160h\n")
			return 2
		}
		if strings.TrimSpace(*name) == "" {
			fmt.Fprint(stderr, "consentry: token create: --name is required\n")
			return 2
		}
		err = withApp(ctx, cfg, log, func(a *app.App) error {
			var exp *time.Time
			if *expires > 0 {
				t := time.Now().Add(*expires)
				exp = &t
			}
			secret, tok, err := a.Tokens.Create(ctx, audit.Actor{Kind: audit.ActorCommandLine}, *name, exp, scopes...)
			if err != nil {
				return err
			}
			fmt.Fprintf(stderr, "Created API token %s (%s). It is shown only this once; store it now.\n", tok.ID, tok.Name)
			fmt.Fprintln(stdout, secret)
			return nil
		})
	case "list":
		err = withApp(ctx, cfg, log, func(a *app.App) error {
			toks, err := a.Tokens.List(ctx)
			if err != nil {
				return err
			}
			for _, t := range toks {
				state := "active"
				if t.RevokedAt != nil {
					state = "revoked " + t.RevokedAt.Format(time.RFC3339)
				} else if t.ExpiresAt != nil {
					state = "expires " + t.ExpiresAt.Format(time.RFC3339)
				}
				fmt.Fprintf(stdout, "%s\t%s\t%s\t%s\t%s\n", t.ID, t.Name, strings.Join(t.Scopes, ","), t.CreatedAt.Format(time.RFC3339), state)
			}
			return nil
		})
	case "revoke":
		if len(args) != 2 {
			fmt.Fprint(stderr, "usage: consentry token revoke ID\n")
			return 2
		}
		err = withApp(ctx, cfg, log, func(a *app.App) error {
			return a.Tokens.Revoke(ctx, audit.Actor{Kind: audit.ActorCommandLine}, args[1])
		})
	default:
		fmt.Fprintf(stderr, "consentry: unknown token command %q\n", args[0])
		return 2
	}
	if err != nil {
		fmt.Fprintf(stderr, "consentry: %v\n", err)
		return 1
	}
	return 0
}

func keys(ctx context.Context, cfg *config.Config, log *slog.Logger, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, "usage: consentry keys create --file PATH | keys rotate | keys retire | keys change-master-key\n")
		return 2
	}
	switch args[0] {
	case "create":
		fs := flag.NewFlagSet("keys create", flag.ContinueOnError)
		fs.SetOutput(stderr)
		file := fs.String("file", "", "where to write the keyset (required)")
		if err := fs.Parse(args[1:]); err != nil || *file == "" {
			fmt.Fprint(stderr, "usage: consentry keys create --file PATH\n")
			return 2
		}
		master := vault.NewMasterKey()
		if _, err := vault.Create(*file, master); err != nil {
			fmt.Fprintf(stderr, "consentry: %v\n", err)
			return 1
		}
		fmt.Fprintf(stderr, "Wrote %s. Its master key follows; it is shown only this once. Keep it apart from the keyset:\n"+
			"set CONSENTRY_KEYSET_FILE=%s and CONSENTRY_MASTER_KEY to it.\n", *file, *file)
		fmt.Fprintln(stdout, master)
		return 0
	case "rotate":
		err := withApp(ctx, cfg, log, func(a *app.App) error {
			n, err := a.Contacts.RotateKeys(ctx)
			if err != nil {
				return err
			}
			if _, err := a.Signing.Rewrap(ctx); err != nil {
				return err
			}
			if _, err := a.Imports.Rewrap(ctx); err != nil {
				return err
			}
			fmt.Fprintf(stdout, "moved %d data keys under the new keyset key. Give every instance the new keyset file, "+
				"then run consentry keys retire to destroy the old keys\n", n)
			return nil
		})
		if err != nil {
			fmt.Fprintf(stderr, "consentry: %v\n", err)
			return 1
		}
		return 0
	case "retire":
		err := withApp(ctx, cfg, log, func(a *app.App) error {
			if a.Contacts.Vault != nil {
				if n, err := a.Signing.Unwrapped(ctx, a.Contacts.Vault.PrimaryKeyID()); err != nil || n > 0 {
					return fmt.Errorf("%d signing keys are still under an older keyset key (%v); run keys rotate again first", n, err)
				}
				if n, err := a.Imports.Unwrapped(ctx, a.Contacts.Vault.PrimaryKeyID()); err != nil || n > 0 {
					return fmt.Errorf("the keys of %d uploaded files are still under an older keyset key (%v); run keys rotate again first", n, err)
				}
			}
			if err := a.Contacts.RetireKeys(ctx); err != nil {
				return err
			}
			fmt.Fprintln(stdout, "the old keyset keys are destroyed; copies of the database from before the rotation no longer open")
			return nil
		})
		if err != nil {
			fmt.Fprintf(stderr, "consentry: %v\n", err)
			return 1
		}
		return 0
	case "change-master-key":
		if len(args) != 1 {
			fmt.Fprint(stderr, "usage: consentry keys change-master-key\n")
			return 2
		}
		return changeMasterKey(cfg, stdout, stderr)
	}
	fmt.Fprintf(stderr, "consentry: unknown keys command %q\n", args[0])
	return 2
}

// changeMasterKey encrypts the configured keyset file under a new master
// key (vault.ChangeMasterKey) and prints the key, and what every instance
// and every copy of the old file need. The keys inside, and so the
// database, stay as they are.
func changeMasterKey(cfg *config.Config, stdout, stderr io.Writer) int {
	file := cfg.KeysetFile
	if file == "" {
		fmt.Fprint(stderr, "consentry: keys change-master-key: no keyset is configured (CONSENTRY_KEYSET_FILE and CONSENTRY_MASTER_KEY); nothing was changed\n")
		if keyset := app.KeysetFile(cfg); keyset != "" && exists(keyset) { // the embedded database's own
			_, master := app.DefaultKeyFiles(cfg.DatabaseURL)
			fmt.Fprintf(stderr, "The keyset beside the database, %s, has its master key beside it too, in %s. To change it,\n"+
				"set CONSENTRY_KEYSET_FILE=%s and CONSENTRY_MASTER_KEY to what %s holds, run this again,\n"+
				"keep both settings from then on, and delete %s.\n", keyset, master, keyset, master, master)
		}
		return 1
	}
	printed := false
	err := vault.ChangeMasterKey(file, cfg.MasterKey, func(key string) error {
		if _, err := fmt.Fprintln(stdout, key); err != nil {
			return fmt.Errorf("the new master key could not be printed: %w", err)
		}
		printed = true
		if f, ok := stdout.(*os.File); ok {
			f.Sync() // a key sent to a file is on disk before the keyset needs it; a terminal or pipe cannot sync
		}
		return nil
	})
	if err != nil {
		fmt.Fprintf(stderr, "consentry: keys change-master-key: %v", err)
		if !printed {
			fmt.Fprint(stderr, "; nothing was changed")
		}
		fmt.Fprintln(stderr)
		return 1
	}
	fmt.Fprintf(stderr, "%s is now encrypted under a new master key, printed on standard output and shown only this once. The keys inside\n"+
		"are the same, so no data was encrypted anew. Now:\n"+
		"- set CONSENTRY_MASTER_KEY to the new key on every instance, give every instance this keyset file, and restart them:\n"+
		"  running instances keep working until then with the keys they hold; one started with the old key refuses to start;\n"+
		"- copies of the old keyset file (beside backups as FILE.keyset, on other machines) still open with the old master key:\n"+
		"  replace each with this file, which holds the same keys, or destroy it; then destroy the old master key;\n"+
		"- whoever had the old master key and a copy of the keyset file could have taken the keys inside: if that may have\n"+
		"  happened, also run consentry keys rotate and then consentry keys retire.\n", file)
	return 0
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}
