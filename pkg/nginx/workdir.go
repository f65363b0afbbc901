package nginx

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// The working directory holds nginx.conf, keys, htpasswd files, the
// control token and logs that may carry tokens: it is tidegate's alone.
// Directories are 0700 and files 0600, except where nginx's workers must
// go when tidegate runs as root and they run as another user (Workers):
//
//   - nginx's master (root) reads nginx.conf, certificates, keys, CA files,
//     the Lua modules (init_by_lua requires every module), the seed and the
//     control token, and opens the logs and every listening socket;
//   - the workers open, while serving: htpasswd files (auth_basic reads
//     its file per request), temporary files under tmp/ (request bodies,
//     buffered answers, the auth cache: nginx makes those directories
//     their own, 0700), the sockets of the 503 server (the balancer
//     proxies there), and the log files again when asked to reopen them
//     (nginx makes those their own first).
//
// So the working directory, logs/, tmp/, auth/ and unavailable/ are 0710
// with the workers' group (enter, never list) and htpasswd files 0640 with
// it; everything else stays owner-only, the control socket's run/
// included.

// WorkerUser is the user nginx's workers run as when tidegate runs as root
// (nginx's user directive). It is never root.
type WorkerUser struct {
	Name, Group string
	UID, GID    int
}

// LookupWorkerUser finds name and its primary group; root is refused.
func LookupWorkerUser(name string) (*WorkerUser, error) {
	u, err := user.Lookup(name)
	if err != nil {
		return nil, fmt.Errorf("nginx worker user: %w", err)
	}
	uid, err1 := strconv.Atoi(u.Uid)
	gid, err2 := strconv.Atoi(u.Gid)
	if err := errors.Join(err1, err2); err != nil {
		return nil, fmt.Errorf("nginx worker user %s: %w", name, err)
	}
	if uid == 0 || gid == 0 {
		return nil, fmt.Errorf("nginx worker user %s: workers never run as root or its group", name)
	}
	g, err := user.LookupGroupId(u.Gid)
	if err != nil {
		return nil, fmt.Errorf("nginx worker user %s: %w", name, err)
	}
	return &WorkerUser{Name: u.Username, Group: g.Name, UID: uid, GID: gid}, nil
}

// workerDirs are the directories the workers enter (see above).
var workerDirs = []string{"logs", "tmp", "auth", "unavailable"}

// ownerDirs are the directories only tidegate and nginx's master use.
var ownerDirs = []string{"lua", "check", "run", "seed"}

// prepareWorkDir makes the working directory's directories and sets the
// modes and groups above on them and on what earlier runs left there.
func prepareWorkDir(set Settings) error {
	for _, d := range append(append([]string{""}, workerDirs...), ownerDirs...) {
		if err := os.MkdirAll(filepath.Join(set.WorkDir, d), 0o700); err != nil {
			return fmt.Errorf("prepare working directory: %w", err)
		}
	}
	if err := workerAccess(set, set.WorkDir, 0o710, 0o700); err != nil {
		return err
	}
	for _, d := range workerDirs {
		if err := workerAccess(set, filepath.Join(set.WorkDir, d), 0o710, 0o700); err != nil {
			return err
		}
	}
	for _, d := range ownerDirs {
		if err := os.Chmod(filepath.Join(set.WorkDir, d), 0o700); err != nil {
			return fmt.Errorf("prepare working directory: %w", err)
		}
	}
	// Files of earlier runs (older versions wrote some 0644), and the logs
	// before nginx opens them: nginx would make them 0644.
	for _, d := range []string{"", "logs", "check", "auth"} {
		entries, err := os.ReadDir(filepath.Join(set.WorkDir, d))
		if err != nil {
			return fmt.Errorf("prepare working directory: %w", err)
		}
		for _, e := range entries {
			if !e.Type().IsRegular() {
				continue
			}
			mode, gid := authFileMode(set, e.Name())
			if d != "auth" {
				mode, gid = 0o600, -1
			}
			if err := setMode(filepath.Join(set.WorkDir, d, e.Name()), mode, gid); err != nil {
				return fmt.Errorf("prepare working directory: %w", err)
			}
		}
	}
	logs := []string{set.ErrorLogPath(), set.accessLogPath()}
	if !set.NoRequestMetrics {
		logs = append(logs, set.MetricsLogPath())
	}
	for _, log := range logs {
		if filepath.Dir(log) != filepath.Join(set.WorkDir, "logs") {
			continue // /dev/stderr, or a file the operator chose
		}
		f, err := os.OpenFile(log, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
		if err != nil {
			return fmt.Errorf("prepare working directory: %w", err)
		}
		f.Close()
	}
	if set.Workers != nil {
		return reachable(set.WorkDir, set.Workers)
	}
	return nil
}

// workerAccess gives path mode and the workers' group when they run as
// another user, else ownerMode.
func workerAccess(set Settings, path string, mode, ownerMode fs.FileMode) error {
	if set.Workers == nil {
		mode = ownerMode
	} else if err := os.Chown(path, -1, set.Workers.GID); err != nil {
		return fmt.Errorf("prepare working directory: %w", err)
	}
	if err := os.Chmod(path, mode); err != nil {
		return fmt.Errorf("prepare working directory: %w", err)
	}
	return nil
}

// reachable says which directory above dir the workers cannot enter: nginx
// would start, and then answer 500 for basic auth, 502 for a backend
// without endpoints, and fail requests that need a temporary file.
func reachable(dir string, w *WorkerUser) error {
	for d := filepath.Dir(dir); ; d = filepath.Dir(d) {
		st, err := os.Stat(d)
		if err != nil {
			return fmt.Errorf("working directory: %w", err)
		}
		sys, ok := st.Sys().(*syscall.Stat_t)
		mode := st.Mode().Perm()
		enter := mode&0o001 != 0 ||
			(ok && int(sys.Gid) == w.GID && mode&0o010 != 0) ||
			(ok && int(sys.Uid) == w.UID && mode&0o100 != 0)
		if !enter {
			return fmt.Errorf("working directory %s: nginx's workers run as %s, who may not enter %s (%s); choose a --workdir they can reach, or allow it: chmod o+x %s",
				dir, w.Name, d, mode, d)
		}
		if d == filepath.Dir(d) {
			return nil
		}
	}
}

// setMode sets path's mode, and its group unless gid is -1.
func setMode(path string, mode fs.FileMode, gid int) error {
	if gid != -1 {
		if err := os.Chown(path, -1, gid); err != nil {
			return err
		}
	}
	return os.Chmod(path, mode)
}

// authFileMode is the mode and group of a file in auth/: htpasswd files
// are read by the workers, the rest by the master only.
func authFileMode(set Settings, name string) (fs.FileMode, int) {
	if strings.HasSuffix(name, ".htpasswd") && set.Workers != nil {
		return 0o640, set.Workers.GID
	}
	return 0o600, -1
}
