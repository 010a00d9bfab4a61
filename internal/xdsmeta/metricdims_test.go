package xdsmeta

import "testing"

func TestParseMetricDimension(t *testing.T) {
	tests := []struct {
		expr string
		want MetricDimension
		err  bool
	}{
		{"request.host", MetricDimension{Attribute: DimHost}, false},
		{" response.code ", MetricDimension{Attribute: DimResponseCode}, false},
		{"request.headers['x-team']", MetricDimension{Attribute: DimHeader, Header: "x-team"}, false},
		{`request.headers["User-Agent"]`, MetricDimension{Attribute: DimHeader, Header: "User-Agent"}, false},
		{"'laptop'", MetricDimension{Attribute: DimLiteral, Literal: "laptop"}, false},
		{"size(request.headers)", MetricDimension{}, true},
		{"request.headers[x]", MetricDimension{}, true},
		{"'", MetricDimension{}, true},
		{"", MetricDimension{}, true},
	}
	for _, tt := range tests {
		got, err := ParseMetricDimension(tt.expr)
		if (err != nil) != tt.err || got != tt.want {
			t.Errorf("ParseMetricDimension(%q) = %+v, %v; want %+v, error %v", tt.expr, got, err, tt.want, tt.err)
		}
	}
}
