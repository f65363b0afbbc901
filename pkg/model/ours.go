package model

import (
	networkingv1 "k8s.io/api/networking/v1"

	"github.com/tidegate/tidegate/pkg/snapshot"
)

// OurIngresses returns the Ingresses of snap that a controller with opts
// serves, in the order Build settles conflicts in (oldest first). Sources use
// it to know which Secrets are referenced; the status writer to know which
// Ingresses get this controller's address.
func OurIngresses(snap *snapshot.Snapshot, opts Options) []*networkingv1.Ingress {
	return (&builder{snap: snap, opts: opts}).ourIngresses()
}
