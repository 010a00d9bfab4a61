package proxycli

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

func TestIPTablesDryRun(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		args      []string
		want      []string
		notWant   []string
		wantError string
	}{
		{"injector flags", []string{"-p", "15001", "-z", "15006", "-u", "1337", "-m", "REDIRECT", "-i", "*", "-x", "10.0.0.0/8,fd00::/8", "-b", "*", "-d", "15090,15021,15020,22", "-o", "3306"},
			[]string{"-A ISTIO_INBOUND -p tcp -m tcp --dport 22 -j RETURN", "-A ISTIO_OUTPUT -d 10.0.0.0/8 -j RETURN", "-A ISTIO_OUTPUT -d fd00::/8 -j RETURN",
				"-A ISTIO_OUTPUT -p tcp -m tcp --dport 3306 -j RETURN", "-A ISTIO_OUTPUT -j ISTIO_REDIRECT", "# IPv6"},
			[]string{"ISTIO_OUTPUT_DNS -m owner"}, ""},
		{"no outbound capture", []string{"-i", "", "-b", "9080", "--ipv6=false", "--redirect-dns", "--capture-all-dns"},
			[]string{"-A ISTIO_INBOUND -p tcp -m tcp --dport 9080 -j ISTIO_IN_REDIRECT", "-A ISTIO_OUTPUT_DNS -p udp -m udp --dport 53 -j REDIRECT --to-ports 15053"},
			[]string{"-j ISTIO_REDIRECT", "# IPv6"}, ""},
		{"bad port", []string{"-d", "ssh"}, nil, nil, `-d "ssh"`},
		{"tproxy", []string{"-m", "TPROXY"}, nil, nil, "only REDIRECT"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var out, errb bytes.Buffer
			env := &Env{Args: append([]string{"iptables", "--dry-run"}, tt.args...), Stdout: &out, Stderr: &errb, Getenv: func(string) string { return "" }}
			code := RunEnv(context.Background(), env)
			if tt.wantError != "" {
				if code == 0 || !strings.Contains(errb.String(), tt.wantError) {
					t.Fatalf("exit %d, stderr %q, want an error containing %q", code, errb.String(), tt.wantError)
				}
				return
			}
			if code != 0 {
				t.Fatalf("exit %d: %s", code, errb.String())
			}
			for _, w := range tt.want {
				if !strings.Contains(out.String(), w) {
					t.Errorf("output lacks %q:\n%s", w, out.String())
				}
			}
			for _, w := range tt.notWant {
				if strings.Contains(out.String(), w) {
					t.Errorf("output has %q:\n%s", w, out.String())
				}
			}
		})
	}
}
