package e2e

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"reflect"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/tidegate/tidegate/test/harness"
	"github.com/tidegate/tidegate/test/kubeapi"
	"github.com/tidegate/tidegate/test/loopnode"
	"github.com/tidegate/tidegate/test/netns"
)

// zdCluster is a real control plane without a kubelet: kube-apiserver,
// kube-controller-manager (Deployments, ReplicaSets, EndpointSlices) and a
// loopback node that runs every Pod as an in-process echo server.
type zdCluster struct {
	*cluster
	node *loopnode.Node
}

// TestZeroDowntime is issue 8: rollouts, scaling, crashes, reloads and
// tidegate's own shutdown, each under load through `tidegate controller`
// and real nginx, lose no request.
func TestZeroDowntime(t *testing.T) {
	if testing.Short() {
		t.Skip("needs a kube-apiserver and kube-controller-manager")
	}
	if _, err := exec.LookPath("kubectl"); err != nil {
		t.Fatalf("kubectl is not installed: %v", err)
	}
	root, err := kubeapi.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	srv := kubeapi.Start(t) // first: it skips when TIDEGATE_SKIP_KUBE=1
	ns := netns.Acquire(t)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	begin := time.Now()
	if err := srv.StartControllerManager(ctx, kubeapi.ControllerManagerOptions{}); err != nil {
		srv.DumpLogs(t.Logf, 40)
		t.Fatal(err)
	}
	t.Logf("kube-controller-manager healthy in %s", time.Since(begin).Round(time.Millisecond))
	node, err := loopnode.Start(ctx, loopnode.Options{Client: srv.Client, NS: ns, Logf: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(node.Stop)
	c := &zdCluster{cluster: &cluster{Server: srv, t: t, root: root}, node: node}
	c.apply(t, "default", `apiVersion: networking.k8s.io/v1
kind: IngressClass
metadata: {name: tidegate}
spec: {controller: tidegate.io/ingress-controller}`)

	const zns = "zd"
	c.namespace(t, zns)
	if err := srv.WaitServiceAccount(ctx, zns, "default"); err != nil {
		t.Fatal(err)
	}
	tg := startController(t, harness.Controller{Kubeconfig: c.Kubeconfig, Args: []string{
		"--watch-namespace", zns, "--configmap", zns + "/tidegate", "--election-id", "tidegate-zd",
		"--publish-status-address", "198.51.100.30"}})

	var summary []string
	report := func(name string, r *loadResult, extra string) {
		line := fmt.Sprintf("%-10s %s%s", name, r.summary(), extra)
		summary = append(summary, line)
	}
	t.Cleanup(func() {
		t.Logf("SUMMARY (issue 8, zero downtime):\n  %s", strings.Join(summary, "\n  "))
	})

	t.Run("RolloutRestart", func(t *testing.T) { testRolloutRestart(t, c, tg, zns, report) })
	t.Run("Scale", func(t *testing.T) { testScale(t, c, tg, zns, report) })
	t.Run("KillWithoutGrace", func(t *testing.T) { testKillWithoutGrace(t, c, tg, zns, report) })
	t.Run("ReloadDuringLoad", func(t *testing.T) { testReloadDuringLoad(t, c, tg, zns, report) })
	t.Run("TidegateShutdown", func(t *testing.T) { testTidegateShutdown(t, c, zns, report) })
}

// testRolloutRestart: `kubectl rollout restart` of 4 replicas under load
// loses nothing and reloads nothing.
func testRolloutRestart(t *testing.T, c *zdCluster, tg *tidegate, ns string, report reportFunc) {
	const app, host = "web", "web.zd.test"
	c.deploy(t, ns, app, host, 4, 2)
	old := c.waitReadyPods(t, ns, app, 4)
	tg.waitServedBy(host, old)

	slices := watchSlices(t, c, ns)
	reloads := tg.SettledReloads()
	workers := tg.liveWorkers()
	l := startLoad(t, tg, host, loadOptions{Rate: 200})
	time.Sleep(time.Second)
	begin := time.Now()
	c.kubectl(t, "", "-n", ns, "rollout", "restart", "deployment/"+app)
	c.kubectl(t, "", "-n", ns, "rollout", "status", "deployment/"+app, "--timeout=60s")
	rolled := time.Since(begin)
	c.waitPodsGone(t, ns, old)
	drained := time.Since(begin)
	time.Sleep(time.Second)
	r := l.stop()

	t.Logf("rollout restart: rolled out in %s, old pods gone after %s", rolled.Round(time.Millisecond), drained.Round(time.Millisecond))
	t.Logf("load: %s", r.detail())
	newPods := c.waitReadyPods(t, ns, app, 4)
	isNew := map[string]bool{}
	for _, p := range newPods {
		isNew[p] = true
		if r.ByPod[p] == 0 {
			t.Errorf("new pod %s got no traffic during the load", p)
		}
	}
	var fresh []loopnode.Stats
	for _, s := range c.node.Stats(ns) {
		if isNew[s.Name] {
			fresh = append(fresh, s)
		}
	}
	lat := firstTraffic(t, fresh, slices)
	r.assertNoFailure(t)
	assertNoReload(t, tg, workers, reloads)
	report("rollout", r, fmt.Sprintf("; rollout %s, old pods gone %s; %s", rolled.Round(time.Millisecond), drained.Round(time.Millisecond), lat))
}

// testScale: 2 → 10 → 1 under load: nothing lost, nothing reloaded, and
// every new pod gets traffic within a second of becoming Ready.
func testScale(t *testing.T, c *zdCluster, tg *tidegate, ns string, report reportFunc) {
	const app, host = "scale", "scale.zd.test"
	c.deploy(t, ns, app, host, 2, 2)
	first := c.waitReadyPods(t, ns, app, 2)
	tg.waitServedBy(host, first)

	slices := watchSlices(t, c, ns)
	reloads := tg.SettledReloads()
	workers := tg.liveWorkers()
	l := startLoad(t, tg, host, loadOptions{Rate: 200})
	time.Sleep(500 * time.Millisecond)
	begin := time.Now()
	c.kubectl(t, "", "-n", ns, "scale", "deployment/"+app, "--replicas=10")
	ten := c.waitReadyPods(t, ns, app, 10)
	up := time.Since(begin)
	time.Sleep(1500 * time.Millisecond) // every new pod serves a while
	begin = time.Now()
	c.kubectl(t, "", "-n", ns, "scale", "deployment/"+app, "--replicas=1")
	one := c.waitReadyPods(t, ns, app, 1)
	var gone []string
	for _, p := range ten {
		if p != one[0] {
			gone = append(gone, p)
		}
	}
	c.waitPodsGone(t, ns, gone)
	down := time.Since(begin)
	time.Sleep(time.Second)
	r := l.stop()

	t.Logf("scale: 2→10 Ready in %s, 10→1 drained in %s", up.Round(time.Millisecond), down.Round(time.Millisecond))
	t.Logf("load: %s", r.detail())
	isFirst := map[string]bool{first[0]: true, first[1]: true}
	var fresh []loopnode.Stats
	for _, s := range c.node.Stats(ns) {
		if strings.HasPrefix(s.Name, app+"-") && !isFirst[s.Name] {
			fresh = append(fresh, s)
		}
	}
	lat := firstTraffic(t, fresh, slices)
	if len(fresh) != 8 {
		t.Errorf("measured %d new pods, want 8", len(fresh))
	}
	r.assertNoFailure(t)
	assertNoReload(t, tg, workers, reloads)
	report("scale", r, "; "+lat)
}

// testKillWithoutGrace: a backend that dies abruptly (its pod still Ready
// in the API for a second) costs no idempotent request: nginx retries on
// another peer.
func testKillWithoutGrace(t *testing.T, c *zdCluster, tg *tidegate, ns string, report reportFunc) {
	const app, host = "crash", "crash.zd.test"
	c.deploy(t, ns, app, host, 3, 0)
	pods := c.waitReadyPods(t, ns, app, 3)
	tg.waitServedBy(host, pods)

	reloads := tg.SettledReloads()
	workers := tg.liveWorkers()
	// One request in ten is slow (200 ms), so some are in flight on the
	// backend at the moment it dies.
	l := startLoad(t, tg, host, loadOptions{Rate: 200, SlowEvery: 10, Slow: 200 * time.Millisecond})
	time.Sleep(time.Second)
	for _, victim := range pods[:2] {
		at := time.Now()
		if err := c.node.Kill(ns, victim); err != nil {
			t.Fatal(err)
		}
		t.Logf("killed %s at %s (Ready in the API for 1s more)", victim, at.Format("15:04:05.000"))
		c.waitPodsGone(t, ns, []string{victim})
		time.Sleep(time.Second)
	}
	c.waitReadyPods(t, ns, app, 3)
	time.Sleep(time.Second)
	r := l.stop()
	t.Logf("load: %s", r.detail())
	r.assertNoFailure(t)
	assertNoReload(t, tg, workers, reloads)
	report("kill", r, "; 2 pods killed without grace")
}

// testReloadDuringLoad: a new Ingress (a reload) while requests, slow ones
// included, run on another host over keepalive and new connections.
func testReloadDuringLoad(t *testing.T, c *zdCluster, tg *tidegate, ns string, report reportFunc) {
	const host = "web.zd.test"
	c.deploy(t, ns, "web", host, 4, 2) // as RolloutRestart left it (a no-op then)
	tg.waitServedBy(host, c.waitReadyPods(t, ns, "web", 4))
	reloads, workers := tg.Reloads(), tg.liveWorkers()
	// One request in five sleeps 1s: they are in flight across the reload.
	l := startLoad(t, tg, host, loadOptions{Rate: 200, SlowEvery: 5, Slow: time.Second})
	time.Sleep(1500 * time.Millisecond)
	begin := time.Now()
	t.Logf("new Ingress applied at %s", begin.Format("15:04:05.000"))
	c.apply(t, ns, harness.IngressYAML("late", "late.zd.test", "Prefix / web:80"))
	tg.Eventually("late.zd.test served", func() string {
		if r := tg.Get("late.zd.test", "/"); r.Status != 200 {
			return fmt.Sprintf("%d %s", r.Status, r.Body)
		}
		return ""
	})
	served := time.Since(begin)
	harness.WaitFor(t, 10*time.Second, "the reload counted", func() string {
		if got := tg.Reloads(); got <= reloads {
			return fmt.Sprintf("reloads = %d", got)
		}
		return ""
	})
	time.Sleep(2 * time.Second) // the old workers finish their slow requests
	r := l.stop()
	now := tg.liveWorkers()
	t.Logf("new Ingress served after %s; reloads %d → %d; workers %v → %v", served.Round(time.Millisecond), reloads, tg.Reloads(), workers, now)
	if reflect.DeepEqual(now, workers) {
		t.Errorf("nginx workers unchanged (%v): no reload happened", now)
	}
	t.Logf("load on %s: %s", host, r.detail())
	if r.Slow == 0 || r.SlowOK != r.Slow {
		t.Errorf("slow requests: %d of %d answered 200", r.SlowOK, r.Slow)
	}
	r.assertNoFailure(t)
	report("reload", r, fmt.Sprintf("; %d slow (1s) requests across the reload", r.Slow))
}

// testTidegateShutdown: SIGTERM → /healthz 503 → grace → nginx graceful
// quit; every request already in flight completes, slow ones included.
func testTidegateShutdown(t *testing.T, c *zdCluster, ns string, report reportFunc) {
	const host, grace = "web.zd.test", 3 * time.Second
	c.deploy(t, ns, "web", host, 4, 2) // as RolloutRestart left it (a no-op then)
	tg := startController(t, harness.Controller{Kubeconfig: c.Kubeconfig, Args: []string{
		"--watch-namespace", ns, "--configmap", ns + "/tidegate", "--update-status=false",
		"--shutdown-grace-period", grace.String(), "--stop-timeout", "15s"}})
	tg.waitServedBy(host, c.waitReadyPods(t, ns, "web", 4))

	l := startLoad(t, tg, host, loadOptions{Rate: 200})
	// Slow requests in flight through the whole shutdown: started before
	// SIGTERM, finishing after nginx was told to quit.
	slow := startLoad(t, tg, host, loadOptions{Burst: 20, Slow: grace + 1500*time.Millisecond, SlowEvery: 1})
	time.Sleep(500 * time.Millisecond)
	sigterm := time.Now()
	if err := tg.Cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	var unhealthy time.Duration
	harness.WaitFor(t, 2*time.Second, "/healthz 503", func() string {
		resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/healthz", tg.StatusPt))
		if err != nil {
			return err.Error()
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusServiceUnavailable {
			return fmt.Sprint(resp.StatusCode)
		}
		unhealthy = time.Since(sigterm)
		return ""
	})
	// More slow requests start during the grace period (a load balancer is
	// still sending until it sees the 503s).
	time.Sleep(time.Second)
	slow2 := startLoad(t, tg, host, loadOptions{Burst: 10, Slow: 2 * time.Second, SlowEvery: 1})
	// The load stops shortly before nginx stops listening: what a load
	// balancer that honours /healthz does.
	time.Sleep(grace - time.Since(sigterm) - 300*time.Millisecond)
	r := l.stop()
	ok, err := tg.Wait(30 * time.Second)
	if !ok {
		t.Fatal("tidegate still running 30s after SIGTERM")
	}
	took := time.Since(sigterm)
	if err != nil {
		t.Errorf("tidegate exit: %v", err)
	}
	s1, s2 := slow.stop(), slow2.stop()
	t.Logf("SIGTERM → /healthz 503 in %s; exited after %s (grace %s)", unhealthy.Round(time.Millisecond), took.Round(time.Millisecond), grace)
	t.Logf("load during the grace period: %s", r.detail())
	t.Logf("slow requests sent before SIGTERM (%s each): %s", grace+1500*time.Millisecond, s1.detail())
	t.Logf("slow requests sent during the grace period (2s each): %s", s2.detail())
	if took < grace {
		t.Errorf("exited %s after SIGTERM, before the %s grace period", took, grace)
	}
	if last := s1.LastDone.Sub(sigterm); last < grace {
		t.Errorf("the slow requests ended %s after SIGTERM: not in flight across nginx's quit", last)
	}
	r.assertNoFailure(t)
	s1.assertNoFailure(t)
	s2.assertNoFailure(t)
	all := r.merge(s1).merge(s2)
	report("shutdown", all, fmt.Sprintf("; %d slow in flight across nginx's quit; healthz 503 after %s, exit after %s",
		s1.Total+s2.Total, unhealthy.Round(time.Millisecond), took.Round(time.Millisecond)))
}

type reportFunc func(name string, r *loadResult, extra string)

// sliceWatch records when each address first appeared as a ready endpoint
// in an EndpointSlice of the namespace (as the API server delivered it).
type sliceWatch struct {
	mu    sync.Mutex
	ready map[string]time.Time
}

func watchSlices(t *testing.T, c *zdCluster, ns string) *sliceWatch {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	w, err := c.Client.DiscoveryV1().EndpointSlices(ns).Watch(ctx, metav1.ListOptions{})
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	sw := &sliceWatch{ready: map[string]time.Time{}}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ev := range w.ResultChan() {
			es, ok := ev.Object.(*discoveryv1.EndpointSlice)
			if !ok {
				continue
			}
			now := time.Now()
			sw.mu.Lock()
			for _, e := range es.Endpoints {
				if e.Conditions.Ready != nil && *e.Conditions.Ready {
					for _, a := range e.Addresses {
						if _, seen := sw.ready[a]; !seen {
							sw.ready[a] = now
						}
					}
				}
			}
			sw.mu.Unlock()
		}
	}()
	t.Cleanup(func() { w.Stop(); cancel(); <-done })
	return sw
}

func (sw *sliceWatch) readyAt(ip string) time.Time {
	sw.mu.Lock()
	defer sw.mu.Unlock()
	return sw.ready[ip]
}

// firstTraffic checks and reports how soon each pod got its first request:
// Ready → in an EndpointSlice (kube-controller-manager's share), slice →
// first request (tidegate's share: informer, sync, push, Lua), and Ready →
// first request. tidegate's share must stay under a second, and so must
// the total unless kube-controller-manager alone took 800 ms or more to
// publish the pod (then the delay is the control plane's, reported as such).
func firstTraffic(t *testing.T, pods []loopnode.Stats, slices *sliceWatch) string {
	t.Helper()
	var maxTotal, maxSlice, maxTG time.Duration
	var rows []string
	for _, s := range pods {
		if s.FirstRequest.IsZero() || s.Ready.IsZero() {
			t.Errorf("pod %s (Ready at %s) never received a request", s.Name, s.Ready.Format("15:04:05.000"))
			continue
		}
		total := max(s.FirstRequest.Sub(s.Ready), 0)
		published := slices.readyAt(s.IP)
		var toSlice, toTraffic time.Duration
		if published.IsZero() {
			t.Errorf("pod %s (%s): its address never appeared ready in an EndpointSlice", s.Name, s.IP)
		} else {
			toSlice = max(published.Sub(s.Ready), 0)
			toTraffic = max(s.FirstRequest.Sub(published), 0)
		}
		maxTotal, maxSlice, maxTG = max(maxTotal, total), max(maxSlice, toSlice), max(maxTG, toTraffic)
		rows = append(rows, fmt.Sprintf("%s: %s (slice %s + tidegate %s)", s.Name,
			total.Round(time.Millisecond), toSlice.Round(time.Millisecond), toTraffic.Round(time.Millisecond)))
		switch {
		case toTraffic > time.Second:
			t.Errorf("pod %s: first request %s after its EndpointSlice said ready, want within 1s", s.Name, toTraffic.Round(time.Millisecond))
		case total > time.Second && toSlice < 800*time.Millisecond:
			t.Errorf("pod %s: first request %s after it became Ready, want within 1s", s.Name, total.Round(time.Millisecond))
		case total > time.Second:
			t.Logf("pod %s: first request %s after Ready, of which %s before kube-controller-manager published it (its EndpointSlice sync retry backoff is 1s)",
				s.Name, total.Round(time.Millisecond), toSlice.Round(time.Millisecond))
		}
	}
	t.Logf("Ready → first request per new pod:\n    %s", strings.Join(rows, "\n    "))
	return fmt.Sprintf("Ready→first request max %s over %d new pods (Ready→EndpointSlice max %s, EndpointSlice→first request max %s)",
		maxTotal.Round(time.Millisecond), len(rows), maxSlice.Round(time.Millisecond), maxTG.Round(time.Millisecond))
}

// deploy applies a Deployment (replicas, preStop sleep of drain seconds,
// grace 10s), its Service (80 → 8080) and an Ingress for host.
func (c *zdCluster) deploy(t *testing.T, ns, app, host string, replicas, drain int) {
	t.Helper()
	prestop := ""
	if drain > 0 {
		prestop = fmt.Sprintf("\n        lifecycle: {preStop: {sleep: {seconds: %d}}}", drain)
	}
	c.apply(t, ns, fmt.Sprintf(`apiVersion: apps/v1
kind: Deployment
metadata: {name: %[1]s}
spec:
  replicas: %[2]d
  selector: {matchLabels: {app: %[1]s}}
  template:
    metadata: {labels: {app: %[1]s}}
    spec:
      terminationGracePeriodSeconds: 10
      containers:
      - name: echo
        image: tidegate/echo:loopnode
        ports: [{containerPort: 8080}]%[3]s`, app, replicas, prestop),
		fmt.Sprintf(`apiVersion: v1
kind: Service
metadata: {name: %[1]s}
spec:
  selector: {app: %[1]s}
  ports: [{port: 80, targetPort: 8080}]`, app),
		harness.IngressYAML(app, host, "Prefix / "+app+":80"))
}

// waitReadyPods waits until the app has exactly n pods that are not being
// deleted, all Ready, and returns their names.
func (c *zdCluster) waitReadyPods(t *testing.T, ns, app string, n int) []string {
	t.Helper()
	var names []string
	harness.WaitFor(t, 60*time.Second, fmt.Sprintf("%d ready pods of %s", n, app), func() string {
		pods, err := c.Client.CoreV1().Pods(ns).List(c.ctx(t), metav1.ListOptions{LabelSelector: "app=" + app})
		if err != nil {
			return err.Error()
		}
		names = names[:0]
		var other []string
		for _, p := range pods.Items {
			if p.DeletionTimestamp == nil && podReady(&p) {
				names = append(names, p.Name)
			} else if p.DeletionTimestamp == nil {
				other = append(other, p.Name)
			}
		}
		if len(names) != n || len(other) > 0 {
			return fmt.Sprintf("%d ready %v, %d not ready %v", len(names), names, len(other), other)
		}
		return ""
	})
	sort.Strings(names)
	return names
}

func podReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// waitPodsGone waits until none of the named pods exists.
func (c *zdCluster) waitPodsGone(t *testing.T, ns string, names []string) {
	t.Helper()
	harness.WaitFor(t, 60*time.Second, "pods removed", func() string {
		var left []string
		for _, n := range names {
			if _, err := c.Client.CoreV1().Pods(ns).Get(c.ctx(t), n, metav1.GetOptions{}); err == nil {
				left = append(left, n)
			}
		}
		if len(left) > 0 {
			return fmt.Sprintf("%v still there", left)
		}
		return ""
	})
}

// waitServedBy waits until tidegate sends host's traffic to every one of
// the pods (its endpoints are pushed).
func (tg *tidegate) waitServedBy(host string, pods []string) {
	tg.T.Helper()
	want := map[string]bool{}
	for _, p := range pods {
		want[p] = true
	}
	seen := map[string]bool{}
	tg.Eventually(fmt.Sprintf("%s served by %v", host, pods), func() string {
		for range 4 * len(pods) {
			r := tg.Get(host, "/")
			if r.Status != 200 {
				return fmt.Sprintf("%d %s", r.Status, r.Body)
			}
			if !want[r.Name] {
				return fmt.Sprintf("served by %q", r.Name)
			}
			seen[r.Name] = true
		}
		if len(seen) != len(want) {
			return fmt.Sprintf("seen only %d of %d", len(seen), len(want))
		}
		return ""
	})
}

// liveWorkers are tidegate's nginx workers, less the ones an earlier
// reload told to quit (they finish their connections first, then exit).
func (tg *tidegate) liveWorkers() []int {
	var out []int
	for _, pid := range tg.Workers() {
		b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		if !strings.Contains(string(b), "shutting down") {
			out = append(out, pid)
		}
	}
	return out
}

// assertNoReload checks that nginx was not reloaded: no worker started
// since workers was taken (a reload always starts new ones; an old worker of
// an earlier reload may still be exiting when workers is sampled) and the
// same count of reloads.
func assertNoReload(t *testing.T, tg *tidegate, workers []int, reloads int) {
	t.Helper()
	before := map[int]bool{}
	for _, pid := range workers {
		before[pid] = true
	}
	for _, pid := range tg.liveWorkers() {
		if !before[pid] {
			t.Errorf("nginx worker %d started after %v were sampled: reloaded", pid, workers)
		}
	}
	if got := tg.Reloads(); got != reloads {
		t.Errorf("tidegate_reloads_total went from %d to %d", reloads, got)
	}
}
