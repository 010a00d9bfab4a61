package main

import (
	"strings"
	"testing"
	"time"
)

func TestScanFuzz(t *testing.T) {
	tests := []struct {
		name string
		out  string
		want fuzzResult
	}{
		{"passed", "fuzz: elapsed: 0s, gathering baseline coverage: 0/4 completed\n" +
			"fuzz: elapsed: 3s, execs: 1200 (400/sec), new interesting: 2 (total: 6)\n" +
			"fuzz: elapsed: 10m0s, execs: 250123 (416/sec), new interesting: 17 (total: 21)\nPASS\n",
			fuzzResult{elapsed: 10 * time.Minute, execs: 250123, interesting: 17, corpus: 21}},
		{"finding", "fuzz: elapsed: 6s, execs: 900 (150/sec), new interesting: 1 (total: 5)\n" +
			"--- FAIL: FuzzX (6.01s)\n    Failing input written to testdata/fuzz/FuzzX/0123abcd\n",
			fuzzResult{elapsed: 6 * time.Second, execs: 900, interesting: 1, corpus: 5, finding: "pkg/testdata/fuzz/FuzzX/0123abcd"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tgt := fuzzTarget{pkg: "pkg", name: "FuzzX"}
			got := scanFuzz(strings.NewReader(tt.out), tgt)
			tt.want.target = tgt
			if got != tt.want {
				t.Errorf("scanFuzz = %+v, want %+v", got, tt.want)
			}
		})
	}
}
