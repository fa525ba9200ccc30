//go:build unix

package vault

import (
	"os"
	"syscall"
)

// sameOwner gives f the owner and group of the file was describes, so that
// a keyset file rewritten by another user (root, say) still opens for the
// service's user.
func sameOwner(f *os.File, was os.FileInfo) error {
	st, ok := was.Sys().(*syscall.Stat_t)
	if !ok {
		return nil
	}
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	if now, ok := fi.Sys().(*syscall.Stat_t); ok && now.Uid == st.Uid && now.Gid == st.Gid {
		return nil
	}
	return f.Chown(int(st.Uid), int(st.Gid))
}
