package kubeapi

import "syscall"

// sysProcAttr makes the kernel kill etcd/kube-apiserver if the test binary
// dies without running cleanups (e.g. go test -timeout panics).
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
