package main

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/consentry/consentry/internal/store"
)

// smallDisk mounts a tmpfs of size bytes on a new directory and returns
// it; it is unmounted when the test ends. It skips the test where it
// cannot mount (not Linux, not root, or no permission in a container).
func smallDisk(t *testing.T, size string) string {
	t.Helper()
	if runtime.GOOS != "linux" {
		t.Skip("mounts a size-limited tmpfs, which needs Linux")
	}
	dir, err := os.MkdirTemp("", "consentry-small-disk")
	if err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+size, "tmpfs", dir).CombinedOutput(); err != nil {
		os.Remove(dir)
		t.Skipf("cannot mount a size-limited tmpfs (needs root): %v %s", err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v %s", dir, err, out)
		}
		os.Remove(dir)
	})
	return dir
}

// fill writes a file in dir until the filesystem has no room left.
func fill(t *testing.T, dir string) string {
	t.Helper()
	path := filepath.Join(dir, "filler")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	block := make([]byte, 64<<10)
	for {
		if _, err := f.Write(block); err != nil {
			if errors.Is(err, syscall.ENOSPC) {
				break
			}
			t.Fatal(err)
		}
	}
	// Whatever a 64 KiB block did not fit, byte by byte.
	for _, err := f.Write(block[:1]); err == nil; _, err = f.Write(block[:1]) {
	}
	return path
}

// TestDiskFullThenFreed runs serve on SQLite on a small filesystem under
// eight writers and fills the filesystem. Writes then fail with a 503 that
// says the disk is full; once the space is freed they succeed again
// without a restart; every acknowledged write is kept, the database passes
// SQLite's integrity check, and the ledger verifies.
func TestDiskFullThenFreed(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and mounts a small filesystem; skipped with -short")
	}
	disk := smallDisk(t, "64m")
	bin := buildBinary(t)
	path := filepath.Join(disk, "consentry.db")
	env := append([]string{"CONSENTRY_DATABASE_URL=" + path}, loadEnv...)
	if code, _, stderr := runBinary(t, bin, env, "migrate"); code != 0 {
		t.Fatalf("migrate: %d %s", code, stderr)
	}
	child := startChild(t, bin, env)
	load := startLoad(t, bin, env, child)
	load.waitAcks(t, child, 100)

	filler := fill(t, disk)
	deadline := time.After(2 * time.Minute)
	for full := false; !full; {
		select {
		case why := <-load.fails:
			full = strings.Contains(why, " 503 ") && strings.Contains(why, "disk is full")
			if !full && !strings.Contains(why, " 503 ") {
				t.Fatalf("a write on a full disk was answered: %s", why)
			}
		case <-child.exited:
			t.Fatalf("serve exited on a full disk with %v:\n%s", child.cmd.ProcessState, child.output())
		case <-deadline:
			t.Fatal("writes went on for two minutes on a full disk")
		}
	}
	load.pause()
	load.drain()
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	load.resume(child)
	load.waitAcks(t, child, 100)
	load.stop()
	child.stop(t)

	db, err := store.Open(context.Background(), path, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var integrity string
	if err := db.Read.QueryRow(`PRAGMA integrity_check`).Scan(&integrity); err != nil || integrity != "ok" {
		t.Fatalf("integrity check: %q %v", integrity, err)
	}
	load.check(t, db, "a full disk, freed")
	verifyLedger(t, bin, env)
}
