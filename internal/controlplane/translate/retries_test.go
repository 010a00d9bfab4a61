package translate

import (
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"
	networking "istio.io/api/networking/v1alpha3"
)

func TestRetryPolicy(t *testing.T) {
	tests := []struct {
		name    string
		in      *networking.HTTPRetry
		nilWant bool
		on      string
		codes   []uint32
		retries uint32
		perTry  time.Duration
	}{
		{name: "Istio's default when unset", on: defaultRetryOn, codes: []uint32{503}, retries: 2},
		{name: "attempts 0 disables", in: &networking.HTTPRetry{Attempts: 0}, nilWant: true},
		{name: "attempts only keeps the default conditions", in: &networking.HTTPRetry{Attempts: 3}, on: defaultRetryOn, codes: []uint32{503}, retries: 3},
		{name: "retryOn with codes and gRPC", in: &networking.HTTPRetry{Attempts: 4, PerTryTimeout: durationpb.New(2 * time.Second),
			RetryOn: "5xx, gateway-error,409,unavailable,503"}, on: "5xx,gateway-error,retriable-status-codes,unavailable", codes: []uint32{409, 503}, retries: 4, perTry: 2 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := retryPolicy(tt.in)
			if tt.nilWant {
				if p != nil {
					t.Fatalf("got %v, want no policy", p)
				}
				return
			}
			if p.GetRetryOn() != tt.on || p.GetNumRetries().GetValue() != tt.retries || p.GetPerTryTimeout().AsDuration() != tt.perTry {
				t.Errorf("got on=%q retries=%d perTry=%v", p.GetRetryOn(), p.GetNumRetries().GetValue(), p.GetPerTryTimeout().AsDuration())
			}
			if len(p.GetRetriableStatusCodes()) != len(tt.codes) {
				t.Fatalf("codes %v, want %v", p.GetRetriableStatusCodes(), tt.codes)
			}
			for i, c := range tt.codes {
				if p.GetRetriableStatusCodes()[i] != c {
					t.Errorf("codes %v, want %v", p.GetRetriableStatusCodes(), tt.codes)
				}
			}
			if len(p.GetRetryHostPredicate()) != 1 || p.GetHostSelectionRetryMaxAttempts() != 5 {
				t.Errorf("want previous_hosts with 5 selection attempts: %v", p)
			}
			if err := p.Validate(); err != nil {
				t.Error(err)
			}
		})
	}
}
