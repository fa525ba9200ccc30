// Package app puts Consentry together from its configuration: the database,
// the domain services, the background workers and the HTTP handler. The
// command and the end-to-end tests both start the service through it.
package app

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"runtime/debug"
	"strings"
	"sync"
	"time"

	"github.com/consentry/consentry/internal/api"
	"github.com/consentry/consentry/internal/auth"
	"github.com/consentry/consentry/internal/busy"
	"github.com/consentry/consentry/internal/campaign"
	"github.com/consentry/consentry/internal/config"
	"github.com/consentry/consentry/internal/consent"
	"github.com/consentry/consentry/internal/contact"
	"github.com/consentry/consentry/internal/erasure"
	"github.com/consentry/consentry/internal/errs"
	"github.com/consentry/consentry/internal/events"
	"github.com/consentry/consentry/internal/export"
	"github.com/consentry/consentry/internal/filter"
	"github.com/consentry/consentry/internal/httpx"
	"github.com/consentry/consentry/internal/imports"
	"github.com/consentry/consentry/internal/inbound"
	"github.com/consentry/consentry/internal/jobs"
	"github.com/consentry/consentry/internal/ledgertree"
	"github.com/consentry/consentry/internal/lists"
	"github.com/consentry/consentry/internal/mail"
	"github.com/consentry/consentry/internal/metrics"
	"github.com/consentry/consentry/internal/optin"
	"github.com/consentry/consentry/internal/preferences"
	"github.com/consentry/consentry/internal/public"
	"github.com/consentry/consentry/internal/receipts"
	"github.com/consentry/consentry/internal/repermission"
	"github.com/consentry/consentry/internal/requests"
	"github.com/consentry/consentry/internal/retention"
	"github.com/consentry/consentry/internal/signing"
	"github.com/consentry/consentry/internal/store"
	"github.com/consentry/consentry/internal/tally"
	"github.com/consentry/consentry/internal/web"
	"github.com/consentry/consentry/internal/webform"
	"github.com/consentry/consentry/internal/webhook"
	"github.com/consentry/consentry/internal/workflow"
)

// App is a running Consentry: its database, services and workers.
type App struct {
	Config   *config.Config
	Log      *slog.Logger
	DB       *store.DB
	Consent  *consent.Service
	Contacts *contact.Service
	// Signing holds the key that signs receipts and ledger checkpoints.
	Signing *signing.Service
	// LedgerTree keeps the Merkle tree over the ledger and its checkpoints.
	LedgerTree *ledgertree.Service
	// Receipts issues signed consent receipts with that key.
	Receipts  *receipts.Service
	Tokens    *auth.Tokens
	Users     *auth.Users
	OptIn     *optin.Service
	Lists     *lists.Service
	Prefs     *preferences.Service
	Retention *retention.Service
	Requests  *requests.Service
	Erasure   *erasure.Service
	Export    *export.Service
	Tally     *tally.Service // the dashboard's daily figures
	Jobs      *jobs.Runner
	Deliverer *mail.Deliverer
	// Campaigns keeps campaigns; CampaignSender sends them, and
	// CampaignLinks makes and checks the links in their messages.
	Campaigns      *campaign.Service
	CampaignSender *campaign.Sender
	CampaignLinks  *campaign.Links
	// CampaignTracker records the opens and clicks of tracked recipients.
	CampaignTracker *campaign.Tracker
	API             *api.Server
	Public          *public.Server
	Admin           *web.Server
	// Inbound reads requests emailed to the privacy address; InboundSMTP
	// receives them when CONSENTRY_INBOUND_SMTP_ADDR is set (after Start).
	Inbound     *inbound.Service
	InboundSMTP *inbound.Listener
	// Workflows keeps the workflow rules and their run log;
	// WorkflowRunner runs them on events (R21).
	Workflows      *workflow.Service
	WorkflowRunner *workflow.Runner
	Imports        *imports.Service
	// Repermission asks contacts for their marketing consent again.
	Repermission *repermission.Service
	// Webhooks keeps webhook endpoints and their deliveries;
	// WebhookWorker makes the deliveries from events and sends them.
	Webhooks      *webhook.Service
	WebhookWorker *webhook.Worker
	// Metrics counts requests and message outcomes and reads the rest from
	// the database when scraped (docs/metrics.md).
	Metrics *metrics.Metrics

	handler    http.Handler
	requests   *busy.Meter // every request, for the campaign sender to give way (package busy)
	workers    sync.WaitGroup
	inboundErr error // from starting the inbound SMTP listener
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
	if cfg.KeysetFile == "" && !store.IsPostgresURL(cfg.DatabaseURL) {
		if err := defaultKeys(cfg, log); err != nil {
			return nil, err
		}
	}
	db, err := store.Open(ctx, cfg.DatabaseURL, store.Options{Log: log})
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
	a, err := New(cfg, log, db)
	if err != nil {
		db.Close()
		return nil, err
	}
	return a, nil
}

