//go:build linux

// Package netns gives tests their own hosts: a network namespace, created
// by the test run itself, joined to the root namespace by a veth pair.
// Backends listen inside it on addresses of their own (198.18.N.10-.249,
// RFC 2544 benchmark space), so Kubernetes objects can name them (the API
// server refuses loopback addresses in EndpointSlices and Pod IPs) while
// test traffic never leaves the machine nor touches its real interfaces.
//
//	ns := netns.Acquire(t)               // shared; removed after the last user
//	ip := ns.Addr(t)                     // a free address inside the namespace
//	ln, err := ns.Listen("tcp", ip+":8080") // socket lives in the namespace
//
// The namespace is named tg-e2e-<pid>; namespaces left by crashed runs
// (their pid is gone) are removed when the next one is created. Creating
// one needs root (CAP_NET_ADMIN, CAP_SYS_ADMIN) and iproute2.
package netns

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

const (
	prefix  = "tg-e2e-"
	runDir  = "/run/netns"
	lockDir = "/run/lock"
	// firstHost..lastHost are the pool of backend addresses in 198.18.N.0/24.
	firstHost = 10
	lastHost  = 249
)

// NS is a network namespace with a veth link to the root namespace. The
// root side has HostIP; the pool addresses are assigned inside.
type NS struct {
	// Name is the namespace's name under /run/netns.
	Name string
	// HostIP is the root side of the veth (198.18.N.1); PeerIP the
	// namespace side (198.18.N.2).
	HostIP, PeerIP string

	subnet  int // N
	hostDev string

	mu   sync.Mutex
	free []string // FIFO: a released address is reused as late as possible
}

var shared struct {
	sync.Mutex
	ns    *NS
	users int
}

// Acquire returns the namespace of this test binary, creating it for the
// first user, and removes it when the last user's test ends (tests that run
// one after another each create it afresh; it costs ~50 ms). It fails t
// with a clear message when the namespace cannot be made (not root, no
// iproute2).
func Acquire(t testing.TB) *NS {
	t.Helper()
	shared.Lock()
	defer shared.Unlock()
	if shared.ns == nil {
		ns, err := Create(prefix + strconv.Itoa(os.Getpid()))
		if err != nil {
			t.Fatalf("netns: %v\n(the e2e tests put their backends in a network namespace they create: run them as root, with iproute2 installed)", err)
		}
		shared.ns = ns
	}
	shared.users++
	t.Cleanup(func() {
		shared.Lock()
		defer shared.Unlock()
		if shared.users--; shared.users == 0 {
			if err := shared.ns.Close(); err != nil {
				t.Errorf("netns: %v", err)
			}
			shared.ns = nil
		}
	})
	return shared.ns
}

// Create makes namespace name with a veth pair on a 198.18.N.0/24 that no
// interface of the root namespace uses yet, and the address pool inside.
// Stale tg-e2e-<pid> namespaces of dead processes are removed first.
func Create(name string) (_ *NS, retErr error) {
	if _, err := exec.LookPath("ip"); err != nil {
		return nil, fmt.Errorf("iproute2 `ip` not found: %w", err)
	}
	// Concurrent test binaries (several packages, several engineers) must
	// not pick the same subnet: serialise the choice machine-wide.
	if err := os.MkdirAll(lockDir, 0o755); err != nil {
		return nil, err
	}
	lock, err := os.OpenFile(filepath.Join(lockDir, "tidegate-netns.lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lock: %w", err)
	}
	defer lock.Close()
	if err := unix.Flock(int(lock.Fd()), unix.LOCK_EX); err != nil {
		return nil, fmt.Errorf("lock: %w", err)
	}
	defer unix.Flock(int(lock.Fd()), unix.LOCK_UN) //nolint:errcheck // closing unlocks too

	removeStale()
	n, err := freeSubnet()
	if err != nil {
		return nil, err
	}
	id := strings.TrimPrefix(name, prefix)
	ns := &NS{Name: name, subnet: n, hostDev: "tgh" + id,
		HostIP: fmt.Sprintf("198.18.%d.1", n), PeerIP: fmt.Sprintf("198.18.%d.2", n)}
	if len(ns.hostDev) > 15 {
		return nil, fmt.Errorf("namespace name %q too long for an interface name", name)
	}
	peerDev := "tgp" + id
	if err := ip("netns", "add", name); err != nil {
		return nil, err
	}
	defer func() {
		if retErr != nil {
			_ = ns.Close()
		}
	}()
	var root, inside strings.Builder
	fmt.Fprintf(&root, "link add %s type veth peer name %s netns %s\n", ns.hostDev, peerDev, name)
	fmt.Fprintf(&root, "addr add %s/24 dev %s\n", ns.HostIP, ns.hostDev)
	fmt.Fprintf(&root, "link set %s up\n", ns.hostDev)
	fmt.Fprintf(&inside, "link set lo up\n")
	fmt.Fprintf(&inside, "addr add %s/24 dev %s\n", ns.PeerIP, peerDev)
	for h := firstHost; h <= lastHost; h++ {
		a := fmt.Sprintf("198.18.%d.%d", n, h)
		fmt.Fprintf(&inside, "addr add %s/32 dev %s\n", a, peerDev)
		ns.free = append(ns.free, a)
	}
	fmt.Fprintf(&inside, "link set %s up\n", peerDev)
	if err := ipBatch(root.String()); err != nil {
		return nil, err
	}
	if err := ipBatch(inside.String(), "-n", name); err != nil {
		return nil, err
	}
	return ns, nil
}

