package discovery

import (
	"context"
	"log/slog"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
)

// LeaseName is the Lease (in the control plane's namespace) that elects the
// one replica writing status.
const LeaseName = "weft-status-leader"

// Leader-election timings (client-go's usual ones).
const (
	DefaultLeaseDuration = 15 * time.Second
	DefaultRenewDeadline = 10 * time.Second
	DefaultRetryPeriod   = 2 * time.Second
)

// election is how this replica takes part in the status writer's election.
type election struct {
	client    kubernetes.Interface
	namespace string
	identity  string
	lease     time.Duration
	renew     time.Duration
	retry     time.Duration
	log       *slog.Logger
}

// run campaigns until ctx ends, calling started when this replica becomes
// the leader and stopped when it no longer is; it campaigns again after a
// loss. Leadership is released when ctx ends, so another replica takes
// over at once.
func (e election) run(ctx context.Context, started, stopped func()) {
	lock := &resourcelock.LeaseLock{
		LeaseMeta:  metav1.ObjectMeta{Name: LeaseName, Namespace: e.namespace},
		Client:     e.client.CoordinationV1(),
		LockConfig: resourcelock.ResourceLockConfig{Identity: e.identity},
	}
	for ctx.Err() == nil {
		le, err := leaderelection.NewLeaderElector(leaderelection.LeaderElectionConfig{
			Lock: lock, Name: LeaseName, ReleaseOnCancel: true,
			LeaseDuration: e.lease, RenewDeadline: e.renew, RetryPeriod: e.retry,
			Callbacks: leaderelection.LeaderCallbacks{
				OnStartedLeading: func(context.Context) {
					e.log.Info("writing Istio config status: this replica is the leader", "lease", e.namespace+"/"+LeaseName, "identity", e.identity)
					started()
				},
				OnStoppedLeading: stopped,
			},
		})
		if err != nil { // only bad timings; Options' defaults are valid
			e.log.Error("leader election for status writing; status is not written", "error", err)
			return
		}
		le.Run(ctx)
	}
}
