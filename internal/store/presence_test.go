//go:build unix

package store_test

import (
	"path/filepath"
	"testing"

	"github.com/consentry/consentry/internal/store/storetest"
)

// presenceChild is the environment variable that makes
// TestPresenceHolderProcess hold a presence on the SQLite file it names,
// as a process of its own that the test kills.
const presenceChild = "CONSENTRY_TEST_PRESENCE_CHILD"

// TestPresenceHolderProcess is the child of TestPresenceEndsWithItsProcess:
// it holds the presence "jobs" on the database its environment names,
// says so, and waits to be killed. Run on its own, it does nothing.
func TestPresenceHolderProcess(t *testing.T) {
	db := storetest.ChildSQLite(t, presenceChild)
	if db == nil {
		return
	}
	if _, _, err := db.HoldPresence("jobs", func() error { return nil }); err != nil {
		t.Fatal(err)
	}
	storetest.ChildReady()
}

// A holder finds itself alone, and runs what it may then do, only when no
// other holder is alive: not while another process holds the presence,
// nor while another holder in this process does; at once after the other
// process was killed with SIGKILL, which leaves it no chance to let go.
func TestPresenceEndsWithItsProcess(t *testing.T) {
	path := filepath.Join(t.TempDir(), "consentry.db")
	db := storetest.OpenSQLiteAt(t, path)
	hold := func() (func(), bool) {
		t.Helper()
		ran := false
		release, alone, err := db.HoldPresence("jobs", func() error { ran = true; return nil })
		if err != nil {
			t.Fatal(err)
		}
		if ran != alone {
			t.Fatalf("alone %v, but what it may do alone ran: %v", alone, ran)
		}
		return release, alone
	}

	kill := storetest.Child(t, "TestPresenceHolderProcess", presenceChild+"="+path)
	release, alone := hold()
	release()
	if alone {
		t.Fatal("alone while another process holds the presence")
	}
	kill()
	first, alone := hold()
	if !alone {
		t.Fatal("not alone after the other process was killed")
	}
	second, alone := hold()
	if alone {
		t.Fatal("alone while another holder in this process holds the presence")
	}
	first()
	again, alone := hold()
	again()
	if alone {
		t.Fatal("alone while the second holder holds the presence")
	}
	second()
	last, alone := hold()
	defer last()
	if !alone {
		t.Fatal("not alone once every holder let go")
	}
}

// On PostgreSQL no instance is ever alone: several share the database,
// and what one runs is never taken from it by another's start.
func TestNoPresenceOnPostgres(t *testing.T) {
	db := storetest.OpenPostgres(t)
	ran := false
	release, alone, err := db.HoldPresence("jobs", func() error { ran = true; return nil })
	defer release()
	if err != nil || alone || ran {
		t.Fatalf("alone %v, ran %v, err %v", alone, ran, err)
	}
}
