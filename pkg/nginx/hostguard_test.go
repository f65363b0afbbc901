package nginx

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// TestHostGuardRegex runs hostGuard's regex in a real nginx: when an
// auth-url or mirror-target reads $host, the Hosts a client may choose are
// DNS names only, never an address or a localhost name nginx would then
// connect to.
func TestHostGuardRegex(t *testing.T) {
	if testing.Short() {
		t.Skip("starts nginx")
	}
	dir := t.TempDir()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	conf := fmt.Sprintf(`worker_processes 1;
error_log %s/error.log;
pid %s/nginx.pid;
events {}
http {
    access_log off;
    server {
        listen %s;
        location / {
            if ($host !~ "%s") { return 500; }
            return 200;
        }
    }
}
`, dir, dir, addr, hostGuardRegex)
	path := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	// One process, no workers: killing it at the end leaves nothing behind
	// (a killed master leaves its workers running).
	cmd := exec.Command(Binary, "-p", dir, "-c", path, "-g", "daemon off; master_process off;")
	if out, err := exec.Command(Binary, "-t", "-p", dir, "-c", path).CombinedOutput(); err != nil {
		t.Fatalf("nginx -t: %v: %s", err, out)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	status := func(host string) int {
		req, _ := http.NewRequest("GET", "http://"+addr+"/", nil)
		req.Host = host
		for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(20 * time.Millisecond) {
			resp, err := http.DefaultClient.Do(req)
			if err == nil {
				resp.Body.Close()
				return resp.StatusCode
			}
			if time.Now().After(deadline) {
				t.Fatalf("nginx does not answer: %v", err)
			}
		}
	}
	for host, want := range map[string]int{
		"auth.io": 200, "Auth.IO": 200, "a.b.c": 200, "1a.io": 200, "auth.io.": 200,
		"127.0.0.1": 500, "169.254.169.254": 500, "0x7f.0.0.1": 500, "[::1]": 500,
		"localhost": 500, "LocalHost.": 500, "x.localhost": 500, "localhost.localdomain": 500, "ip6-loopback": 500,
		"tidegate_upstream": 500,
	} {
		if got := status(host); got != want {
			t.Errorf("Host %q: %d, want %d", host, got, want)
		}
	}
}
