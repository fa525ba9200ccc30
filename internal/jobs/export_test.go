package jobs

import "context"

// TakeOver is takeOver, for tests: how many jobs left running the runner
// took up, and the release of the lock it then holds.
func (r *Runner) TakeOver(ctx context.Context) (int64, func(), error) { return r.takeOver(ctx) }
