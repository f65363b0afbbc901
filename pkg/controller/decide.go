// Package controller is the sync loop: it turns snapshots into models,
// decides between a reload and a push, applies the decision, and reports.
package controller

import (
	"reflect"

	"github.com/tidegate/tidegate/pkg/model"
)

// Plan is what one sync has to do to move nginx from one model to the next.
type Plan struct {
	// Reload is true when nginx.conf changes: a host, a path, TLS on or off,
	// a location setting or a global setting.
	Reload bool
	// Backends are added or changed backends to push; RemovedBackends are
	// names to drop.
	Backends        []model.Backend
	RemovedBackends []string
	// Certificates are added or changed key pairs; RemovedCertificates are
	// IDs to drop.
	Certificates        []model.Certificate
	RemovedCertificates []string
}

// Empty reports whether the plan does nothing.
func (p Plan) Empty() bool {
	return !p.Reload && len(p.Backends) == 0 && len(p.RemovedBackends) == 0 &&
		len(p.Certificates) == 0 && len(p.RemovedCertificates) == 0
}

// Decide is the one rule of the data plane: a change to the Structure
// reloads nginx; everything else — endpoints, weights, algorithms,
// certificate contents — is pushed to Lua and never reloads. prev is nil
// before the first sync (everything is pushed).
func Decide(prev, next *model.Model) Plan {
	var p Plan
	var prevDyn model.Dynamic
	if prev == nil {
		p.Reload = true
	} else {
		p.Reload = !reflect.DeepEqual(prev.Structure, next.Structure)
		prevDyn = prev.Dynamic
	}
	old := make(map[string]*model.Backend, len(prevDyn.Backends))
	for i := range prevDyn.Backends {
		old[prevDyn.Backends[i].Name] = &prevDyn.Backends[i]
	}
	for i := range next.Dynamic.Backends {
		b := &next.Dynamic.Backends[i]
		if o, ok := old[b.Name]; !ok || !reflect.DeepEqual(*o, *b) {
			p.Backends = append(p.Backends, *b)
		}
		delete(old, b.Name)
	}
	for _, b := range prevDyn.Backends {
		if _, gone := old[b.Name]; gone {
			p.RemovedBackends = append(p.RemovedBackends, b.Name)
		}
	}
	oldC := make(map[string]*model.Certificate, len(prevDyn.Certificates))
	for i := range prevDyn.Certificates {
		oldC[prevDyn.Certificates[i].ID] = &prevDyn.Certificates[i]
	}
	for i := range next.Dynamic.Certificates {
		c := &next.Dynamic.Certificates[i]
		if o, ok := oldC[c.ID]; !ok || !reflect.DeepEqual(*o, *c) {
			p.Certificates = append(p.Certificates, *c)
		}
		delete(oldC, c.ID)
	}
	for _, c := range prevDyn.Certificates {
		if _, gone := oldC[c.ID]; gone {
			p.RemovedCertificates = append(p.RemovedCertificates, c.ID)
		}
	}
	return p
}
