package nginx

import (
	"testing"

	"github.com/tidegate/tidegate/pkg/model"
)

func TestWorkerLimits(t *testing.T) {
	tests := map[string]struct {
		openFiles, connections int    // the ConfigMap's
		hard                   uint64 // the hard limit tidegate runs under
		wantFiles, wantConns   int
	}{
		"defaults: the hard limit less 1024":     {connections: 16384, hard: 1 << 20, wantFiles: 1<<20 - 1024, wantConns: 16384},
		"a low hard limit still gives 1024":      {connections: 16384, hard: 1500, wantFiles: 1024, wantConns: 16384},
		"max-worker-open-files wins":             {openFiles: 8192, connections: 16384, hard: 1 << 20, wantFiles: 8192, wantConns: 16384},
		"max-worker-connections 0: 3/4 of files": {connections: 0, hard: 65536, wantFiles: 64512, wantConns: 48384},
		"unknown hard limit: no rlimit":          {connections: 16384, wantFiles: 0, wantConns: 16384},
		"unknown hard limit, connections 0":      {connections: 0, wantFiles: 0, wantConns: 16384},
		"a huge hard limit is capped at Linux's": {connections: 16384, hard: 1 << 40, wantFiles: 1<<30 - 1024, wantConns: 16384},
		"connections never below 512":            {openFiles: 600, connections: 0, hard: 1 << 20, wantFiles: 600, wantConns: 512},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			s := model.Settings{MaxWorkerOpenFiles: tc.openFiles, WorkerConnections: tc.connections}
			files, conns := workerLimits(s, tc.hard)
			if files != tc.wantFiles || conns != tc.wantConns {
				t.Errorf("workerLimits = %d files, %d connections; want %d, %d", files, conns, tc.wantFiles, tc.wantConns)
			}
		})
	}
}
