package config

import (
	"os"
	"testing"
)

func BenchmarkParse(b *testing.B) {
	data, err := os.ReadFile(samplesDir + "/bookinfo/destination-rule-all.yaml")
	if err != nil {
		b.Skip(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Parse("dr.yaml", data); err != nil {
			b.Fatal(err)
		}
	}
}
