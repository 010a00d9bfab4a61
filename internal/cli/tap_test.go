package cli

import (
	"strings"
	"testing"
	"time"

	"github.com/weft-mesh/weft/internal/tap"
)

func TestPrintTapEvent(t *testing.T) {
	at := time.Date(2026, 12, 8, 1, 2, 3, 456e6, time.UTC)
	tests := []struct {
		name string
		e    tap.Event
		want string // the line after its local time
	}{
		{"inbound", tap.Event{Time: at, Proxy: "reviews-v2-1.default", Direction: tap.Inbound, Source: "productpage-v1", Destination: "reviews-v2",
			Method: "GET", Authority: "reviews:9080", Path: "/reviews/0", Status: 200, LatencyMillis: 3.25, Route: "default",
			UpstreamHost: "127.0.1.5:9080", TraceID: "4bf92f3577b34da6a3ce929d0e0e4736"},
			"reviews-v2-1.default in  productpage-v1 -> reviews-v2 :method=GET :authority=reviews:9080 :path=/reviews/0 :status=200 flags=- latency=3.2ms route=default upstream=127.0.1.5:9080 trace=4bf92f3577b34da6a3ce929d0e0e4736"},
		{"outbound with no upstream", tap.Event{Time: at, Proxy: "productpage-v1-1.default", Direction: tap.Outbound, Source: "productpage-v1",
			Destination: "reviews:9081", Method: "GET", Authority: "reviews:9081", Path: "/", Status: 404, ResponseFlags: "NR"},
			"productpage-v1-1.default out productpage-v1 -> reviews:9081 :method=GET :authority=reviews:9081 :path=/ :status=404 flags=NR latency=0.0ms route=- upstream=- trace=-"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var b strings.Builder
			if err := printTapEvent(&b, &tt.e); err != nil {
				t.Fatal(err)
			}
			line := strings.TrimSuffix(b.String(), "\n")
			stamp := at.Local().Format("15:04:05.000") + " "
			if !strings.HasPrefix(line, stamp) || line[len(stamp):] != tt.want {
				t.Fatalf("got  %q\nwant %q", line, stamp+tt.want)
			}
		})
	}
}
