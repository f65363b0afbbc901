package cli

import (
	"reflect"
	"strings"
	"testing"
)

func TestStatusListen(t *testing.T) {
	pod := map[string]string{"KUBERNETES_SERVICE_HOST": "10.96.0.1"}
	for name, tc := range map[string]struct {
		controller bool
		flag       string
		env        map[string]string
		want       []string
		warn       bool
		err        string
	}{
		"local: loopback":                                             {want: []string{"127.0.0.1:10254"}},
		"local in a pod: still loopback":                              {env: pod, want: []string{"127.0.0.1:10254"}},
		"local with the flag":                                         {flag: "192.0.2.7", want: []string{"192.0.2.7:10254"}},
		"controller outside a pod: loopback":                          {controller: true, want: []string{"127.0.0.1:10254"}},
		"controller with POD_IP: it and loopback":                     {controller: true, env: map[string]string{"POD_IP": "10.244.1.5", "KUBERNETES_SERVICE_HOST": "10.96.0.1"}, want: []string{"10.244.1.5:10254", "127.0.0.1:10254"}},
		"controller with a loopback POD_IP":                           {controller: true, env: map[string]string{"POD_IP": "127.0.0.1"}, want: []string{"127.0.0.1:10254"}},
		"controller with an IPv6 POD_IP":                              {controller: true, env: map[string]string{"POD_IP": "fd00::5"}, want: []string{"[fd00::5]:10254", "127.0.0.1:10254"}},
		"controller in a pod without POD_IP: every interface, warned": {controller: true, env: pod, want: []string{":10254"}, warn: true},
		"the flag wins over POD_IP":                                   {controller: true, flag: "10.0.0.1, ::1", env: map[string]string{"POD_IP": "10.244.1.5"}, want: []string{"10.0.0.1:10254", "[::1]:10254"}},
		"every interface by the flag":                                 {controller: true, flag: "0.0.0.0", want: []string{"0.0.0.0:10254"}},
		"duplicates once":                                             {flag: "127.0.0.1,127.0.0.1", want: []string{"127.0.0.1:10254"}},
		"a host name is refused":                                      {flag: "localhost", err: `"localhost" is not an IP address`},
		"every interface and another":                                 {flag: "0.0.0.0,127.0.0.1", err: "already means every interface"},
		"a bad POD_IP":                                                {controller: true, env: map[string]string{"POD_IP": "pod"}, err: "POD_IP"},
	} {
		t.Run(name, func(t *testing.T) {
			f := &commonFlags{statusPort: 10254, statusAddress: tc.flag, controller: tc.controller}
			got, warn, err := f.statusListen(func(k string) string { return tc.env[k] })
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err = %v, want one with %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("addresses = %q, want %q", got, tc.want)
			}
			if (warn != "") != tc.warn {
				t.Errorf("warning = %q, want one: %v", warn, tc.warn)
			}
		})
	}
}
