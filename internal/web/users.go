package web

import (
	"net/http"

	"github.com/consentry/consentry/internal/audit"
	"github.com/consentry/consentry/internal/auth"
	"github.com/consentry/consentry/internal/errs"
	"github.com/consentry/consentry/internal/httpx"
)

func (s *Server) userRoutes() {
	s.mux.HandleFunc("GET /admin/users", s.need(auth.PermUsers, s.usersPage))
	s.post("/admin/users", smallForm, s.need(auth.PermUsers, s.createUser))
	s.post("/admin/users/{id}/disable", smallForm, s.need(auth.PermUsers, s.disableUser))
	s.post("/admin/users/{id}/enable", smallForm, s.need(auth.PermUsers, s.enableUser))
	s.post("/admin/users/{id}/role", smallForm, s.need(auth.PermUsers, s.setRole))
	// Every signed-in user may change their own password.
	s.mux.HandleFunc("GET /admin/account", s.need(auth.PermViewContacts, s.accountPage))
	s.post("/admin/account", smallForm, s.need(auth.PermViewContacts, s.changePassword))
}

func (s *Server) enableUser(w http.ResponseWriter, r *http.Request, u *auth.User) {
	if err := s.Users.Enable(r.Context(), audit.Actor(actor(u)), r.PathValue("id")); err != nil {
		s.fail(w, err, u)
		return
	}
	s.Log.InfoContext(r.Context(), "user enabled", "user", r.PathValue("id"), "by", u.ID)
	http.Redirect(w, r, "/admin/users?done=enabled", http.StatusSeeOther)
}

func (s *Server) setRole(w http.ResponseWriter, r *http.Request, u *auth.User) {
	if !s.parse(w, r, u) {
		return
	}
	if r.PathValue("id") == u.ID {
		s.showUsers(w, r, u, http.StatusBadRequest, "", map[string]string{"form": "Another admin must change your role."}, auth.NewUser{})
		return
	}
	err := s.Users.SetRole(r.Context(), audit.Actor(actor(u)), r.PathValue("id"), r.PostForm.Get("role"))
	if fe := fieldErrors(err); fe != nil && errs.As(err).Kind == errs.KindInvalid {
		s.showUsers(w, r, u, http.StatusBadRequest, "", fe, auth.NewUser{})
		return
	}
	if err != nil {
		s.fail(w, err, u)
		return
	}
	s.Log.InfoContext(r.Context(), "user role changed", "user", r.PathValue("id"), "role", r.PostForm.Get("role"), "by", u.ID)
	http.Redirect(w, r, "/admin/users?done=role", http.StatusSeeOther)
}

// usersDone are the notices the users and account pages show after a
// change, by the key their form's redirect puts in ?done=.
var usersDone = map[string]string{"created": "User created; give them their password in person or by phone.",
	"enabled": "User enabled.", "disabled": "User disabled; their sessions have ended.", "role": "Role changed.",
	"password": "Password changed; your other sessions have ended."}

func (s *Server) accountPage(w http.ResponseWriter, r *http.Request, u *auth.User) {
	s.render(w, http.StatusOK, "account", page{Title: "Your account", User: u, Flash: usersDone[r.URL.Query().Get("done")]})
}

func (s *Server) changePassword(w http.ResponseWriter, r *http.Request, u *auth.User) {
	if !s.parse(w, r, u) {
		return
	}
	next := r.PostForm.Get("password")
	if next != r.PostForm.Get("password2") {
		s.render(w, http.StatusBadRequest, "account", page{Title: "Your account", User: u, Errors: map[string]string{"password2": "The two passwords differ."}})
		return
	}
	c, _ := r.Cookie(sessionCookie)
	err := s.Users.ChangePassword(r.Context(), u.ID, r.PostForm.Get("current_password"), next, c.Value)
	if fe := fieldErrors(err); fe != nil {
		s.render(w, httpx.Status(err), "account", page{Title: "Your account", User: u, Errors: fe})
		return
	}
	if err != nil {
		s.fail(w, err, u)
		return
	}
	s.Log.InfoContext(r.Context(), "password changed", "user", u.ID)
	http.Redirect(w, r, "/admin/account?done=password", http.StatusSeeOther)
}

// roleRow is a line of the permission table shown on the users page.
type roleRow struct {
	Role  string
	Perms map[auth.Permission]bool
}

func (s *Server) usersPage(w http.ResponseWriter, r *http.Request, u *auth.User) {
	s.showUsers(w, r, u, http.StatusOK, usersDone[r.URL.Query().Get("done")], nil, auth.NewUser{})
}

func (s *Server) showUsers(w http.ResponseWriter, r *http.Request, u *auth.User, status int, flash string, fe map[string]string, form auth.NewUser) {
	users, err := s.Users.List(r.Context())
	if err != nil {
		s.fail(w, err, u)
		return
	}
	var table []roleRow
	for _, role := range auth.Roles {
		row := roleRow{Role: role, Perms: map[auth.Permission]bool{}}
		for _, p := range auth.Permissions {
			row.Perms[p] = auth.Can(role, p)
		}
		table = append(table, row)
	}
	form.Password = ""
	s.render(w, status, "users", page{Title: "Users", User: u, Nav: "users", Flash: flash, Errors: fe,
		Data: map[string]any{"Users": users, "Roles": auth.Roles, "Table": table, "Permissions": auth.Permissions, "Form": form}})
}

func (s *Server) createUser(w http.ResponseWriter, r *http.Request, u *auth.User) {
	if !s.parse(w, r, u) {
		return
	}
	in := auth.NewUser{Email: r.PostForm.Get("email"), Name: r.PostForm.Get("name"), Role: r.PostForm.Get("role"), Password: r.PostForm.Get("password")}
	created, err := s.Users.Create(r.Context(), audit.Actor(actor(u)), in)
	if err != nil {
		if fe := fieldErrors(err); fe != nil {
			s.showUsers(w, r, u, http.StatusBadRequest, "", fe, in)
			return
		}
		s.fail(w, err, u)
		return
	}
	s.Log.InfoContext(r.Context(), "user created", "user", created.ID, "role", created.Role, "by", u.ID)
	http.Redirect(w, r, "/admin/users?done=created", http.StatusSeeOther)
}

func (s *Server) disableUser(w http.ResponseWriter, r *http.Request, u *auth.User) {
	id := r.PathValue("id")
	if id == u.ID {
		s.showUsers(w, r, u, http.StatusBadRequest, "", map[string]string{"form": "You cannot disable yourself."}, auth.NewUser{})
		return
	}
	if err := s.Users.Disable(r.Context(), audit.Actor(actor(u)), id); err != nil {
		s.fail(w, err, u)
		return
	}
	s.Log.InfoContext(r.Context(), "user disabled", "user", id, "by", u.ID)
	http.Redirect(w, r, "/admin/users?done=disabled", http.StatusSeeOther)
}
