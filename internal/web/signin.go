package web

import (
	"errors"
	"net/http"
	"strings"

	"github.com/consentry/consentry/internal/auth"
	"github.com/consentry/consentry/internal/clientip"
	"github.com/consentry/consentry/internal/httpx"
)

func (s *Server) routes(static http.Handler) {
	s.mux.Handle("GET /admin/static/", static)
	// The front door of the whole site leads to the admin UI.
	s.mux.Handle("GET /{$}", http.RedirectHandler("/admin/", http.StatusSeeOther))
	s.mux.HandleFunc("GET /admin/setup/{token}", s.setupPage)
	s.post("/admin/setup/{token}", maxLoginBody, s.setup)
	s.mux.HandleFunc("GET /admin/login", s.loginPage)
	s.post("/admin/login", maxLoginBody, s.login)
	s.post("/admin/logout", smallForm, s.logout)
	s.mux.HandleFunc("GET /admin/{$}", s.need(auth.PermViewContacts, s.dashboard))
	s.mux.HandleFunc("GET /admin", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/admin/", http.StatusMovedPermanently)
	})
	s.contactRoutes()
	s.proofRoutes()
	s.userRoutes()
	s.settingsRoutes()
	s.auditRoutes()
	s.guideRoutes()
	s.retentionRoutes()
	s.requestRoutes()
	s.erasureRoutes()
	s.exportRoutes()
	s.campaignRoutes()
	s.listRoutes()
	s.webformRoutes()
	s.workflowRoutes()
	s.webhookRoutes()
	s.importRoutes()
	s.repermissionRoutes()
}

func (s *Server) setupPage(w http.ResponseWriter, r *http.Request) {
	if !s.Users.SetupLinkValid(r.Context(), r.PathValue("token")) {
		// 410, as every other link that cannot be used: unknown, expired
		// and used links answer alike.
		s.render(w, http.StatusGone, "message", page{Title: "This link cannot be used",
			Data: "The set-up link is unknown, expired or already used. Restart Consentry to get a new one while no user exists."})
		return
	}
	s.render(w, http.StatusOK, "setup", page{Title: "Create the first admin"})
}

func (s *Server) setup(w http.ResponseWriter, r *http.Request) {
	if !s.parse(w, r, nil) {
		return
	}
	in := auth.NewUser{Email: r.PostForm.Get("email"), Name: r.PostForm.Get("name"), Password: r.PostForm.Get("password")}
	if in.Password != r.PostForm.Get("password2") {
		s.render(w, http.StatusBadRequest, "setup", page{Title: "Create the first admin", Data: in,
			Errors: map[string]string{"password2": "The two passwords differ."}})
		return
	}
	u, err := s.Users.CreateFirstAdmin(r.Context(), r.PathValue("token"), in)
	if errors.Is(err, auth.ErrNoSetupLink) {
		s.setupPage(w, r)
		return
	}
	if err != nil {
		if fe := fieldErrors(err); fe != nil {
			s.render(w, http.StatusBadRequest, "setup", page{Title: "Create the first admin", Data: in, Errors: fe})
			return
		}
		s.fail(w, err, nil)
		return
	}
	s.Log.InfoContext(r.Context(), "first admin created", "user", u.ID)
	s.signIn(w, r, u, "/admin/")
}

func (s *Server) loginPage(w http.ResponseWriter, r *http.Request) {
	if s.user(r) != nil {
		http.Redirect(w, r, "/admin/", http.StatusSeeOther)
		return
	}
	s.render(w, http.StatusOK, "login", page{Title: "Sign in", Data: loginForm{Next: safeNext(r.URL.Query().Get("next"))}})
}

type loginForm struct {
	Email string
	Next  string
}

// Bounds of the sign-in form. No account has a longer address or password
// (auth refuses them when a user is made), so a longer one is a wrong
// sign-in, refused before the address is used as a key or the password is
// hashed; the body as a whole is bounded before it is read.
const (
	maxLoginBody     = 16 << 10
	maxLoginEmail    = 254
	maxLoginPassword = 1024
	maxLoginNext     = 2048
)

