package nginx

import (
	"fmt"
	"syscall"

	"github.com/tidegate/tidegate/pkg/model"
)

// RaiseOpenFiles raises this process's soft limit of open files to its
// hard limit and returns both. Go raises its own soft limit at start too,
// but gives every child it starts the soft limit it inherited: nginx ran
// with containerd's 1024 and stopped accepting at about 1,000 connections
// while worker_connections said 16384. After an explicit Setrlimit, Go
// leaves the children the raised limit.
func RaiseOpenFiles() (soft, hard uint64, err error) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return 0, 0, fmt.Errorf("read the open files limit: %w", err)
	}
	lim.Cur = lim.Max
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return lim.Cur, lim.Max, fmt.Errorf("raise the open files limit to %d: %w", lim.Max, err)
	}
	return lim.Cur, lim.Max, nil
}

// workerLimits are worker_rlimit_nofile and worker_connections, as
// ingress-nginx computes them: max-worker-open-files, else the hard limit
// tidegate runs under less 1024 (room for the master and the controller),
// at least 1024; max-worker-connections, else (0) three quarters of the
// open files, at least 512. openFiles is 0, and the directive left out,
// when neither the setting nor the hard limit is known (a render for
// another machine).
func workerLimits(s model.Settings, hard uint64) (openFiles, connections int) {
	openFiles = s.MaxWorkerOpenFiles
	if openFiles == 0 && hard > 0 {
		openFiles = int(min(hard, 1<<30)) - 1024
		openFiles = max(openFiles, 1024)
	}
	connections = s.WorkerConnections
	if connections == 0 {
		connections = openFiles * 3 / 4
		if openFiles == 0 {
			connections = model.DefaultSettings().WorkerConnections
		}
	}
	return openFiles, max(connections, 512)
}
