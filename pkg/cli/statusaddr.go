package cli

import (
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
)

// statusAddressHelp documents --status-address; the choice of defaults is
// explained in statusListen.
const statusAddressHelp = "comma-separated IP addresses the status port (/healthz, /metrics, the status page) listens on; " +
	"0.0.0.0 or :: for every interface (default: 127.0.0.1 for local; for controller $POD_IP and 127.0.0.1 when POD_IP is set, " +
	"as the DaemonSet does from the downward API, else every interface in a pod and 127.0.0.1 outside one)"

// statusListen returns the host:port listen addresses of the status port,
// and a warning to log when the choice exposes it more than the operator
// may expect.
//
// The status page names every host, backend and endpoint, so it listens on
// loopback unless told otherwise: `tidegate local` runs on a workstation
// or a server whose other interfaces may face a network. In a pod the
// kubelet's probes and Prometheus connect to the pod's IP, so loopback
// alone would fail every probe. The pod's IP (POD_IP from the downward
// API's status.podIP) is the one address both need, in a pod network and
// with hostNetwork alike: there it is the node's own address (the one the
// kubelet registered), not every interface of the node, which a node
// facing the internet would expose. Loopback is kept beside it for
// `kubectl port-forward`, which connects to localhost inside the pod. A pod
// without POD_IP keeps listening on every interface, so that existing
// manifests keep passing their probes, with a warning.
func (f *commonFlags) statusListen(getenv func(string) string) (addrs []string, warning string, err error) {
	port := strconv.Itoa(f.statusPort)
	var ips []string
	switch {
	case f.statusAddress != "":
		for _, a := range strings.Split(f.statusAddress, ",") {
			a = strings.TrimSpace(a)
			if _, err := netip.ParseAddr(a); err != nil {
				return nil, "", fmt.Errorf("--status-address %q: %q is not an IP address (write IP addresses separated by commas; 0.0.0.0 or :: for every interface)", f.statusAddress, a)
			}
			ips = append(ips, a)
		}
		if len(ips) > 1 {
			for _, a := range ips {
				if netip.MustParseAddr(a).IsUnspecified() {
					return nil, "", fmt.Errorf("--status-address %q: %s already means every interface; give it alone", f.statusAddress, a)
				}
			}
		}
	case !f.controller:
		ips = []string{"127.0.0.1"}
	case getenv("POD_IP") != "":
		podIP, err := netip.ParseAddr(getenv("POD_IP"))
		if err != nil {
			return nil, "", fmt.Errorf("POD_IP %q is not an IP address (the downward API's status.podIP is one)", getenv("POD_IP"))
		}
		ips = []string{podIP.String(), "127.0.0.1"}
	case getenv("KUBERNETES_SERVICE_HOST") != "":
		return []string{net.JoinHostPort("", port)}, "the status port listens on every interface: set POD_IP from the downward API (status.podIP) " +
			"or --status-address, as deploy/daemonset.yaml does; with hostNetwork this is every interface of the node", nil
	default:
		ips = []string{"127.0.0.1"}
	}
	seen := map[string]bool{}
	for _, ip := range ips {
		if !seen[ip] {
			seen[ip] = true
			addrs = append(addrs, net.JoinHostPort(ip, port))
		}
	}
	return addrs, "", nil
}
