// Package loopnode is a test node: it plays the kubelet (and the scheduler)
// for a real kube-apiserver + kube-controller-manager, without containers.
//
// It registers a Ready Node, binds every pending Pod to it, and for each
// Pod runs an in-process echo backend (pkg/echo, plus a `?sleep=` for slow
// requests) on an address of its own inside the test network namespace
// (test/netns). A Pod is reported Running and Ready only once its server
// answers. When a Pod is deleted it does what a kubelet does: keeps serving
// through the preStop sleep (or the grace period), marks the Pod not ready,
// stops the server gracefully and removes the Pod. Kill stops a server
// abruptly instead, the way a crashed process goes.
//
// Every server counts the requests it answers and when the first one came,
// so tests can tell how soon a Pod got traffic after it became Ready.
package loopnode

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"

	"github.com/tidegate/tidegate/test/netns"
)

// ProbeHeader marks the node's own readiness requests; servers do not
// count them as traffic.
const ProbeHeader = "X-Loopnode-Probe"

// DefaultPort is the port a Pod's server listens on when its first
// container declares none.
const DefaultPort = 8080

// maxSleep caps ?sleep= so a typo cannot hang a test.
const maxSleep = 30 * time.Second

// Options configure Start.
type Options struct {
	// Client is an admin client of the API server.
	Client kubernetes.Interface
	// NS is the namespace whose addresses the Pods get.
	NS *netns.NS
	// Name of the Node. Default "loopnode".
	Name string
	// KilledReadyFor is how long a killed Pod stays Ready in the API before
	// the node notices (a kubelet's probe period). Default 1s.
	KilledReadyFor time.Duration
	// Logf receives one line per Pod lifecycle step. Default: discard.
	Logf func(format string, args ...any)
}

// Node is a running loopback node.
type Node struct {
	opts   Options
	client kubernetes.Interface
	cancel context.CancelFunc
	ctx    context.Context
	done   sync.WaitGroup

	mu   sync.Mutex
	pods map[types.UID]*pod // every Pod ever run, for Stats
	bind map[types.UID]bool // bindings sent
}

// Stats describe one Pod's server.
type Stats struct {
	Namespace, Name string
	UID             types.UID
	IP              string
	Port            int
	// Ready is when the API accepted Ready=True (zero if never).
	Ready time.Time
	// FirstRequest is when the server saw its first request that was not
	// the node's own probe (zero if none).
	FirstRequest time.Time
	// Requests counts requests answered (probes excluded).
	Requests int64
	// State: starting, ready, draining, stopped, killed.
	State string
}

// Start registers the Node and starts watching Pods. Stop ends it.
func Start(ctx context.Context, opts Options) (*Node, error) {
	if opts.Name == "" {
		opts.Name = "loopnode"
	}
	if opts.KilledReadyFor <= 0 {
		opts.KilledReadyFor = time.Second
	}
	if opts.Logf == nil {
		opts.Logf = func(string, ...any) {}
	}
	n := &Node{opts: opts, client: opts.Client, pods: map[types.UID]*pod{}, bind: map[types.UID]bool{}}
	if err := n.register(ctx); err != nil {
		return nil, err
	}
	n.ctx, n.cancel = context.WithCancel(context.Background())
	factory := informers.NewSharedInformerFactory(n.client, 0)
	inf := factory.Core().V1().Pods().Informer()
	if _, err := inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { n.observe(obj) },
		UpdateFunc: func(_, obj any) { n.observe(obj) },
		DeleteFunc: func(obj any) {
			if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
				obj = d.Obj
			}
			if p, ok := obj.(*corev1.Pod); ok {
				n.gone(p)
			}
		},
	}); err != nil {
		n.cancel()
		return nil, err
	}
	factory.Start(n.ctx.Done())
	if !cache.WaitForCacheSync(ctx.Done(), inf.HasSynced) {
		n.cancel()
		return nil, errors.New("loopnode: pod informer did not sync")
	}
	return n, nil
}