// New builds the services on an open, migrated database. Email goes over
// SMTP when CONSENTRY_SMTP_URL is set, and to the dev mailbox otherwise.
func New(cfg *config.Config, log *slog.Logger, db *store.DB) (*App, error) {
	// Every log line of a request carries its id (httpx.RequestID), and a
	// client that went away is no error.
	log = slog.New(httpx.LogHandler(log.Handler()))
	a := &App{Config: cfg, Log: log, DB: db}
	v, err := openVault(context.Background(), cfg, db)
	if err != nil {
		return nil, err
	}
	tmpl, err := mail.NewTemplates()
	if err != nil {
		return nil, err
	}
	// A double opt-in confirmation answers the re-permission runs that
	// asked the contact, in its transaction.
	a.Consent = consent.NewService(db, contact.EraseWithdrawnStorage).OnConfirm(repermission.ConfirmedTx)
	a.Contacts = contact.NewService(db, a.Consent, preferences.InformOnCreate(tmpl, cfg.BaseURL, cfg.Sender()))
	a.Contacts.Vault = v
	a.Signing = &signing.Service{DB: db, Vault: v, Name: signing.NameFor(cfg.BaseURL)}
	a.LedgerTree = &ledgertree.Service{DB: db, Signing: a.Signing, Log: log, Every: cfg.CheckpointEvery, Publish: checkpointCopies(cfg)}
	a.Tokens = auth.NewTokens(db)
	a.Lists = &lists.Service{DB: db, Now: time.Now, Purpose: func(ctx context.Context, nameOrID string) (string, string, error) {
		p, err := a.Consent.Purpose(ctx, nameOrID)
		if err != nil {
			return "", "", err
		}
		return p.ID, p.Name, nil
	}}
	a.Contacts.Lists = func(ctx context.Context) (filter.Lists, error) { return a.Lists.Names(ctx) }
	a.Receipts = &receipts.Service{DB: db, Consent: a.Consent, Signing: a.Signing, Tree: a.LedgerTree, Issuer: cfg.BaseURL, Sender: cfg.Sender(), Mail: tmpl, Now: time.Now}
	a.OptIn = &optin.Service{DB: db, Consent: a.Consent, Log: log, Now: time.Now, BaseURL: cfg.BaseURL, Sender: cfg.Sender(), Mail: tmpl,
		AfterBatch: repermission.BatchTx, AfterFailed: repermission.FailedTx, AfterConfirm: a.Receipts.EmailTx}
	a.Requests = &requests.Service{DB: db, Consent: a.Consent, Notify: requests.NotifyOperator(tmpl, cfg.BaseURL, cfg.Sender()), Now: time.Now}
	a.Prefs = &preferences.Service{DB: db, Consent: a.Consent, Contacts: a.Contacts, Lists: a.Lists, Log: log, Now: time.Now, Mail: tmpl,
		BaseURL: cfg.BaseURL, Sender: cfg.Sender(), Notify: a.Requests.Notify, AfterGrant: a.Receipts.EmailTx}

	a.Export = &export.Service{DB: db, Contacts: a.Contacts, Now: time.Now}
	a.Prefs.Exports = a.Export

	var transport mail.Transport = &mail.Mailbox{DB: db, Now: time.Now}
	if cfg.SMTPURL != "" {
		smtp, err := mail.NewSMTP(cfg.SMTPURL, cfg.SMTPConnections)
		if err != nil {
			return nil, err
		}
		transport = smtp
	}
	a.Deliverer = &mail.Deliverer{DB: db, Transport: transport, Log: log, From: cfg.MailFrom, FromNamed: cfg.MailFromNamed, Domain: cfg.MailDomain(),
		Now: time.Now, Batch: 200, Lease: 5 * time.Minute, MaxAttempts: mailAttempts, Poll: 2 * time.Second, BaseURL: cfg.BaseURL}
	a.Campaigns = &campaign.Service{DB: db, Now: time.Now, Purposes: a.Consent, Lists: a.Lists,
		Condition: func(ctx context.Context, src string) (*filter.Condition, error) {
			return a.Contacts.Condition(ctx, src, false)
		}}
	a.CampaignLinks = &campaign.Links{DB: db, BaseURL: cfg.BaseURL}
	lease := cfg.CampaignLease
	if lease <= 0 {
		lease = 2 * time.Minute
	}
	// Campaigns give way to people: while requests wait for the CPU,
	// sending slows, down to 200 messages a second.
	a.requests = &busy.Meter{}
	a.CampaignSender = &campaign.Sender{Service: a.Campaigns, Links: a.CampaignLinks, Transport: transport, Log: log,
		From: cfg.MailFrom, Domain: cfg.MailDomain(), Lease: lease, Budget: 25 * time.Millisecond, Poll: 2 * time.Second,
		GiveWay: busy.NewGovernor(a.requests, 200)}
	a.CampaignSender.GiveWay.Log, a.CampaignSender.GiveWay.What = log, "campaign sending"
	a.CampaignTracker = campaign.NewTracker(db, log)
	a.Metrics = metrics.New(metrics.Sources{DB: db, LastVerification: a.Consent.LastVerification, Log: log}, Version())
	a.Deliverer.Observe, a.CampaignSender.Observe = a.Metrics.Message, a.Metrics.Message
	a.Jobs = jobs.NewRunner(db, log)
	a.Jobs.Every("housekeeping", 6*time.Hour, func(ctx context.Context, _ *jobs.Job) error {
		return housekeeping(ctx, db, time.Now())
	})
	a.Jobs.Handle(contact.EncryptFieldJob, func(ctx context.Context, j *jobs.Job) error {
		var field string
		if err := j.Decode(&field); err != nil {
			return err
		}
		_, err := a.Contacts.EncryptExisting(ctx, field)
		return err
	})
	a.Jobs.Every(preferences.AccessSweepJob, 10*time.Minute, func(ctx context.Context, _ *jobs.Job) error {
		_, err := a.Prefs.AccessSweep(ctx)
		return err
	})
	a.Jobs.Handle(optin.BulkJob, a.OptIn.RunBulk)
	a.Jobs.HandlePersonal(preferences.SendLinkJob, a.Prefs.RunSendLink)
	a.Jobs.Every("optin.sweep", 10*time.Minute, func(ctx context.Context, _ *jobs.Job) error {
		_, err := a.OptIn.Sweep(ctx)
		return err
	})
	// Holds that ran out get their end recorded, and then the erasures
	// they kept waiting proceed, in that order.
	a.Erasure = erasure.New(db)
	a.Jobs.Every("erasure.holds_ended", 10*time.Minute, func(ctx context.Context, _ *jobs.Job) error {
		if _, err := a.Erasure.EndExpiredHolds(ctx, 200); err != nil {
			return err
		}
		_, err := a.Erasure.ResumeReleased(ctx, 200)
		return err
	})

	forms, err := webform.New(&webform.Service{DB: db, Consent: a.Consent, Contacts: a.Contacts, Lists: a.Lists, OptIn: a.OptIn, Mail: tmpl, BaseURL: cfg.BaseURL,
		Sender: cfg.Sender(), Now: time.Now, AfterGrant: a.Receipts.EmailTx})
	if err != nil {
		return nil, err
	}
	a.Inbound = &inbound.Service{DB: db, Mail: tmpl, Notify: a.Requests.Notify,
		BaseURL: cfg.BaseURL, Sender: cfg.Sender(), OwnAddress: cfg.MailAddress(), Now: time.Now,
		Bounces: &campaign.Bounces{Service: a.Campaigns, Links: a.CampaignLinks}}
	a.Jobs.Every("inbound.unconfirmed", time.Hour, func(ctx context.Context, _ *jobs.Job) error {
		_, err := a.Inbound.RefuseUnconfirmed(ctx)
		return err
	})
	a.Webhooks = &webhook.Service{DB: db, Now: time.Now, Log: log, Policy: webhook.Policy{AllowHTTPLocalhost: cfg.WebhooksAllowHTTPLocalhost},
		Mail: tmpl, BaseURL: cfg.BaseURL, Sender: cfg.Sender()}
	a.WebhookWorker = webhook.NewWorker(a.Webhooks)
	if cfg.WebhooksLease > 0 {
		a.WebhookWorker.Lease = cfg.WebhooksLease
	}
	a.Workflows = &workflow.Service{DB: db, Contacts: a.Contacts, Lists: a.Lists, Now: time.Now}
	// Imports bring contacts in from files, as jobs (R24).
	a.Imports = &imports.Service{DB: db, Contacts: a.Contacts, Consent: a.Consent, Lists: a.Lists, Log: log, Now: time.Now,
		Budget: cfg.ImportChunkTime}
	a.Jobs.Handle(imports.JobKind, a.Imports.Handle)
	a.Jobs.Handle(imports.UndoJobKind, a.Imports.HandleUndo)
	a.Jobs.Handle(imports.DropJobKind, a.Imports.HandleDrop)
	a.Jobs.Every(imports.PruneJob, imports.PruneInterval, func(ctx context.Context, _ *jobs.Job) error {
		_, err := a.Imports.Prune(ctx, imports.KeepFor)
		return err
	})
	// Re-permission asks contacts without a valid marketing consent again
	// (R24), and lapses those who do not confirm in time.
	a.Repermission = &repermission.Service{DB: db, OptIn: a.OptIn, Imports: a.Imports, Log: log, Now: time.Now,
		Condition: func(ctx context.Context, src string) (*filter.Condition, error) {
			return a.Contacts.Condition(ctx, src, false)
		}}
	a.Jobs.Every(repermission.SweepJob, repermission.SweepInterval, func(ctx context.Context, _ *jobs.Job) error {
		_, err := a.Repermission.Sweep(ctx)
		return err
	})
	a.API = api.New(&api.Server{Repermission: a.Repermission, Imports: a.Imports, Workflows: a.Workflows, Webhooks: a.Webhooks, Inbound: a.Inbound, Campaigns: a.Campaigns, CampaignSender: a.CampaignSender, DB: db, Consent: a.Consent, Contacts: a.Contacts, Tokens: a.Tokens, OptIn: a.OptIn, Lists: a.Lists, Prefs: a.Prefs,
		IPs: cfg.TrustedProxies, Log: log, RequestLog: httpx.RequestLog(cfg.LogRequests["api"]), Ready: a.ready, Version: Version(), Webforms: forms, Requests: a.Requests, Erasure: a.Erasure, Export: a.Export, Receipts: a.Receipts,
		Tree: a.LedgerTree, Limits: api.Limits{Token: cfg.Rates.API, BadToken: cfg.Rates.APIBadToken}})
	a.Public, err = public.New(&public.Server{DB: db, Inbound: a.Inbound, OptIn: a.OptIn, Prefs: a.Prefs, SecureCookies: strings.HasPrefix(cfg.BaseURL, "https://"),
		Log: log, RequestLog: httpx.RequestLog(cfg.LogRequests["public"]), Limits: limits(cfg.Rates),
		Sender: cfg.Sender(), Mailbox: cfg.SMTPURL == "", IPs: cfg.TrustedProxies, Webforms: forms,
		Campaigns: a.Campaigns, CampaignSender: a.CampaignSender, CampaignLinks: a.CampaignLinks, Tracker: a.CampaignTracker,
		Tree: a.LedgerTree, Receipts: a.Receipts})
	if err != nil {
		return nil, fmt.Errorf("public pages: %w", err)
	}
	a.Retention = &retention.Service{DB: db, Log: log, Now: time.Now, Erase: erasure.ForRetentionMany}
	a.Jobs.Every(retention.Job, retention.RunInterval, func(ctx context.Context, _ *jobs.Job) error {
		return a.Retention.FlagAndRun(ctx)
	})
	// Sent email keeps its content for the setting sent_body_days, then
	// only what proof and reports need.
	pruner := &mail.Pruner{DB: db, Now: time.Now}
	a.Jobs.Every(mail.PruneJob, mail.PruneInterval, func(ctx context.Context, _ *jobs.Job) error {
		n, err := pruner.Run(ctx)
		if n > 0 {
			log.Info("content of old email removed", "emails", n, "longest_tx", pruner.Longest)
		}
		return err
	})
	a.Jobs.Every(webhook.PruneJob, webhook.PruneInterval, func(ctx context.Context, _ *jobs.Job) error {
		_, err := a.Webhooks.Prune(ctx, time.Now().Add(-webhook.KeepFor))
		return err
	})
	// A rule's webhook action queues a delivery of its event in the run's
	// transaction, which waits as every other while its endpoint is turned
	// off; a rule is saved only with endpoints that exist.
	a.Workflows.Endpoint = func(ctx context.Context, id string) (bool, error) {
		_, err := a.Webhooks.Get(ctx, id)
		if errs.Is(err, errs.KindNotFound) {
			return false, nil
		}
		return err == nil, err
	}
	a.WorkflowRunner = &workflow.Runner{DB: db, Rules: a.Workflows, OptIn: a.OptIn, BaseURL: cfg.BaseURL, Log: log, Now: time.Now,
		Poll: time.Minute, Withdraw: a.Consent.PurposeWithdrawal(consent.Actor{Kind: consent.ActorSystem}, consent.Evidence{Method: consent.MethodSystem}),
		Webhook: func(tx *store.Tx, endpointID string, e events.Event) (string, error) {
			return webhook.QueueTx(tx, endpointID, e, store.Now(time.Now))
		}}
	a.Jobs.Every(workflow.PruneJob, workflow.PruneInterval, func(ctx context.Context, _ *jobs.Job) error {
		return a.Workflows.Prune(ctx, time.Now())
	})
	a.Tally = &tally.Service{DB: db, Consent: a.Consent, Now: time.Now}
	a.Jobs.Every(tally.Job, tally.Interval, func(ctx context.Context, _ *jobs.Job) error {
		return a.Tally.Count(ctx)
	})
	a.Users = &auth.Users{DB: db, Now: time.Now}
	a.Admin, err = web.New(&web.Server{DB: db, Users: a.Users, Consent: a.Consent, Contacts: a.Contacts, OptIn: a.OptIn, Lists: a.Lists,
		Prefs: a.Prefs, Tokens: a.Tokens, Retention: a.Retention, Requests: a.Requests, Erasure: a.Erasure, Export: a.Export,
		Tally: a.Tally, Campaigns: a.Campaigns, CampaignSender: a.CampaignSender, Webforms: forms, Workflows: a.Workflows, Webhooks: a.Webhooks, Imports: a.Imports, Log: log, IPs: cfg.TrustedProxies,
		RequestLog:   httpx.RequestLog(cfg.LogRequests["admin"]),
		Repermission: a.Repermission, Receipts: a.Receipts, SecureCookies: strings.HasPrefix(cfg.BaseURL, "https://")})
	if err != nil {
		return nil, fmt.Errorf("admin pages: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /{$}", a.Admin) // the front door leads to the admin UI
	mux.Handle("/admin/", a.Admin)
	mux.Handle("/admin", a.Admin)
	mux.Handle("/api/", a.API)
	mux.Handle("/healthz", a.API)
	mux.Handle("/readyz", a.API)
	if cfg.MetricsToken != "" {
		// On the public listener only behind the token: the figures say
		// how busy the service is and what its email does.
		mux.Handle("GET "+metrics.Path, a.Metrics.Handler(cfg.MetricsToken))
	}
	mux.Handle("/", a.Public)
	a.handler = httpx.RequestID(a.Metrics.Count(a.requests.Count(mux)))
	return a, nil
}

// MetricsHandler serves what the listener of CONSENTRY_METRICS_ADDR
// answers: the metrics (behind the token when one is set), /healthz and
// /readyz.
func (a *App) MetricsHandler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET "+metrics.Path, a.Metrics.Handler(a.Config.MetricsToken))
	mux.Handle("/healthz", a.API)
	mux.Handle("/readyz", a.API)
	return httpx.RequestID(mux)
}

