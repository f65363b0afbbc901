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
// certificate contents — is pushed to Lua and never reloads. The one
// balancing change that reaches the Structure is the first ewma backend
// coming in or the last one going (Structure.LogPhase: the log phase is
// rendered only while ewma needs it). prev is nil before the first sync
// (everything is pushed).
func Decide(prev, next *model.Model) Plan {
	var p Plan
	var prevDyn model.Dynamic
	if prev == nil {
		p.Reload = true
	} else {
		p.Reload = !reflect.DeepEqual(prev.Structure, next.Structure)
		prevDyn = prev.Dynamic
	}
	p.Backends, p.RemovedBackends = diff(prevDyn.Backends, next.Dynamic.Backends, func(b model.Backend) string { return b.Name })
	p.Certificates, p.RemovedCertificates = diff(prevDyn.Certificates, next.Dynamic.Certificates, func(c model.Certificate) string { return c.ID })
	return p
}

// diff returns the items of next that are new or changed since prev, and the
// keys of the items of prev that next no longer has, both in list order.
// Keys are unique within a list.
func diff[T any](prev, next []T, key func(T) string) (changed []T, removed []string) {
	// The same keys in the same order, as after every endpoint change:
	// compared in step, without indexing thousands of keys, and items
	// that share their contents with the previous model (model.Update)
	// without a deep comparison.
	if len(prev) == len(next) {
		i := 0
		for i < len(next) && key(prev[i]) == key(next[i]) {
			i++
		}
		if i == len(next) {
			for i := range next {
				if !identical(reflect.ValueOf(&prev[i]).Elem(), reflect.ValueOf(&next[i]).Elem()) &&
					!reflect.DeepEqual(prev[i], next[i]) {
					changed = append(changed, next[i])
				}
			}
			return changed, nil
		}
	}
	old := make(map[string]int, len(prev))
	for i := range prev {
		old[key(prev[i])] = i
	}
	for _, item := range next {
		k := key(item)
		if i, ok := old[k]; !ok || !reflect.DeepEqual(prev[i], item) {
			changed = append(changed, item)
		}
		delete(old, k)
	}
	for _, item := range prev {
		if _, gone := old[key(item)]; gone {
			removed = append(removed, key(item))
		}
	}
	return changed, removed
}

// identical reports whether two structs hold the very same values, field by
// field: equal strings, booleans and integers, and the same slices (backing
// array and length), pointers and maps. That implies reflect.DeepEqual at a
// fraction of its cost; false only means "compare deeply".
func identical(a, b reflect.Value) bool {
	if a.Kind() != reflect.Struct {
		return false
	}
	for i := 0; i < a.NumField(); i++ {
		x, y := a.Field(i), b.Field(i)
		switch x.Kind() {
		case reflect.String:
			if x.String() != y.String() {
				return false
			}
		case reflect.Bool:
			if x.Bool() != y.Bool() {
				return false
			}
		case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
			if x.Int() != y.Int() {
				return false
			}
		case reflect.Slice:
			if x.Len() != y.Len() || x.UnsafePointer() != y.UnsafePointer() {
				return false
			}
		case reflect.Pointer, reflect.Map:
			if x.UnsafePointer() != y.UnsafePointer() {
				return false
			}
		default:
			return false
		}
	}
	return true
}
