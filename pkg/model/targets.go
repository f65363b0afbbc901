package model

import (
	"fmt"
	"net/netip"
	"slices"

	"github.com/tidegate/tidegate/pkg/annotations"
)

// TargetPolicy says where a URL of an Ingress may point nginx (auth-url,
// mirror-target) beyond what annotations.ParseTarget refuses everywhere
// (unix sockets, unspecified, link-local and multicast addresses). Nothing
// an Ingress author writes may reach tidegate's own servers: its control
// socket is a unix socket (never reachable that way), its TCP ports are
// refused here.
type TargetPolicy struct {
	// AllowLoopback lets URLs reach this machine's loopback addresses and
	// names, as with `tidegate local`, where the manifests are the
	// operator's own and services run beside nginx. In a cluster the
	// node's loopback holds the kubelet and other system services, never a
	// tenant's: refused.
	AllowLoopback bool
	// OwnPorts are the ports tidegate and its nginx listen on (HTTP,
	// HTTPS, status, admission webhook): never a target on loopback or on
	// one of OwnAddrs, this machine's addresses.
	OwnPorts []int
	OwnAddrs []netip.Addr
}

// check returns why nginx may not connect to t, or nil.
func (p TargetPolicy) check(url string, t annotations.Target) error {
	own := t.Loopback || t.Addr.IsValid() && slices.Contains(p.OwnAddrs, t.Addr.Unmap())
	if own && slices.Contains(p.OwnPorts, t.Port) {
		return fmt.Errorf("%q points at port %d of this machine, where tidegate itself listens; name the service that should answer", url, t.Port)
	}
	if t.Loopback && !p.AllowLoopback {
		return fmt.Errorf("%q points at this machine's loopback (%s); in a cluster that is the node's own services, never an Ingress's: name the Service (http://NAME.NAMESPACE.svc.cluster.local/...)", url, t.Host)
	}
	return nil
}

// targetPolicy applies opts.Targets to the URLs of one Ingress's
// annotations that nginx connects to: a refused auth-url is reported as
// rejected (its locations then refuse every request, extauth.go), a
// refused mirror-target is left out.
func (b *builder) targetPolicy(cfg *annotations.Config, report []annotations.Entry) {
	for i, e := range report {
		if e.Status != annotations.Applied && e.Status != annotations.Different {
			continue
		}
		var url string
		switch e.Key {
		case "auth-url":
			url = cfg.ExtAuth.URL
		case "mirror-target":
			url = cfg.Mirror.Target
		default:
			continue
		}
		t, err := annotations.ParseTarget(url)
		if err == nil {
			err = b.opts.Targets.check(url, t)
		}
		if err == nil {
			continue
		}
		report[i].Status, report[i].Detail = annotations.Rejected, err.Error()
		if e.Key == "auth-url" {
			cfg.ExtAuth = annotations.ExtAuth{}
		} else {
			cfg.Mirror = annotations.Mirror{}
		}
	}
}
