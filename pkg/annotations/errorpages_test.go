package annotations

import (
	"reflect"
	"testing"
)

func TestErrors(t *testing.T) {
	tests := map[string]struct {
		anns   map[string]string
		status map[string]Status
		want   Errors
	}{
		"codes are sorted and deduplicated": {
			anns:   map[string]string{Prefix + "custom-http-errors": " 503,404, 404,", Prefix + "default-backend": "error-pages"},
			status: map[string]Status{"custom-http-errors": Applied, "default-backend": Applied},
			want:   Errors{Codes: []int{404, 503}, DefaultBackend: "error-pages"},
		},
		"codes outside 400-599 are rejected": {
			anns:   map[string]string{Prefix + "custom-http-errors": "404,302"},
			status: map[string]Status{"custom-http-errors": Rejected},
		},
		"an empty list is rejected": {
			anns:   map[string]string{Prefix + "custom-http-errors": " , "},
			status: map[string]Status{"custom-http-errors": Rejected},
		},
		"default-backend is a Service name of the Ingress's namespace": {
			anns:   map[string]string{Prefix + "default-backend": "other/errors"},
			status: map[string]Status{"default-backend": Rejected},
		},
		"injection in a code list": {
			anns:   map[string]string{Prefix + "custom-http-errors": "404; return 200"},
			status: map[string]Status{"custom-http-errors": Rejected},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			cfg, report := Parse(tc.anns)
			got := map[string]Status{}
			for _, e := range report {
				got[e.Key] = e.Status
			}
			if !reflect.DeepEqual(got, tc.status) {
				t.Errorf("statuses %v, want %v", got, tc.status)
			}
			if !reflect.DeepEqual(cfg.Errors, tc.want) {
				t.Errorf("Errors = %+v, want %+v", cfg.Errors, tc.want)
			}
		})
	}
}
