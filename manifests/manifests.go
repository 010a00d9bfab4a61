// Package manifests holds weft's Helm chart (charts/weft) so that
// `weft install` renders and applies the same files Helm would.
package manifests

import "embed"

// Chart is the weft chart: charts/weft/{Chart.yaml,values*.yaml,crds/,templates/}.
//
//go:embed charts/weft
var Chart embed.FS

// ChartDir is the chart's directory inside Chart.
const ChartDir = "charts/weft"
