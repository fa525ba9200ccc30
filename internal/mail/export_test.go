package mail

// Statement is the statement that empties one batch, for the benchmark's
// plan.
func (p *Pruner) Statement() string { return p.statement() }
