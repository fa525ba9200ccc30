package storetest

import (
	"bufio"
	"context"
	"io"
	"os"
	"os/exec"
	"sync"
	"testing"

	"github.com/consentry/consentry/internal/store"
)

// childReady is the line a Child writes once it holds what its test wants
// held.
const childReady = "ready\n"

// Child runs the test named test of this test binary as a process of its
// own, with env ("NAME=value") added to its environment, and returns once
// the child said ChildReady. The test is one that does nothing unless its
// environment says so. kill ends the child with SIGKILL, which leaves it
// no chance to let go of anything (as kill -9 of the service would), and
// returns once it has ended; the test's end kills it too. A child that
// ends, or says something else, before it is ready fails the test.
func Child(t testing.TB, test string, env ...string) (kill func()) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^"+test+"$")
	cmd.Env = append(os.Environ(), env...)
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	kill = func() {
		once.Do(func() {
			cmd.Process.Kill()
			cmd.Wait() // its files are closed, and its locks let go of, once it is reaped
			stdin.Close()
		})
	}
	t.Cleanup(kill)
	if line, err := bufio.NewReader(stdout).ReadString('\n'); err != nil || line != childReady {
		kill()
		t.Fatalf("the child %s said %q (%v)", test, line, err)
	}
	return kill
}

// ChildReady, in a Child, says that it holds what its test wants held,
// and waits to be killed.
func ChildReady() {
	os.Stdout.WriteString(childReady)
	io.Copy(io.Discard, os.Stdin) // until killed
}

// ChildSQLite, in a test that a Child runs, opens the SQLite file that the
// environment variable env names (set by the parent, migrated already).
// It returns nil when env is not set: the test was run on its own, not as
// a Child, and does nothing.
func ChildSQLite(t testing.TB, env string) *store.DB {
	t.Helper()
	path := os.Getenv(env)
	if path == "" {
		return nil
	}
	db, err := store.Open(context.Background(), path, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return db
}
