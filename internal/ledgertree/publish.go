package ledgertree

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"time"
)

// ToFile returns a Publish that writes each new checkpoint to path, in
// place of the one before (written aside and renamed, so that the file
// always holds one whole checkpoint): a copy for a backup, another disk
// or a machine that syncs it away.
func ToFile(path string) func(context.Context, *Checkpoint) error {
	return func(_ context.Context, c *Checkpoint) error {
		tmp, err := os.CreateTemp(filepath.Dir(path), ".checkpoint-*")
		if err != nil {
			return err
		}
		defer os.Remove(tmp.Name())
		if _, err := tmp.WriteString(c.Note); err != nil {
			tmp.Close()
			return err
		}
		if err := tmp.Sync(); err != nil {
			tmp.Close()
			return err
		}
		if err := tmp.Close(); err != nil {
			return err
		}
		return os.Rename(tmp.Name(), path)
	}
}

// ToURL returns a Publish that posts each new checkpoint, as text/plain,
// to url: a witness, a log of the operator's auditor, a storage bucket's
// upload address. Any 2xx answer is success.
func ToURL(url string) func(context.Context, *Checkpoint) error {
	client := &http.Client{Timeout: 10 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	}}
	return func(ctx context.Context, c *Checkpoint) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader([]byte(c.Note)))
		if err != nil {
			return err
		}
		req.Header.Set("Content-Type", "text/plain; charset=utf-8")
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		if resp.StatusCode/100 != 2 {
			return fmt.Errorf("the checkpoint URL answered %s", resp.Status)
		}
		return nil
	}
}

// Both returns a Publish that runs each of fns, and returns the first
// error after trying them all.
func Both(fns ...func(context.Context, *Checkpoint) error) func(context.Context, *Checkpoint) error {
	return func(ctx context.Context, c *Checkpoint) error {
		var first error
		for _, fn := range fns {
			if err := fn(ctx, c); err != nil && first == nil {
				first = err
			}
		}
		return first
	}
}
