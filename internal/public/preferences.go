package public

// preferenceRoutes adds the preferences page and unsubscribe links.
func (s *Server) preferenceRoutes() {}
