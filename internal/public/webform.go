package public

// webformRoutes adds the webform pages and posts to the public mux.
func (s *Server) webformRoutes() {}
