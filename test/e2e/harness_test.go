package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"testing"

	"github.com/tidegate/tidegate/test/harness"
)

// TestMain builds tidegate once from ./cmd/tidegate (harness.Bin): the
// tests run the real command line, as users do.
func TestMain(m *testing.M) {
	if _, err := exec.LookPath("nginx"); err != nil {
		fmt.Fprintln(os.Stderr, "e2e: nginx is not installed; run `make deps`")
		os.Exit(1)
	}
	dir, err := os.MkdirTemp("", "tidegate-e2e-bin-")
	if err != nil {
		panic(err)
	}
	harness.Bin, err = harness.Build(dir)
	if err != nil {
		fmt.Fprintf(os.Stderr, "e2e: %v", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// tidegate is the process under test (test/harness) with the requests and
// probes only some e2e tests need, defined beside them.
type tidegate struct{ *harness.Tidegate }

// startTidegate writes the manifests and runs `tidegate local` on them
// until /healthz answers 200.
func startTidegate(t testing.TB, manifests map[string]string) *tidegate {
	t.Helper()
	return &tidegate{harness.Start(t, manifests)}
}

// startTidegateWith is startTidegate with options.
func startTidegateWith(t testing.TB, manifests map[string]string, o harness.Options) *tidegate {
	t.Helper()
	return &tidegate{harness.StartWith(t, manifests, o)}
}

// startController runs `tidegate controller` until its /healthz answers
// 200; it is stopped at the end of t.
func startController(t testing.TB, c harness.Controller) *tidegate {
	t.Helper()
	return &tidegate{harness.StartController(t, c)}
}
