package main

import (
	"context"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// TestReadmeQuickStart runs the README's quick start, as written, against a
// fresh server. Only the address is changed, to the test server's free port.
func TestReadmeQuickStart(t *testing.T) {
	if _, err := exec.LookPath("curl"); err != nil {
		t.Skip("curl is not installed")
	}
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, block, ok := strings.Cut(string(readme), "<!-- quickstart -->")
	block, _, ok2 := strings.Cut(block, "<!-- /quickstart -->")
	if !ok || !ok2 {
		t.Fatal("README has no quickstart block")
	}
	block = strings.TrimSpace(block)
	block = strings.TrimPrefix(block, "```sh")
	block = strings.TrimSuffix(block, "```")

	addr, _ := startServer(t)
	script := block
	if strings.Count(block, "127.0.0.1:8080") != 1 {
		t.Errorf("the quick start names the address %d times, want once, in ADDR", strings.Count(block, "127.0.0.1:8080"))
	}
	script = strings.ReplaceAll(block, "127.0.0.1:8080", addr)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute) // a stalled call fails the test
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", "-euo", "pipefail", "-c", script)
	cmd.Dir = "../.." // the commands are run from the repository root
	cmd.Env = os.Environ()
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("quick start failed: %v\n%s", err, out)
	}
	for _, want := range []string{`"email":"anna@example.com"`, `"consents":[{`, `"state":"withdrawn"`, `"purpose":"Sales and service","state":"none"`, `"ok":true`} {
		if !strings.Contains(string(out), want) {
			t.Errorf("quick start output lacks %s:\n%s", want, out)
		}
	}
}