func (s *Server) login(w http.ResponseWriter, r *http.Request) {
	if !s.parse(w, r, nil) {
		return
	}
	email, password, next := strings.TrimSpace(r.PostForm.Get("email")), r.PostForm.Get("password"), r.PostForm.Get("next")
	if len(next) > maxLoginNext {
		next = ""
	}
	f := loginForm{Email: email, Next: safeNext(next)}
	tooLong := len(email) > maxLoginEmail || len(password) > maxLoginPassword
	if tooLong {
		f.Email = ""
	}
	// An attempt counts against the client address, then the account,
	// before the password is checked, so that parallel guesses cannot slip
	// through; a successful sign-in gives its counts back, so only
	// failures add up. The account is not counted (nor kept as a key)
	// when the address is already refused, or cannot be an account's.
	okAddr, wait, giveBackAddr := s.logins.Reserve(clientip.LimitKey(s.IPs.IP(r)))
	okAcct, giveBackAcct := okAddr, func() {}
	if okAddr && !tooLong {
		okAcct, wait, giveBackAcct = s.accounts.Reserve(strings.ToLower(email))
	}
	if !okAddr || !okAcct {
		giveBackAddr()
		giveBackAcct()
		httpx.SetRetryAfter(w, wait)
		s.render(w, http.StatusTooManyRequests, "login", page{Title: "Sign in", Data: f,
			Errors: map[string]string{"form": "Too many failed sign-ins. Wait a minute and try again."}})
		return
	}
	var u *auth.User
	err := auth.ErrBadLogin
	if !tooLong {
		// Password hashing takes memory and time: only so many at once.
		select {
		case s.hashing <- struct{}{}:
		default:
			giveBackAddr()
			giveBackAcct()
			w.Header().Set("Retry-After", "5")
			s.render(w, http.StatusServiceUnavailable, "login", page{Title: "Sign in", Data: f,
				Errors: map[string]string{"form": "Too many sign-ins at this moment. Try again in a few seconds."}})
			return
		}
		u, err = s.Users.Authenticate(r.Context(), email, password)
		<-s.hashing
	}
	if err == nil {
		giveBackAddr()
		giveBackAcct()
	}
	if errors.Is(err, auth.ErrBadLogin) {
		s.Log.InfoContext(r.Context(), "sign-in refused")
		s.render(w, http.StatusUnauthorized, "login", page{Title: "Sign in", Data: f,
			Errors: map[string]string{"form": "Wrong email address or password."}})
		return
	}
	if err != nil {
		s.fail(w, err, nil)
		return
	}
	s.signIn(w, r, u, f.Next)
}

func (s *Server) signIn(w http.ResponseWriter, r *http.Request, u *auth.User, next string) {
	secret, expires, err := s.Users.StartSession(r.Context(), u.ID)
	if err != nil {
		s.fail(w, err, nil)
		return
	}
	s.setSession(w, secret, expires)
	http.Redirect(w, r, next, http.StatusSeeOther)
}

// safeNext keeps a redirect after sign-in inside the admin UI.
func safeNext(next string) string {
	if !strings.HasPrefix(next, "/admin/") || strings.HasPrefix(next, "//") || strings.ContainsAny(next, "\\\r\n") {
		return "/admin/"
	}
	return next
}

func (s *Server) logout(w http.ResponseWriter, r *http.Request) {
	if c, err := r.Cookie(sessionCookie); err == nil {
		if err := s.Users.EndSession(r.Context(), c.Value); err != nil {
			s.Log.ErrorContext(r.Context(), "end session", "err", err)
		}
	}
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: "", Path: "/admin", MaxAge: -1, HttpOnly: true,
		Secure: s.SecureCookies, SameSite: http.SameSiteLaxMode})
	http.Redirect(w, r, "/admin/login", http.StatusSeeOther)
}
