package controller

import (
	"reflect"
	"testing"

	"github.com/tidegate/tidegate/pkg/fixture"
	"github.com/tidegate/tidegate/pkg/model"
	"github.com/tidegate/tidegate/pkg/snapshot"
)

func TestFindCulprits(t *testing.T) {
	var objs []any
	for _, n := range []string{"a", "b", "c", "d", "e", "f", "g", "h", "i", "j"} {
		objs = append(objs, fixture.Ingress(n).Host(n+".io").Prefix("/", "web:80"))
	}
	snap := fixture.Snapshot(objs...)
	ours := model.OurIngresses(snap, model.DefaultOptions())
	has := func(s *snapshot.Snapshot, names ...string) bool {
		for _, ing := range s.Ingresses {
			for _, n := range names {
				if ing.Name == n {
					return true
				}
			}
		}
		return false
	}
	tests := map[string]struct {
		fails  func(*snapshot.Snapshot) bool
		want   []string
		wantOK bool
	}{
		"one bad ingress": {
			fails: func(s *snapshot.Snapshot) bool { return has(s, "g") }, want: []string{"default/g"}, wantOK: true,
		},
		"two bad ingresses": {
			fails: func(s *snapshot.Snapshot) bool { return has(s, "b", "i") }, want: []string{"default/b", "default/i"}, wantOK: true,
		},
		"a pair that only fails together: the younger one goes": {
			fails: func(s *snapshot.Snapshot) bool { return has(s, "c") && has(s, "e") }, want: []string{"default/e"}, wantOK: true,
		},
		"failure not caused by ingresses": {
			fails: func(*snapshot.Snapshot) bool { return true }, want: nil, wantOK: false,
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got, ok := findCulprits(snap, ours, tc.fails)
			if !reflect.DeepEqual(got, tc.want) || ok != tc.wantOK {
				t.Errorf("got %v ok=%v, want %v ok=%v", got, ok, tc.want, tc.wantOK)
			}
		})
	}
}
