package e2e

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tidegate/tidegate/test/harness"
)

// TestOpenFilesLimit: started under containerd's soft limit of 1024 open
// files, nginx still takes 1,500 idle connections and a new request gets
// its answer. Before, nginx inherited the soft limit, stopped accepting at
// about 1,000 connections, and every new request timed out.
func TestOpenFilesLimit(t *testing.T) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	const idle = 1500
	if lim.Max < 4096 {
		t.Skipf("the hard limit of open files is %d: too low for %d connections here and in nginx", lim.Max, idle)
	}
	be := harness.StartBackends(t, "web")
	tg := startTidegateWith(t, map[string]string{
		"svc.yaml": harness.ServiceYAML("web", 80),
		"eps.yaml": harness.SliceYAML("web-1", "web", be.Port, be.Addrs),
		"ing.yaml": harness.IngressYAML("web", "limits.test", "Prefix / web:80"),
		// One worker takes every connection.
		"cm.yaml": configMapYAML("worker-processes", "1"),
	}, harness.Options{NoFile: "1024:"}) // the soft limit only, as containerd sets it

	// The limits in use are logged at start.
	hard := strconv.FormatUint(lim.Max, 10)
	log := tg.LogText()
	for _, want := range []string{"open files limit", "soft=" + hard + " hard=" + hard,
		"worker_rlimit_nofile=" + strconv.FormatUint(lim.Max-1024, 10), "worker_connections=16384"} {
		if !strings.Contains(log, want) {
			t.Errorf("the log at start does not say %q", want)
		}
	}

	workers := tg.Workers()
	if len(workers) != 1 {
		t.Fatalf("workers %v, want one", workers)
	}
	var conns []net.Conn
	t.Cleanup(func() {
		for _, c := range conns {
			c.Close()
		}
	})
	for range idle {
		c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", tg.HTTPPort), 10*time.Second)
		if err != nil {
			t.Fatalf("connection %d: %v", len(conns)+1, err)
		}
		conns = append(conns, c)
		// Half a request: nginx holds the connection open, waiting.
		if _, err := c.Write([]byte("GET / HTTP/1.1\r\nHost: limits.test\r\n")); err != nil {
			t.Fatalf("connection %d: %v", len(conns), err)
		}
	}
	tg.Eventually("the worker accepts every idle connection", func() string {
		n := openFiles(workers[0])
		if n < idle {
			return fmt.Sprintf("%d files open in the worker, want at least %d", n, idle)
		}
		return ""
	})
	resp, _, err := tg.Fresh("limits.test", "/")
	if err != nil {
		t.Fatalf("a new request with %d idle connections open: %v", idle, err)
	}
	if resp.StatusCode != 200 {
		t.Fatalf("a new request with %d idle connections open: %d, want 200", idle, resp.StatusCode)
	}
}

// openFiles counts the file descriptors process pid has open.
func openFiles(pid int) int {
	entries, err := os.ReadDir(filepath.Join("/proc", strconv.Itoa(pid), "fd"))
	if err != nil {
		return -1
	}
	return len(entries)
}
