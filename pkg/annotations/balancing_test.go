package annotations

import (
	"reflect"
	"testing"
)

// TestDataPlaneKeys: the balancing and canary keys are reported as applied
// by the data plane whatever their value (the model reports a refused one
// where the setting applies), and their typed settings carry what was
// refused, even a value every annotation refuses (a control character).
func TestDataPlaneKeys(t *testing.T) {
	tests := map[string]struct {
		anns      map[string]string
		status    map[string]Status
		balancing Balancing
		canary    Canary
	}{
		"nothing": {canary: Canary{WeightTotal: 100}},
		"sticky ewma with a bad cookie name": {
			anns:   map[string]string{Prefix + "load-balance": "ewma", Prefix + "affinity": "cookie", Prefix + "session-cookie-name": "a b"},
			status: map[string]Status{"load-balance": Applied, "affinity": Applied, "session-cookie-name": Applied},
			balancing: Balancing{Algorithm: "ewma", Affinity: &Affinity{Mode: "balanced", Name: "INGRESSCOOKIE"},
				Invalid: []Invalid{{Key: "session-cookie-name", Value: "a b", Want: "a cookie name (letters, digits and !#$%&'*+.^_`|~-, at most 64)"}}},
			canary: Canary{WeightTotal: 100},
		},
		"hash by a variable nginx does not know": {
			anns:   map[string]string{Prefix + "upstream-hash-by": "$nope$uri"},
			status: map[string]Status{"upstream-hash-by": Applied},
			balancing: Balancing{Invalid: []Invalid{{Key: "upstream-hash-by", Value: "$nope$uri",
				Want: "an expression of known nginx variables such as $request_uri or $http_x_user"}}},
			canary: Canary{WeightTotal: 100},
		},
		"canary with a control character in its value": {
			anns: map[string]string{Prefix + "canary": "true", Prefix + "canary-by-header": "X", Prefix + "canary-by-header-value": "a\nb",
				Prefix + "canary-weight": "5", Prefix + "canary-weight-total": "10"},
			status: map[string]Status{"canary": Applied, "canary-by-header": Applied, "canary-by-header-value": Rejected,
				"canary-weight": Applied, "canary-weight-total": Applied},
			canary: Canary{Enabled: true, Header: "X", Weight: 5, WeightTotal: 10,
				Invalid: []Invalid{{Key: "canary-by-header-value", Value: "a\nb", Want: "printable ASCII"}}},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			cfg, report := Parse(tc.anns)
			if !reflect.DeepEqual(cfg.Balancing, tc.balancing) {
				t.Errorf("balancing %+v, want %+v", cfg.Balancing, tc.balancing)
			}
			if !reflect.DeepEqual(cfg.Canary, tc.canary) {
				t.Errorf("canary %+v, want %+v", cfg.Canary, tc.canary)
			}
			for _, e := range report {
				if e.Status != tc.status[e.Key] {
					t.Errorf("%s: status %s (%s), want %s", e.Key, e.Status, e.Detail, tc.status[e.Key])
				}
				if e.Status == Applied && e.Detail != "applied by the data plane (pushed to Lua, no reload)" {
					t.Errorf("%s: detail %q", e.Key, e.Detail)
				}
			}
			if cfg.dataPlane != nil {
				t.Errorf("the raw values are left in Config: %v", cfg.dataPlane)
			}
		})
	}
}
