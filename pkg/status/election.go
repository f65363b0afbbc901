package status

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
	"k8s.io/client-go/tools/record"
)

// Election configures the Lease replicas compete for.
type Election struct {
	// Namespace and Name locate the Lease (--election-id is the name).
	// Namespace defaults to the pod's namespace.
	Namespace, Name string
	// Identity is this replica's name in the Lease: the pod name in a
	// cluster, hostname_pid otherwise.
	Identity string
	// TTL is how long a leader may be gone before another replica takes
	// over (--election-ttl); renewals happen well inside it.
	TTL time.Duration
}

func (e *Election) complete(cfg Config) error {
	if e.Name == "" {
		return fmt.Errorf("--election-id is empty")
	}
	if e.Namespace == "" {
		e.Namespace = cfg.PodNamespace
	}
	if e.Namespace == "" {
		return fmt.Errorf("no namespace for the election Lease: set POD_NAMESPACE")
	}
	if e.Identity == "" {
		e.Identity = DefaultIdentity(cfg.PodName)
	}
	if e.TTL <= 0 {
		e.TTL = 30 * time.Second
	}
	if e.TTL < 2*time.Second {
		return fmt.Errorf("--election-ttl %s: want at least 2s", e.TTL)
	}
	return nil
}

// DefaultIdentity is podName when set, else hostname_pid, unique among
// replicas on one machine.
func DefaultIdentity(podName string) string {
	if podName != "" {
		return podName
	}
	host, _ := os.Hostname()
	return strings.Trim(host+"_"+strconv.Itoa(os.Getpid()), "_")
}

// Run records Events, competes for the Lease and, while holding it, writes
// status, until ctx is done; then it releases the Lease so another replica
// takes over at once. Losing the Lease (an API server outage longer than
// the renew deadline) makes this replica a candidate again: it keeps
// serving traffic either way.
func (w *Writer) Run(ctx context.Context) error {
	e := w.cfg.Election
	bc := record.NewBroadcaster(record.WithContext(ctx))
	defer bc.Shutdown()
	bc.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: w.cfg.Client.CoreV1().Events("")})
	w.recorder = bc.NewRecorder(scheme.Scheme, corev1.EventSource{Component: "tidegate", Host: e.Identity})

	lock := &resourcelock.LeaseLock{
		LeaseMeta:  metav1.ObjectMeta{Namespace: e.Namespace, Name: e.Name},
		Client:     w.cfg.Client.CoordinationV1(),
		LockConfig: resourcelock.ResourceLockConfig{Identity: e.Identity, EventRecorder: w.recorder},
	}
	log := w.log.With("lease", e.Namespace+"/"+e.Name, "identity", e.Identity)
	for ctx.Err() == nil {
		le, err := leaderelection.NewLeaderElector(leaderelection.LeaderElectionConfig{
			Lock: lock,
			// The same proportions as ingress-nginx.
			LeaseDuration:   e.TTL,
			RenewDeadline:   e.TTL / 2,
			RetryPeriod:     e.TTL / 4,
			ReleaseOnCancel: true,
			Name:            e.Name,
			Callbacks: leaderelection.LeaderCallbacks{
				OnStartedLeading: func(lctx context.Context) {
					log.Info("became the leader: writing Ingress status")
					w.leading.Store(true)
					w.metrics.leader.Set(1)
					w.lead(lctx)
				},
				OnStoppedLeading: func() {
					w.leading.Store(false)
					w.metrics.leader.Set(0)
					log.Info("not the leader any more")
				},
				OnNewLeader: func(id string) {
					if id != e.Identity {
						log.Info("another replica leads", "leader", id)
					}
				},
			},
		})
		if err != nil {
			return fmt.Errorf("leader election: %w", err)
		}
		le.Run(ctx)
	}
	return nil
}