// Close deletes the namespace; the veth pair goes with it.
func (ns *NS) Close() error {
	err := ip("netns", "del", ns.Name)
	// The root end normally vanishes with its peer; make sure.
	_ = exec.Command("ip", "link", "del", ns.hostDev).Run()
	return err
}

// Addr takes an unused address from the pool (fails t when it is empty).
func (ns *NS) Addr(t testing.TB) string {
	t.Helper()
	a, err := ns.Take()
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// Take takes an unused address from the pool.
func (ns *NS) Take() (string, error) {
	ns.mu.Lock()
	defer ns.mu.Unlock()
	if len(ns.free) == 0 {
		return "", fmt.Errorf("netns %s: all %d addresses in use", ns.Name, lastHost-firstHost+1)
	}
	a := ns.free[0]
	ns.free = ns.free[1:]
	return a, nil
}

// Release returns an address to the pool, once nothing listens on it.
func (ns *NS) Release(addr string) {
	ns.mu.Lock()
	defer ns.mu.Unlock()
	ns.free = append(ns.free, addr)
}

// Listen is net.Listen inside the namespace: the socket is created there
// and stays there, while the caller (and everything else in the process)
// stays in the root namespace.
func (ns *NS) Listen(network, addr string) (net.Listener, error) {
	var ln net.Listener
	err := ns.Do(func() error {
		var err error
		ln, err = net.Listen(network, addr)
		return err
	})
	return ln, err
}

// Do runs f on an OS thread that has joined the namespace. f must not
// start goroutines that expect to be in the namespace (they are not).
func (ns *NS) Do(f func() error) error {
	errc := make(chan error, 1)
	// A fresh goroutine: if switching back fails, the thread is left
	// locked and the runtime discards it when the goroutine ends.
	go func() {
		runtime.LockOSThread()
		orig, err := os.Open("/proc/thread-self/ns/net")
		if err != nil {
			runtime.UnlockOSThread()
			errc <- err
			return
		}
		defer orig.Close()
		target, err := os.Open(filepath.Join(runDir, ns.Name))
		if err != nil {
			runtime.UnlockOSThread()
			errc <- err
			return
		}
		defer target.Close()
		if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("setns %s: %w", ns.Name, err)
			return
		}
		ferr := f()
		if err := unix.Setns(int(orig.Fd()), unix.CLONE_NEWNET); err != nil {
			errc <- errors.Join(ferr, fmt.Errorf("setns back to the root namespace: %w", err))
			return // thread stays locked: it dies with this goroutine
		}
		runtime.UnlockOSThread()
		errc <- ferr
	}()
	return <-errc
}

// removeStale deletes tg-e2e-<pid> namespaces whose process is gone.
func removeStale() {
	entries, _ := os.ReadDir(runDir)
	for _, e := range entries {
		id, ok := strings.CutPrefix(e.Name(), prefix)
		if !ok {
			continue
		}
		pid, err := strconv.Atoi(id)
		if err != nil || pid <= 0 {
			continue
		}
		if err := syscall.Kill(pid, 0); err == nil || errors.Is(err, syscall.EPERM) {
			continue // still running
		}
		_ = ip("netns", "del", e.Name())
		_ = exec.Command("ip", "link", "del", "tgh"+id).Run()
	}
}

// freeSubnet picks N such that no root-namespace address is in 198.18.N.0/24.
func freeSubnet() (int, error) {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return 0, err
	}
	used := map[int]bool{}
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok {
			if v4 := n.IP.To4(); v4 != nil && v4[0] == 198 && v4[1] == 18 {
				used[int(v4[2])] = true
			}
		}
	}
	start := os.Getpid() % 250
	for i := range 250 {
		if n := (start + i) % 250; !used[n] {
			return n, nil
		}
	}
	return 0, errors.New("no free 198.18.N.0/24")
}

func ip(args ...string) error {
	out, err := exec.Command("ip", args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("ip %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

func ipBatch(cmds string, opts ...string) error {
	cmd := exec.Command("ip", append(opts, "-batch", "-")...)
	cmd.Stdin = strings.NewReader(cmds)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("ip -batch: %v: %s", err, strings.TrimSpace(string(out)))
	}
	return nil
}
