package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// startProfiles takes a CPU profile of every weft proxy of cfg during the
// run (from its admin's /debug/pprof/profile, for the run's length less a
// second) when o.profile is set, and returns a function that waits for
// them and saves them as o.profile/NAME-SIDE-N.pprof.
func startProfiles(ctx context.Context, cfg config, o options) func() error {
	if o.profile == "" || len(cfg.admins) == 0 {
		return func() error { return nil }
	}
	secs := max(1, int((o.duration-time.Second)/time.Second))
	var wg sync.WaitGroup
	errs := make([]error, len(cfg.admins))
	for i, addr := range cfg.admins {
		side := [...]string{"client", "server"}[min(i, 1)]
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = fetchProfile(ctx, fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", addr, secs), o.profile, cfg.name+"-"+side)
		}()
	}
	return func() error { wg.Wait(); return errors.Join(errs...) }
}

// fetchProfile saves the profile at url as dir/base-N.pprof, N the first free number.
func fetchProfile(ctx context.Context, url, dir, base string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := (&http.Client{Transport: &http.Transport{Proxy: nil}}).Do(req)
	if err != nil {
		return fmt.Errorf("profiling: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("profiling %s: HTTP %d", url, resp.StatusCode)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for n := 1; ; n++ {
		f, err := os.OpenFile(filepath.Join(dir, fmt.Sprintf("%s-%d.pprof", base, n)), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
		if errors.Is(err, os.ErrExist) {
			continue
		}
		if err != nil {
			return err
		}
		_, err = io.Copy(f, resp.Body)
		return errors.Join(err, f.Close())
	}
}