// limits are the public pages' rate limits as configured.
func limits(r config.Rates) public.Limits {
	return public.Limits{Pages: r.Pages, OneClick: r.OneClick, Webform: r.Webform, WebformPerAddress: r.WebformPerAddress,
		NewLink: r.NewLink, NewLinkPerAddress: r.NewLinkPerAddress, Ledger: r.Ledger}
}

// ready is what GET /readyz reports: whether the database answers, every
// migration this binary knows is applied, and the configured keyset is
// loaded. Each check is bounded, so that a probe gets an answer while the
// database hangs.
func (a *App) ready(ctx context.Context) api.Readiness {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	rd := api.Readiness{Checks: map[string]string{}}
	check := func(name, problem string) {
		if problem == "" {
			rd.Checks[name] = "ok"
			return
		}
		rd.Checks[name], rd.NotReady = problem, append(rd.NotReady, name)
	}
	if err := a.DB.Read.PingContext(ctx); err != nil {
		a.Log.WarnContext(ctx, "readiness: the database does not answer", "err", err)
		check("database", "not reachable")
		check("migrations", "unknown: the database does not answer")
	} else {
		check("database", "")
		switch n, err := a.DB.MigrationsBehind(ctx); {
		case err != nil:
			a.Log.WarnContext(ctx, "readiness: read the migration version", "err", err)
			check("migrations", "the migration version cannot be read")
		case n > 0:
			check("migrations", fmt.Sprintf("%d not applied", n))
		default:
			check("migrations", "")
		}
	}
	switch {
	case a.Config.KeysetFile == "":
		rd.Checks["keyset"] = "not configured"
	case a.Contacts.Vault == nil:
		check("keyset", "configured but not loaded")
	default:
		check("keyset", "")
	}
	return rd
}

