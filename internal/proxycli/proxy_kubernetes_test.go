package proxycli

import (
	"io"
	"strings"
	"testing"
)

func TestKubernetesIdentity(t *testing.T) {
	t.Parallel()
	downward := map[string]string{"POD_NAME": "reviews-v2-5d8f", "POD_NAMESPACE": "bookinfo", "INSTANCE_IP": "10.244.0.7", "SERVICE_ACCOUNT": "bookinfo-reviews"}
	tests := []struct {
		name    string
		args    []string
		env     map[string]string
		want    [4]string // name, namespace, ip, service account
		wantErr string
	}{
		{"downward API", []string{"--kubernetes"}, downward, [4]string{"reviews-v2-5d8f", "bookinfo", "10.244.0.7", "bookinfo-reviews"}, ""},
		{"flags win", []string{"--kubernetes", "--name", "x", "--ip", "10.0.0.1"}, downward, [4]string{"x", "bookinfo", "10.0.0.1", "bookinfo-reviews"}, ""},
		{"no pod IP", []string{"--kubernetes"}, map[string]string{"POD_NAME": "a"}, [4]string{}, "INSTANCE_IP"},
		{"no auto-registration", []string{"--kubernetes", "--service", "reviews"}, downward, [4]string{}, "auto-register"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			env := &Env{Stderr: io.Discard, Getenv: func(k string) string { return tt.env[k] }}
			fs := newFlags(env, "proxy")
			f := addProxyFlags(fs, sidecarDefaults)
			if err := fs.Parse(tt.args); err != nil {
				t.Fatal(err)
			}
			err := f.kubernetesIdentity(fs, env)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			o := f.opts
			if got := [4]string{o.Name, o.Namespace, f.ip, o.ServiceAccount}; got != tt.want || !o.Capture {
				t.Errorf("identity %v capture %v, want %v capture true", got, o.Capture, tt.want)
			}
		})
	}
}
