package cli

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestBookinfoCommandServesFromEnv(t *testing.T) {
	ip := fmt.Sprintf("127.%d.%d.%d", 1+rand.IntN(250), 1+rand.IntN(250), 1+rand.IntN(250))
	vars := map[string]string{"POD_IP": ip, "PORT": "9080", "SERVICE_VERSION": "v3", "POD_NAME": "reviews-v3-test"}
	ctx, cancel := context.WithCancel(context.Background())
	codes := make(chan int, 1)
	go func() {
		codes <- RunEnv(ctx, &Env{Args: []string{"bookinfo", "ratings"}, Stdout: io.Discard, Stderr: io.Discard,
			Getenv: func(k string) string { return vars[k] }})
	}()
	t.Cleanup(func() {
		cancel()
		if code := <-codes; code != 0 {
			t.Errorf("weft bookinfo exit code = %d", code)
		}
	})
	url := "http://" + ip + ":9080/ratings/0"
	var body string
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		resp, err := http.Get(url)
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if body = string(b); resp.StatusCode == http.StatusOK {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("ratings at %s: not answering 200 (last %v %q)", url, err, body)
		}
	}
	if !strings.Contains(body, `"Reviewer1":5`) {
		t.Errorf("ratings answered %q", body)
	}
}

func TestBookinfoAndDemoUsage(t *testing.T) {
	tests := []struct {
		name string
		args []string
		code int
		want string
	}{
		{"no app", []string{"bookinfo"}, 1, "usage: weft bookinfo"},
		{"unknown app", []string{"bookinfo", "nope"}, 1, "unknown Bookinfo app"},
		{"bad ip base", []string{"demo", "--ip-base", "nope"}, 1, "--ip-base"},
		{"stray argument", []string{"demo", "extra"}, 1, "unexpected arguments"},
		{"bad control plane ip", []string{"demo", "--control-plane-ip", "10.0.0.1"}, 1, "--control-plane-ip"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var stderr strings.Builder
			vars := map[string]string{"POD_IP": "127.0.0.1", "PORT": "1"}
			code := RunEnv(context.Background(), &Env{Args: tc.args, Stdout: io.Discard, Stderr: &stderr,
				Getenv: func(k string) string { return vars[k] }})
			if code != tc.code || !strings.Contains(stderr.String(), tc.want) {
				t.Errorf("exit %d, stderr %q; want %d and %q", code, stderr.String(), tc.code, tc.want)
			}
		})
	}
}