// mailAttempts bounds the tries of a message the mail server keeps
// turning away for now (unreachable, timing out, 4xx): with the jobs
// backoff (10 s doubling to an hour) 56 tries span about two days, as a
// mail server keeps a message queued, so that a relay down over a weekend
// night loses nothing.
const mailAttempts = 56

// checkpointCopies is where the configuration sends a copy of every
// checkpoint; nil for nowhere.
func checkpointCopies(cfg *config.Config) func(context.Context, *ledgertree.Checkpoint) error {
	var to []func(context.Context, *ledgertree.Checkpoint) error
	if cfg.CheckpointFile != "" {
		to = append(to, ledgertree.ToFile(cfg.CheckpointFile))
	}
	if cfg.CheckpointURL != "" {
		to = append(to, ledgertree.ToURL(cfg.CheckpointURL))
	}
	if len(to) == 0 {
		return nil
	}
	return ledgertree.Both(to...)
}

// Handler serves everything the service answers over HTTP.
func (a *App) Handler() http.Handler { return a.handler }

// Start runs the background workers (jobs, email and webhook delivery) until ctx
// ends; Close waits for them.
func (a *App) Start(ctx context.Context) {
	a.announceSetup(ctx)
	a.workers.Add(9)
	go func() {
		defer a.workers.Done()
		n, err := a.Consent.WithdrawMarketingOfOptedOut(ctx)
		switch {
		case err != nil && ctx.Err() == nil:
			a.Log.Error("withdraw the marketing consents of opted-out contacts", "err", err)
		case n > 0:
			a.Log.Info("marketing consents withdrawn for contacts who had opted out", "contacts", n)
		}
	}()
	go func() { defer a.workers.Done(); a.Jobs.Run(ctx) }()
	go func() { defer a.workers.Done(); a.Deliverer.Run(ctx) }()
	go func() { defer a.workers.Done(); a.WebhookWorker.Run(ctx) }()
	go func() { defer a.workers.Done(); a.CampaignSender.Run(ctx) }()
	go func() { defer a.workers.Done(); a.CampaignTracker.Run(ctx) }()
	go func() { defer a.workers.Done(); a.CampaignSender.GiveWay.Run(ctx) }()
	go func() { defer a.workers.Done(); a.WorkflowRunner.Run(ctx) }()
	go func() { defer a.workers.Done(); a.LedgerTree.Run(ctx, 10*time.Second) }()
	a.startInboundSMTP(ctx)
}

