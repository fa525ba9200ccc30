package api

// Routes of the parts that keep their handlers in their own files. Each
// returns its part of the route table.

func (s *Server) webformRoutes() []Route { return nil }
