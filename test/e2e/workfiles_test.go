package e2e

import (
	"bytes"
	"crypto/tls"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tidegate/tidegate/pkg/tlsutil"
	"github.com/tidegate/tidegate/test/harness"
)

// TestWorkingFilesAreOwnerOnly: the working directory holds nginx.conf,
// keys, htpasswd files, the control token and logs. After a start and
// requests that make nginx write temporary files, nothing in it may be
// entered or read by other users; when tidegate runs as root, nginx's
// workers run as nobody (never root) and get only what they open while
// serving: the directories they enter (0710, their group) and the htpasswd
// files (0640). Basic auth over TLS, request bodies and answers buffered
// to temporary files, the 503 of a backend without endpoints and a log
// reopen all still work.
func TestWorkingFilesAreOwnerOnly(t *testing.T) {
	const bigAnswer = 32 << 20 // more than loopback's socket buffers hold
	app := startHTTP(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/big" {
			w.Write(bytes.Repeat([]byte("x"), bigAnswer))
			return
		}
		n, _ := io.Copy(io.Discard, r.Body)
		fmt.Fprintf(w, "got %d bytes", n)
	}))
	crt, key, _ := tlsutil.SelfSigned("files.test", "files.test")
	tg := startTidegate(t, map[string]string{
		"all.yaml": strings.Join([]string{harness.ServiceYAML("app", 80), harness.SliceYAML("app-1", "app", app, []string{"127.0.0.1"}),
			harness.ServiceYAML("empty", 80),
			tlsSecretYAML("files-tls", crt, key),
			opaqueSecretYAML("users", map[string]string{"auth": htpasswdSHA("alice", "s3cret") + "\n"}),
			withTLSHost(strings.Replace(annotatedIngress("files", "files.test", "Prefix", "/", "auth-type=basic", "auth-secret=users"),
				"name: web,", "name: app,", 1), "files.test", "files-tls"),
			harness.IngressYAML("empty", "empty.test", "Prefix / empty:80"),
		}, "---\n"),
	})
	root := os.Geteuid() == 0

	c := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{DisableKeepAlives: true,
		TLSClientConfig: &tls.Config{ServerName: "files.test", InsecureSkipVerify: true}}}
	do := func(method, path, user string, body io.Reader) (*http.Response, error) {
		req, _ := http.NewRequest(method, fmt.Sprintf("https://127.0.0.1:%d%s", tg.HTTPSPort, path), body)
		req.Host = "files.test"
		if user != "" {
			req.SetBasicAuth(user, "s3cret")
		}
		return c.Do(req)
	}
	t.Run("basic auth over TLS", func(t *testing.T) {
		for user, want := range map[string]int{"": 401, "mallory": 401, "alice": 200} {
			resp, err := do("GET", "/", user, nil)
			if err != nil {
				t.Fatal(err)
			}
			harness.ReadBody(resp)
			if resp.StatusCode != want {
				t.Errorf("user %q: %d, want %d", user, resp.StatusCode, want)
			}
		}
	})
	t.Run("bodies and answers through temporary files", func(t *testing.T) {
		resp, err := do("POST", "/upload", "alice", bytes.NewReader(make([]byte, 512<<10)))
		if err != nil {
			t.Fatal(err)
		}
		if body := harness.ReadBody(resp); resp.StatusCode != 200 || body != fmt.Sprintf("got %d bytes", 512<<10) {
			t.Errorf("a 512 KiB request body: %d %q", resp.StatusCode, body)
		}
		resp, err = do("GET", "/big", "alice", nil)
		if err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Second) // nginx buffers what the client does not take
		n, err := io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || n != bigAnswer || err != nil {
			t.Errorf("a 32 MiB answer: %d, %d bytes, %v", resp.StatusCode, n, err)
		}
		errorLog := harness.ReadFile(t, filepath.Join(tg.WorkDir, "logs", "error.log"))
		for _, want := range []string{"a client request body is buffered to a temporary file", "an upstream response is buffered to a temporary file"} {
			if !strings.Contains(errorLog, want) {
				t.Errorf("the error log does not say %q: no temporary file was written", want)
			}
		}
		if strings.Contains(errorLog, "Permission denied") {
			t.Errorf("nginx was refused a file:\n%s", errorLog)
		}
	})
	t.Run("a backend without endpoints is 503", func(t *testing.T) {
		if r := tg.Get("empty.test", "/"); r.Status != 503 {
			t.Errorf("%d, want 503", r.Status)
		}
	})
	t.Run("workers never run as root", func(t *testing.T) {
		for _, pid := range tg.Workers() {
			status := harness.ReadFile(t, fmt.Sprintf("/proc/%d/status", pid))
			for _, line := range strings.Split(status, "\n") {
				ids, ok := strings.CutPrefix(line, "Uid:")
				if !ok {
					continue
				}
				for _, id := range strings.Fields(ids) { // real, effective, saved, file system
					if root && id == "0" {
						t.Errorf("worker %d runs as root (%s)", pid, line)
						break
					}
					if !root && id != strconv.Itoa(os.Geteuid()) {
						t.Errorf("worker %d runs as another user than tidegate's (%s)", pid, line)
						break
					}
				}
			}
		}
	})
	t.Run("logs reopen", func(t *testing.T) {
		// As the metrics log's rotation does: rename, then SIGUSR1. The
		// workers open the new file themselves.
		access := filepath.Join(tg.WorkDir, "logs", "access.log")
		if err := os.Rename(access, access+".1"); err != nil {
			t.Fatal(err)
		}
		pid, _ := strconv.Atoi(strings.TrimSpace(harness.ReadFile(t, filepath.Join(tg.WorkDir, "nginx.pid"))))
		if err := syscall.Kill(pid, syscall.SIGUSR1); err != nil {
			t.Fatal(err)
		}
		tg.Eventually("requests are logged to the reopened access log", func() string {
			tg.Get("empty.test", "/reopened")
			b, _ := os.ReadFile(access)
			if !bytes.Contains(b, []byte("/reopened")) {
				return fmt.Sprintf("the new access log holds %q", b)
			}
			return ""
		})
	})

	// Modes, after all of the above.
	workerDirs := map[string]bool{".": true, "logs": true, "tmp": true, "auth": true, "unavailable": true}
	seen := map[string]bool{}
	err := filepath.WalkDir(tg.WorkDir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(tg.WorkDir, path)
		info, err := d.Info()
		if err != nil {
			return err
		}
		if info.Mode()&fs.ModeSocket != 0 {
			return nil // nginx makes them 0666, in directories others may not enter
		}
		seen[rel] = true
		perm := info.Mode().Perm()
		var group fs.FileMode // what the workers' group may do
		switch {
		case root && d.IsDir() && workerDirs[rel]:
			group = 0o010
		case root && strings.HasSuffix(rel, ".htpasswd"):
			group = 0o040
		}
		if perm&0o007 != 0 || perm&0o070&^group != 0 {
			t.Errorf("%s is %s: want at most %s", rel, perm, 0o700|group)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// What the walk must have seen, so that it did see something.
	for _, want := range []string{"nginx.conf", "default.key", "default.crt", "check/nginx.conf", "run/control.token",
		"logs/access.log", "logs/error.log", "tmp/body", "tmp/proxy", "lua/tidegate/init.lua"} {
		if !seen[want] {
			t.Errorf("%s is not in the working directory", want)
		}
	}
	var htpasswd int
	for rel := range seen {
		if strings.HasSuffix(rel, ".htpasswd") {
			htpasswd++
		}
	}
	if htpasswd == 0 {
		t.Error("no htpasswd file in the working directory")
	}
}
