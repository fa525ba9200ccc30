//go:build unix

package store

import (
	"errors"
	"fmt"
	"os"
	"syscall"
)

// presence holds a shared flock on the file at path, created if missing,
// until unlock. It first tries the lock exclusive, without waiting: had
// it, no other holder is alive, and ifAlone runs under it before it
// becomes shared. A flock belongs to the open file, so a second holder in
// this process is another holder; closing the file, or the end of the
// process, lets it go. unlock is nil when no lock is held.
func presence(path string, ifAlone func() error) (unlock func(), alone bool, err error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, false, fmt.Errorf("store: open lock file: %w", err)
	}
	fd := int(f.Fd())
	var aloneErr error
	switch err := flock(fd, syscall.LOCK_EX|syscall.LOCK_NB); {
	case err == nil:
		alone = true
		if aloneErr = ifAlone(); aloneErr != nil {
			alone = false
		}
	case errors.Is(err, syscall.EWOULDBLOCK):
	default:
		f.Close()
		return nil, false, fmt.Errorf("store: lock %s: %w", path, err)
	}
	// Shared from now on: others join, and none is alone while this one
	// holds it. From exclusive this waits for nobody; otherwise it waits
	// only while another holder runs its ifAlone.
	if err := flock(fd, syscall.LOCK_SH); err != nil {
		f.Close()
		return nil, false, errors.Join(aloneErr, fmt.Errorf("store: lock %s: %w", path, err))
	}
	return func() { f.Close() }, alone, aloneErr
}

// flock is syscall.Flock, tried again when a signal interrupts it.
func flock(fd, how int) error {
	for {
		err := syscall.Flock(fd, how)
		if !errors.Is(err, syscall.EINTR) {
			return err
		}
	}
}
