package loopnode

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/tidegate/tidegate/pkg/echo"
)

// pod is the node's side of one Pod: its server and its lifecycle.
type pod struct {
	n               *Node
	namespace, name string
	uid             types.UID
	port            int
	drain           time.Duration // preStop sleep, else the grace period

	latest   chan *corev1.Pod // capacity 1: the newest version only
	goneOnce sync.Once
	goneCh   chan struct{} // the Pod left the API (or the node stops)
	kill     chan struct{}
	killed   chan struct{} // closed once a Kill has cut the server

	mu       sync.Mutex
	ip       string
	st       string
	readyAt  time.Time
	srv      *fasthttp.Server
	ln       *trackingListener
	first    atomic.Int64 // unix nanos of the first non-probe request
	requests atomic.Int64
}

func newPod(n *Node, po *corev1.Pod) *pod {
	p := &pod{n: n, namespace: po.Namespace, name: po.Name, uid: po.UID, port: DefaultPort, st: "starting",
		latest: make(chan *corev1.Pod, 1), goneCh: make(chan struct{}),
		kill: make(chan struct{}, 1), killed: make(chan struct{})}
	if cs := po.Spec.Containers; len(cs) > 0 {
		if len(cs[0].Ports) > 0 {
			p.port = int(cs[0].Ports[0].ContainerPort)
		}
		if l := cs[0].Lifecycle; l != nil && l.PreStop != nil && l.PreStop.Sleep != nil {
			p.drain = time.Duration(l.PreStop.Sleep.Seconds) * time.Second
		}
	}
	return p
}

func (p *pod) update(po *corev1.Pod) {
	for {
		select {
		case p.latest <- po:
			return
		default:
		}
		select {
		case <-p.latest: // drop the stale one
		default:
		}
	}
}

func (p *pod) closeGone() { p.goneOnce.Do(func() { close(p.goneCh) }) }

func (p *pod) state() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.st
}

func (p *pod) setState(s string) {
	p.mu.Lock()
	p.st = s
	p.mu.Unlock()
}

func (p *pod) stats() Stats {
	p.mu.Lock()
	defer p.mu.Unlock()
	s := Stats{Namespace: p.namespace, Name: p.name, UID: p.uid, IP: p.ip, Port: p.port,
		Ready: p.readyAt, Requests: p.requests.Load(), State: p.st}
	if f := p.first.Load(); f != 0 {
		s.FirstRequest = time.Unix(0, f)
	}
	return s
}

func (p *pod) logf(format string, args ...any) {
	p.n.opts.Logf("loopnode: %s/%s: "+format, append([]any{p.namespace, p.name}, args...)...)
}

// run is the Pod's kubelet: start, report Ready, then wait for deletion
// (drain, not ready, stop, remove), a Kill, or the Pod's disappearance.
func (p *pod) run() {
	defer p.release()
	if err := p.start(); err != nil {
		p.logf("start: %v", err)
		return
	}
	var gracePeriod time.Duration
	for {
		select {
		case <-p.goneCh:
			p.stop(false)
			return
		case <-p.kill:
			p.stop(true)
			p.setState("killed")
			close(p.killed)
			p.logf("killed; still Ready in the API for %s", p.n.opts.KilledReadyFor)
			if p.sleep(p.n.opts.KilledReadyFor) {
				return
			}
			p.setReady(false)
			p.remove()
			<-p.goneCh
			return
		case po := <-p.latest:
			if po.DeletionTimestamp == nil {
				continue
			}
			if po.DeletionGracePeriodSeconds != nil {
				gracePeriod = time.Duration(*po.DeletionGracePeriodSeconds) * time.Second
			}
		}
		break
	}
	// Deleted: keep serving through the preStop sleep (bounded by the
	// grace period), as the Pod's endpoint turns serving+terminating.
	drain := p.drain
	if drain == 0 || drain > gracePeriod {
		drain = gracePeriod
	}
	p.setState("draining")
	p.logf("terminating: serving for %s more", drain)
	if p.sleep(drain) {
		return
	}
	p.setReady(false)
	p.stop(false)
	p.setState("stopped")
	p.remove()
	<-p.goneCh
}

// sleep waits d; true if the Pod went away (or the node stopped) first,
// in which case the server has been stopped.
func (p *pod) sleep(d time.Duration) bool {
	select {
	case <-time.After(d):
		return false
	case <-p.goneCh:
		p.stop(false)
		return true
	}
}

