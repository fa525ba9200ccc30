package api

func (s *Server) preferenceRoutes() []Route { return nil }