// register creates the Node (or takes over an existing one) and reports it
// Ready.
func (n *Node) register(ctx context.Context) error {
	nodes := n.client.CoreV1().Nodes()
	node, err := nodes.Create(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: n.opts.Name,
		Labels: map[string]string{corev1.LabelHostname: n.opts.Name}}}, metav1.CreateOptions{})
	if apierrors.IsAlreadyExists(err) {
		node, err = nodes.Get(ctx, n.opts.Name, metav1.GetOptions{})
	}
	if err != nil {
		return fmt.Errorf("loopnode: register node %s: %w", n.opts.Name, err)
	}
	now := metav1.Now()
	node.Status = corev1.NodeStatus{
		Phase: corev1.NodeRunning,
		Conditions: []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue,
			Reason: "LoopnodeReady", LastHeartbeatTime: now, LastTransitionTime: now}},
		Addresses: []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: n.opts.NS.PeerIP},
			{Type: corev1.NodeHostName, Address: n.opts.Name}},
		Capacity: corev1.ResourceList{corev1.ResourcePods: resource.MustParse("250"),
			corev1.ResourceCPU: resource.MustParse("64"), corev1.ResourceMemory: resource.MustParse("256Gi")},
	}
	node.Status.Allocatable = node.Status.Capacity
	if _, err := nodes.UpdateStatus(ctx, node, metav1.UpdateOptions{}); err != nil {
		return fmt.Errorf("loopnode: node %s status: %w", n.opts.Name, err)
	}
	return nil
}

// Stop stops watching and stops every server (gracefully); Pods are left
// in the API.
func (n *Node) Stop() {
	n.cancel()
	n.mu.Lock()
	for _, p := range n.pods {
		p.closeGone()
	}
	n.mu.Unlock()
	n.done.Wait()
}

// Stats lists the Pods of namespace (all namespaces if "") the node has
// run, in the order they started.
func (n *Node) Stats(namespace string) []Stats {
	n.mu.Lock()
	defer n.mu.Unlock()
	var out []Stats
	for _, p := range n.pods {
		if namespace == "" || p.namespace == namespace {
			out = append(out, p.stats())
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Ready.Equal(out[j].Ready) {
			return out[i].Name < out[j].Name
		}
		if out[i].Ready.IsZero() != out[j].Ready.IsZero() {
			return !out[i].Ready.IsZero()
		}
		return out[i].Ready.Before(out[j].Ready)
	})
	return out
}

// Kill stops the server of Pod namespace/name abruptly (listener closed,
// every connection reset, in-flight requests cut), as when a process
// crashes. The Pod stays Ready in the API for KilledReadyFor, then is
// marked not ready and removed.
func (n *Node) Kill(namespace, name string) error {
	n.mu.Lock()
	var target *pod
	for _, p := range n.pods {
		if p.namespace == namespace && p.name == name && p.state() == "ready" {
			target = p
		}
	}
	n.mu.Unlock()
	if target == nil {
		return fmt.Errorf("loopnode: no ready pod %s/%s", namespace, name)
	}
	select {
	case target.kill <- struct{}{}:
	default:
		return fmt.Errorf("loopnode: pod %s/%s is already being killed", namespace, name)
	}
	<-target.killed
	return nil
}

// observe binds an unscheduled Pod, and hands a Pod of this node to its
// worker (starting one for a new Pod).
func (n *Node) observe(obj any) {
	po, ok := obj.(*corev1.Pod)
	if !ok {
		return
	}
	if po.Spec.NodeName == "" {
		if po.DeletionTimestamp != nil {
			return
		}
		n.mu.Lock()
		sent := n.bind[po.UID]
		n.bind[po.UID] = true
		n.mu.Unlock()
		if !sent {
			n.done.Go(func() { n.bindPod(po) })
		}
		return
	}
	if po.Spec.NodeName != n.opts.Name {
		return
	}
	n.mu.Lock()
	p := n.pods[po.UID]
	if p == nil {
		if n.ctx.Err() != nil {
			n.mu.Unlock()
			return
		}
		p = newPod(n, po)
		n.pods[po.UID] = p
		n.done.Go(p.run)
	}
	n.mu.Unlock()
	p.update(po)
}

func (n *Node) gone(po *corev1.Pod) {
	n.mu.Lock()
	p := n.pods[po.UID]
	delete(n.bind, po.UID)
	n.mu.Unlock()
	if p != nil {
		p.closeGone()
	}
}

func (n *Node) bindPod(po *corev1.Pod) {
	b := &corev1.Binding{ObjectMeta: metav1.ObjectMeta{Namespace: po.Namespace, Name: po.Name, UID: po.UID},
		Target: corev1.ObjectReference{Kind: "Node", Name: n.opts.Name}}
	err := n.client.CoreV1().Pods(po.Namespace).Bind(n.ctx, b, metav1.CreateOptions{})
	if err != nil && n.ctx.Err() == nil {
		n.opts.Logf("loopnode: bind %s/%s: %v", po.Namespace, po.Name, err)
	}
}