func (p *pod) start() error {
	ip, err := p.n.opts.NS.Take()
	if err != nil {
		return err
	}
	p.mu.Lock()
	p.ip = ip
	p.mu.Unlock()
	addr := net.JoinHostPort(ip, strconv.Itoa(p.port))
	inner, err := p.n.opts.NS.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listen %s: %w", addr, err)
	}
	ln := &trackingListener{Listener: inner, conns: map[net.Conn]struct{}{}}
	srv := echo.NewServer(p.name)
	srv.Handler = p.handler(srv.Handler)
	srv.Logger = quiet{} // a Kill's cut connections are expected
	p.mu.Lock()
	p.srv, p.ln = srv, ln
	p.mu.Unlock()
	go srv.Serve(ln) //nolint:errcheck // ends when stopped

	// Ready only once the server answers.
	client := &http.Client{Timeout: time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	for deadline := time.Now().Add(10 * time.Second); ; {
		req, _ := http.NewRequestWithContext(p.n.ctx, http.MethodGet, "http://"+addr+"/", nil)
		req.Header.Set(ProbeHeader, "1")
		resp, err := client.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
			err = fmt.Errorf("status %d", resp.StatusCode)
		}
		if time.Now().After(deadline) || p.n.ctx.Err() != nil {
			p.stop(true)
			return fmt.Errorf("probe %s: %w", addr, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := p.setReady(true); err != nil {
		p.stop(true)
		return err
	}
	p.setState("ready")
	p.logf("ready on %s", addr)
	return nil
}

// handler counts requests and serves ?sleep=DURATION (a slow request)
// before answering as echo does.
func (p *pod) handler(next fasthttp.RequestHandler) fasthttp.RequestHandler {
	return func(ctx *fasthttp.RequestCtx) {
		if len(ctx.Request.Header.Peek(ProbeHeader)) > 0 {
			ctx.SetStatusCode(fasthttp.StatusOK)
			return
		}
		p.first.CompareAndSwap(0, time.Now().UnixNano())
		if s := ctx.QueryArgs().Peek("sleep"); len(s) > 0 {
			if d, err := time.ParseDuration(string(s)); err == nil && d > 0 {
				time.Sleep(min(d, maxSleep))
			}
		}
		next(ctx)
		p.requests.Add(1)
	}
}

// setReady reports the Pod Running with its IP, Ready or not.
func (p *pod) setReady(ready bool) error {
	status := corev1.ConditionFalse
	if ready {
		status = corev1.ConditionTrue
	}
	now := metav1.Now()
	p.mu.Lock()
	ip := p.ip
	p.mu.Unlock()
	cond := func(t corev1.PodConditionType, s corev1.ConditionStatus) corev1.PodCondition {
		return corev1.PodCondition{Type: t, Status: s, LastTransitionTime: now}
	}
	pods := p.n.client.CoreV1().Pods(p.namespace)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for attempt := 0; ; attempt++ {
		po, err := pods.Get(ctx, p.name, metav1.GetOptions{})
		if err == nil && po.UID != p.uid {
			err = apierrors.NewNotFound(corev1.Resource("pods"), p.name)
		}
		if err != nil {
			if !apierrors.IsNotFound(err) {
				p.logf("status: %v", err)
			}
			return err
		}
		po.Status.Phase = corev1.PodRunning
		po.Status.HostIP = p.n.opts.NS.PeerIP
		po.Status.HostIPs = []corev1.HostIP{{IP: p.n.opts.NS.PeerIP}}
		po.Status.PodIP = ip
		po.Status.PodIPs = []corev1.PodIP{{IP: ip}}
		if po.Status.StartTime == nil {
			po.Status.StartTime = &now
		}
		po.Status.Conditions = []corev1.PodCondition{
			cond(corev1.PodScheduled, corev1.ConditionTrue),
			cond(corev1.PodInitialized, corev1.ConditionTrue),
			cond(corev1.ContainersReady, status),
			cond(corev1.PodReady, status),
		}
		_, err = pods.UpdateStatus(ctx, po, metav1.UpdateOptions{})
		if apierrors.IsConflict(err) && attempt < 20 {
			continue
		}
		if err != nil {
			p.logf("status ready=%v: %v", ready, err)
			return err
		}
		if ready {
			p.mu.Lock()
			p.readyAt = time.Now()
			p.mu.Unlock()
		}
		return nil
	}
}

// remove deletes the Pod at once (grace 0), as a kubelet does once the
// containers have stopped.
func (p *pod) remove() {
	zero := int64(0)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := p.n.client.CoreV1().Pods(p.namespace).Delete(ctx, p.name, metav1.DeleteOptions{
		GracePeriodSeconds: &zero, Preconditions: &metav1.Preconditions{UID: &p.uid}})
	if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
		p.logf("delete: %v", err)
	}
}

// stop stops the server: gracefully (in-flight requests finish, idle
// connections close) or abruptly (every connection reset).
func (p *pod) stop(abrupt bool) {
	p.mu.Lock()
	srv, ln := p.srv, p.ln
	p.srv, p.ln = nil, nil
	p.mu.Unlock()
	if srv == nil {
		return
	}
	if abrupt {
		ln.reset()
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), echo.ShutdownTimeout)
	defer cancel()
	if err := srv.ShutdownWithContext(ctx); err != nil {
		p.logf("shutdown: %v", err)
	}
	ln.Close()
}

func (p *pod) release() {
	p.stop(false)
	if p.state() != "killed" {
		p.setState("stopped")
	}
	p.mu.Lock()
	ip := p.ip
	p.mu.Unlock()
	if ip != "" {
		p.n.opts.NS.Release(ip)
	}
}

type quiet struct{}

func (quiet) Printf(string, ...any) {}

// trackingListener remembers the connections it accepted so they can all
// be reset at once.
type trackingListener struct {
	net.Listener
	mu     sync.Mutex
	conns  map[net.Conn]struct{}
	closed bool
}

func (l *trackingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		resetConn(c)
		return nil, net.ErrClosed
	}
	tc := &trackedConn{Conn: c, l: l}
	l.conns[tc] = struct{}{}
	return tc, nil
}

// reset closes the listener and resets every open connection (RST).
func (l *trackingListener) reset() {
	l.mu.Lock()
	l.closed = true
	conns := l.conns
	l.conns = map[net.Conn]struct{}{}
	l.mu.Unlock()
	l.Listener.Close()
	for c := range conns {
		resetConn(c.(*trackedConn).Conn)
	}
}

func resetConn(c net.Conn) {
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	_ = c.Close()
}

type trackedConn struct {
	net.Conn
	l *trackingListener
}

func (c *trackedConn) Close() error {
	c.l.mu.Lock()
	delete(c.l.conns, c)
	c.l.mu.Unlock()
	return c.Conn.Close()
}