// InboundSMTPError is why the SMTP listener for requests by email did not
// start, or nil (also when none is configured): the command stops on it
// rather than run without the listener it was asked for.
func (a *App) InboundSMTPError() error { return a.inboundErr }

// startInboundSMTP starts the SMTP listener for requests by email, when
// configured, and stops it when ctx ends.
func (a *App) startInboundSMTP(ctx context.Context) {
	if a.Config.InboundSMTPAddr == "" {
		return
	}
	a.InboundSMTP = &inbound.Listener{Service: a.Inbound, Addr: a.Config.InboundSMTPAddr, Domain: a.Config.MailDomain(), Log: a.Log}
	addr, err := a.InboundSMTP.Start()
	if err != nil {
		a.inboundErr = fmt.Errorf("listen on %s (CONSENTRY_INBOUND_SMTP_ADDR): %w", a.Config.InboundSMTPAddr, err)
		a.Log.Error("requests by email: the SMTP listener did not start", "err", err)
		return
	}
	a.Log.Info("requests by email: SMTP listener started", "addr", addr.String())
	a.workers.Add(1)
	go func() {
		defer a.workers.Done()
		<-ctx.Done()
		a.InboundSMTP.Close()
	}()
}

// announceSetup prints, while no user exists, a one-time link that creates
// the first admin. It is the one secret the log ever holds: it works once,
// only while there are no users, and for SetupLinkHours; each start makes a
// new one and ends the last.
func (a *App) announceSetup(ctx context.Context) {
	secret, err := a.Users.SetupLink(ctx)
	if err != nil {
		a.Log.Error("make the set-up link", "err", err)
		return
	}
	if secret != "" {
		a.Log.Warn("no users yet: open this one-time link to create the first admin", "url", a.Config.BaseURL+"/admin/setup/"+secret,
			"valid_hours", auth.SetupLinkHours)
	}
}

// Wait waits for the workers started by Start (their context must have
// ended) and closes the email transport.
func (a *App) Wait() {
	a.workers.Wait()
	a.Deliverer.Transport.Close()
}

// Close waits for the workers, then closes the database.
func (a *App) Close() error {
	a.Wait()
	return a.DB.Close()
}
