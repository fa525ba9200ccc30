package optin

import "time"

// ObserveBatches has f called after each committed batch of a bulk run.
func (s *Service) ObserveBatches(f func(contacts int, took time.Duration)) { s.batchDone = f }
