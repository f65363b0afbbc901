package harness

import (
	"bufio"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/tidegate/tidegate/pkg/nginx"
)

// Metrics reads http://127.0.0.1:port/metrics through c as
// name{labels} -> value, as the Prometheus text format prints them.
func Metrics(c *http.Client, port int) (map[string]float64, error) {
	resp, err := c.Get(fmt.Sprintf("http://127.0.0.1:%d/metrics", port))
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			continue
		}
		if v, err := strconv.ParseFloat(line[i+1:], 64); err == nil {
			out[line[:i]] = v
		}
	}
	return out, sc.Err()
}

// Metric reads one sample (full name with labels, as /metrics prints it);
// 0 when absent.
func (tg *Tidegate) Metric(series string) float64 {
	tg.T.Helper()
	m, err := Metrics(http.DefaultClient, tg.StatusPt)
	if err != nil {
		tg.T.Fatal(err)
	}
	return m[series]
}

// Reloads reads tidegate_reloads_total{result="success"} from /metrics.
func (tg *Tidegate) Reloads() int {
	tg.T.Helper()
	return int(tg.Metric(`tidegate_reloads_total{result="success"}`))
}

// SettledReloads waits until tidegate's reload count has stayed the same
// for 300 ms and returns it. nginx serves a new configuration a moment
// before the controller counts the reload (it polls nginx for the new
// generation), so a count read right after a new host answers may still
// grow; a test that then asserts "no reload" must start from this one.
func (tg *Tidegate) SettledReloads() int {
	tg.T.Helper()
	last, since := tg.Reloads(), time.Now()
	deadline := time.Now().Add(Patience)
	for time.Since(since) < 300*time.Millisecond {
		if time.Now().After(deadline) {
			tg.T.Fatalf("the reload count never settled (last %d)", last)
		}
		time.Sleep(20 * time.Millisecond)
		if n := tg.Reloads(); n != last {
			last, since = n, time.Now()
		}
	}
	return last
}

// NginxMaster reads the master pid from an nginx pid file (0 when the
// file is being written and holds no number yet).
func NginxMaster(pidFile string) (int, error) {
	b, err := os.ReadFile(pidFile)
	if err != nil {
		return 0, err
	}
	master, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	return master, nil
}

// NginxWorkers returns the sorted pids of the live worker processes of the
// nginx whose pid file is given.
func NginxWorkers(pidFile string) ([]int, error) {
	master, err := NginxMaster(pidFile)
	if err != nil {
		return nil, err
	}
	pids, err := nginx.WorkerPIDs(master)
	sort.Ints(pids)
	return pids, err
}

// Workers returns the sorted pids of nginx's worker processes.
func (tg *Tidegate) Workers() []int {
	tg.T.Helper()
	master, err := NginxMaster(filepath.Join(tg.WorkDir, "nginx.pid"))
	if err != nil {
		tg.T.Fatal(err)
	}
	pids, err := nginx.WorkerPIDs(master)
	if err != nil || len(pids) == 0 {
		tg.T.Fatalf("no nginx workers for master %d: %v", master, err)
	}
	sort.Ints(pids)
	return pids
}
