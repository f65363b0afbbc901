package nginx

import (
	"bufio"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
)

// AvailableCPUs is the number of nginx workers that worker-processes
// "auto" stands for: the CPUs this process may run on (its affinity mask,
// which taskset and cpuset cgroups set), or fewer when a CPU bandwidth
// limit (a Pod's limits.cpu) allows less, rounded up. nginx's own "auto"
// (1.22, Debian's) counts every online CPU of the node, so a Pod limited
// to 2 CPUs on a 64-CPU node ran 64 workers, each with its own copy of
// every backend and its own share of the CPU limit's throttling.
// ingress-nginx sizes its workers from the same two limits.
func AvailableCPUs() int {
	n := runtime.NumCPU()
	if limit, ok := cgroupCPULimit("/proc/self/cgroup", "/sys/fs/cgroup"); ok && limit < float64(n) {
		n = max(1, int(math.Ceil(limit)))
	}
	return n
}

// cgroupCPULimit reads the CPU bandwidth limit, in CPUs, of the cgroup that
// cgroupFile (/proc/self/cgroup) names, under the cgroup mount root: the
// tightest of the cgroup and its ancestors that are visible, cgroup v2
// (cpu.max) or v1 (cpu.cfs_quota_us / cpu.cfs_period_us). ok is false when
// no limit is set or none can be read.
func cgroupCPULimit(cgroupFile, root string) (limit float64, ok bool) {
	f, err := os.Open(cgroupFile)
	if err != nil {
		return 0, false
	}
	defer f.Close()
	limit = math.Inf(1)
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// hierarchy-ID:controllers:path; v2 is "0::path".
		parts := strings.SplitN(sc.Text(), ":", 3)
		if len(parts) != 3 {
			continue
		}
		if parts[0] == "0" && parts[1] == "" {
			if l, found := tightest(root, parts[2], readCPUMax); found {
				limit = min(limit, l)
			}
			continue
		}
		for _, c := range strings.Split(parts[1], ",") {
			if c != "cpu" {
				continue
			}
			for _, mount := range []string{"cpu", "cpu,cpuacct", "cpuacct,cpu"} {
				if l, found := tightest(filepath.Join(root, mount), parts[2], readCFSQuota); found {
					limit = min(limit, l)
					break
				}
			}
		}
	}
	return limit, !math.IsInf(limit, 1)
}

// tightest walks from mount/path up to mount and returns the lowest limit
// read on the way. Inside a container without a cgroup namespace, path is
// the host's and does not exist under the container's mount: the mount's
// own limit is the container's then.
func tightest(mount, path string, read func(dir string) (float64, bool)) (float64, bool) {
	dir := filepath.Join(mount, filepath.Clean("/"+path))
	if _, err := os.Stat(dir); err != nil {
		dir = mount
	}
	limit, found := math.Inf(1), false
	for {
		if l, ok := read(dir); ok {
			limit, found = min(limit, l), true
		}
		if dir == mount || len(dir) <= len(mount) {
			return limit, found
		}
		dir = filepath.Dir(dir)
	}
}

// readCPUMax reads cgroup v2's cpu.max: "max 100000" or "200000 100000".
func readCPUMax(dir string) (float64, bool) {
	b, err := os.ReadFile(filepath.Join(dir, "cpu.max"))
	if err != nil {
		return 0, false
	}
	f := strings.Fields(string(b))
	if len(f) != 2 {
		return 0, false
	}
	return ratio(f[0], f[1])
}

// readCFSQuota reads cgroup v1's quota and period; a quota of -1 is none.
func readCFSQuota(dir string) (float64, bool) {
	q, err := os.ReadFile(filepath.Join(dir, "cpu.cfs_quota_us"))
	if err != nil {
		return 0, false
	}
	p, err := os.ReadFile(filepath.Join(dir, "cpu.cfs_period_us"))
	if err != nil {
		return 0, false
	}
	return ratio(strings.TrimSpace(string(q)), strings.TrimSpace(string(p)))
}

func ratio(quota, period string) (float64, bool) {
	q, err := strconv.ParseFloat(quota, 64)
	if err != nil || q <= 0 { // "max", -1
		return 0, false
	}
	p, err := strconv.ParseFloat(period, 64)
	if err != nil || p <= 0 {
		return 0, false
	}
	return q / p, true
}
