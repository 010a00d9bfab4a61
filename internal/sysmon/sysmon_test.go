package sysmon

import (
	"slices"
	"testing"
)

func TestEnv(t *testing.T) {
	tests := []struct {
		name    string
		in      []string
		want    []string
		changed bool
	}{
		{"no GODEBUG", []string{"HOME=/root"}, []string{"HOME=/root", "GODEBUG=" + Setting}, true},
		{"empty GODEBUG", []string{"GODEBUG=", "A=b"}, []string{"GODEBUG=" + Setting, "A=b"}, true},
		{"other settings kept", []string{"GODEBUG=http2client=0,netdns=go"}, []string{"GODEBUG=http2client=0,netdns=go," + Setting}, true},
		{"user's schedtrace kept", []string{"GODEBUG=gctrace=1,schedtrace=1000"}, []string{"GODEBUG=gctrace=1,schedtrace=1000"}, false},
		{"already re-executed", []string{"GODEBUG=" + Setting}, []string{"GODEBUG=" + Setting}, false},
		{"duplicate GODEBUG dropped", []string{"GODEBUG=netdns=go", "GODEBUG=x=1"}, []string{"GODEBUG=netdns=go," + Setting}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, changed := Env(tt.in)
			if !slices.Equal(got, tt.want) || changed != tt.changed {
				t.Errorf("Env(%q) = %q, %v; want %q, %v", tt.in, got, changed, tt.want, tt.changed)
			}
		})
	}
}
