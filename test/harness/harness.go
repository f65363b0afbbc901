// Package harness runs tidegate as its tests and benchmarks see it: the
// real command line on real nginx, manifests written to its directory,
// requests over HTTP and TLS, its /metrics, nginx's workers and logs.
// test/e2e and test/bench both use it.
//
// Functions taking a testing.TB fail the test on error; the ones a
// program such as the benchmark calls return errors instead.
package harness

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// Bin is the tidegate binary the Start functions run; a TestMain sets it
// from Build.
var Bin string

// Build builds ./cmd/tidegate into dir and returns its path: tests run the
// real command line, as users do.
func Build(dir string) (string, error) {
	bin := filepath.Join(dir, "tidegate")
	out, err := exec.Command("go", "build", "-o", bin, "github.com/tidegate/tidegate/cmd/tidegate").CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("build tidegate: %v\n%s", err, out)
	}
	return bin, nil
}

// Patience bounds every wait on a condition: generous, because a loaded
// machine (CI, or tests running side by side) may take many times longer
// than an idle one, and a passing condition returns at once anyway. 15 s
// failed TestManyCertificates in a clean-clone run under load.
const Patience = 90 * time.Second

// Ports returns n distinct TCP ports that were free a moment ago on
// 127.0.0.1. Their listeners are held open together: one at a time, the
// kernel can hand out the same port twice (CI saw http and status ports
// equal, and nginx could not bind).
func Ports(n int) ([]int, error) {
	ports := make([]int, 0, n)
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		defer ln.Close()
		ports = append(ports, ln.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// FreePorts is Ports for a test: it fails t on error.
func FreePorts(t testing.TB, n int) []int {
	t.Helper()
	ports, err := Ports(n)
	if err != nil {
		t.Fatal(err)
	}
	return ports
}

// FreePort returns a TCP port that was free a moment ago on 127.0.0.1.
func FreePort(t testing.TB) int {
	t.Helper()
	return FreePorts(t, 1)[0]
}

// WaitFor retries f until it returns "" or timeout, then fails t with f's
// last message.
func WaitFor(t testing.TB, timeout time.Duration, what string, f func() string) {
	t.Helper()
	retry(t, timeout, 25*time.Millisecond, what, f)
}

// retry calls f every pause until it returns "" or timeout, then fails t
// with f's last message.
func retry(t testing.TB, timeout, pause time.Duration, what string, f func() string) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var msg string
	for time.Now().Before(deadline) {
		if msg = f(); msg == "" {
			return
		}
		time.Sleep(pause)
	}
	t.Fatalf("%s: still %s after %s", what, msg, timeout)
}

// ReadFile returns the file's content and fails t if it cannot be read.
func ReadFile(t testing.TB, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// WriteManifest creates or replaces dir/name atomically (write + rename),
// as editors and kubectl-style tools do.
func WriteManifest(dir, name, body string) error {
	tmp := filepath.Join(dir, "."+name+".tmp")
	if err := os.WriteFile(tmp, []byte(body), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, filepath.Join(dir, name))
}
