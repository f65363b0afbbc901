package nginx

import (
	"os"
	"path/filepath"
	"testing"
)

func TestCgroupCPULimit(t *testing.T) {
	tests := map[string]struct {
		cgroup string            // /proc/self/cgroup
		files  map[string]string // under the cgroup mount root
		want   float64           // 0: no limit
	}{
		"v2, a Pod's limit in its own cgroup (cgroup namespace)": {
			cgroup: "0::/\n",
			files:  map[string]string{"cpu.max": "250000 100000\n"},
			want:   2.5,
		},
		"v2, no limit": {
			cgroup: "0::/\n",
			files:  map[string]string{"cpu.max": "max 100000\n"},
		},
		"v2, the parent's limit is tighter than the leaf's": {
			cgroup: "0::/pod/ctr\n",
			files:  map[string]string{"pod/cpu.max": "100000 100000\n", "pod/ctr/cpu.max": "max 100000\n"},
			want:   1,
		},
		"v2, the host's path is not visible in the container": {
			cgroup: "0::/kubepods/burstable/pod1/ctr\n",
			files:  map[string]string{"cpu.max": "50000 100000\n"},
			want:   0.5,
		},
		"v1, cpu and cpuacct mounted together": {
			cgroup: "4:memory:/x\n2:cpu,cpuacct:/x\n",
			files:  map[string]string{"cpu,cpuacct/x/cpu.cfs_quota_us": "300000\n", "cpu,cpuacct/x/cpu.cfs_period_us": "100000\n"},
			want:   3,
		},
		"v1, quota -1 is no limit": {
			cgroup: "1:cpu:/\n",
			files:  map[string]string{"cpu/cpu.cfs_quota_us": "-1\n", "cpu/cpu.cfs_period_us": "100000\n"},
		},
		"cpuacct alone is not the cpu controller": {
			cgroup: "2:cpuacct:/\n",
			files:  map[string]string{"cpuacct/cpu.cfs_quota_us": "100000\n", "cpuacct/cpu.cfs_period_us": "100000\n"},
		},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			root := filepath.Join(dir, "sys")
			for p, body := range tt.files {
				writeFile(t, filepath.Join(root, p), body)
			}
			writeFile(t, filepath.Join(dir, "cgroup"), tt.cgroup)
			got, ok := cgroupCPULimit(filepath.Join(dir, "cgroup"), root)
			if !ok {
				got = 0
			}
			if got != tt.want {
				t.Errorf("limit %v (found %v), want %v", got, ok, tt.want)
			}
		})
	}
}

func writeFile(t *testing.T, path, body string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
}
