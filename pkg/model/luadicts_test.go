package model_test

import (
	"reflect"
	"strings"
	"testing"

	"github.com/tidegate/tidegate/pkg/fixture"
	"github.com/tidegate/tidegate/pkg/model"
)

// TestLuaSharedDicts: ingress-nginx's lua-shared-dicts sizes tidegate's two
// dicts under ingress-nginx's names, only ever upwards, and says what it
// ignores or refuses.
func TestLuaSharedDicts(t *testing.T) {
	def := model.DefaultLuaDicts()
	tests := map[string]struct {
		value   string
		want    model.LuaDicts
		problem string
	}{
		"megabytes without a unit":                 {value: "certificate_data: 512", want: model.LuaDicts{Backends: def.Backends, Certificates: 512}},
		"both, with units":                         {value: "configuration_data: 128M, certificate_data:1024m", want: model.LuaDicts{Backends: 128, Certificates: 1024}},
		"kilobytes round up":                       {value: "configuration_data: 131073k", want: model.LuaDicts{Backends: 129, Certificates: def.Certificates}},
		"smaller than the default is raised to it": {value: "certificate_data: 20, configuration_data: 5", want: def},
		"an ingress-nginx dict tidegate does not have": {value: "balancer_ewma: 10M, certificate_data: 300", want: model.LuaDicts{Backends: def.Backends, Certificates: 300},
			problem: `tidegate has no Lua shared dict "balancer_ewma"`},
		"not a size":                {value: "certificate_data: lots", want: def, problem: `"certificate_data: lots" is not "name: size"`},
		"no size":                   {value: "certificate_data", want: def, problem: "is not \"name: size\""},
		"too large":                 {value: "certificate_data: 5000", want: def, problem: "is more than 4096m"},
		"a bad item spoils the key": {value: "certificate_data: 512, configuration_data: x", want: def, problem: "the default sizes are used"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			m := model.Build(fixture.Snapshot(fixture.ConfigMap("tidegate/tidegate", "lua-shared-dicts="+tc.value)), model.DefaultOptions())
			if got := m.Structure.Global.Settings.LuaDicts; !reflect.DeepEqual(got, tc.want) {
				t.Errorf("sizes %+v, want %+v", got, tc.want)
			}
			p := problems(m)
			if tc.problem == "" && len(p) != 0 || tc.problem != "" && (len(p) != 1 || !strings.Contains(p[0], tc.problem) || !strings.Contains(p[0], "data.lua-shared-dicts")) {
				t.Errorf("problems %q, want one containing %q", p, tc.problem)
			}
		})
	}
	if got := model.Build(fixture.Snapshot(), model.DefaultOptions()).Structure.Global.Settings.LuaDicts; got != def {
		t.Errorf("without the key: %+v, want %+v", got, def)
	}
}

// TestBufferAndGzipKeys: values of the buffer, gzip and connection keys
// that reach nginx.conf are checked; a bad one is reported and leaves the
// default.
func TestBufferAndGzipKeys(t *testing.T) {
	build := func(kv string) *model.Model {
		return model.Build(fixture.Snapshot(fixture.ConfigMap("tidegate/tidegate", kv)), model.DefaultOptions())
	}
	def := model.DefaultSettings()
	for kv, problem := range map[string]string{
		"gzip-types=text/html; include /etc/passwd":         `is not a MIME type`,
		"gzip-types=text/x#y":                               `is not a MIME type`,
		"gzip-level=10":                                     "is not a gzip level from 1 to 9",
		"proxy-buffer-size=16k; x":                          "is not an nginx size",
		"proxy-buffers-number=2":                            "is not a number from 4 to 1024",
		"large-client-header-buffers=4":                     `is not "NUMBER SIZE"`,
		"large-client-header-buffers=4 100m":                `is not "NUMBER SIZE"`,
		"block-cidrs=10.0.0.0/8, nope":                      `"nope" is not an IP address or CIDR`,
		"max-worker-connections=10":                         "is not 0 or a number from 512",
		"max-worker-open-files=100":                         "is not 0 or a number from 1024",
		"keep-alive-requests=0":                             "is not a number from 1",
		"use-proxy-protocol=yes":                            `is not "true" or "false"`,
		"ssl-session-tickets=yes":                           `is not "true" or "false"`,
		"ssl-session-ticket-key=" + strings.Repeat("A", 64): "not supported: a ConfigMap is no place for the key",
	} {
		m := build(kv)
		s := m.Structure.Global.Settings
		if p := problems(m); len(p) != 1 || !strings.Contains(p[0], problem) {
			t.Errorf("%s: problems %q, want one saying %q", kv, p, problem)
		}
		if !reflect.DeepEqual(s.GzipTypes, def.GzipTypes) || s.GzipLevel != def.GzipLevel || s.Buffers != def.Buffers ||
			len(s.BlockCIDRs) != 0 || s.SSLSessionTickets || s.WorkerConnections != def.WorkerConnections || s.MaxWorkerOpenFiles != 0 || s.KeepAliveRequests != def.KeepAliveRequests || s.UseProxyProtocol {
			t.Errorf("%s: a refused value changed the settings", kv)
		}
	}
	// An empty CIDR list is no mistake in the ConfigMap: block-cidrs ""
	// (what a chart renders for "none") blocks nobody.
	if m := build("block-cidrs= , "); len(problems(m)) != 0 || len(m.Structure.Global.Settings.BlockCIDRs) != 0 {
		t.Errorf("block-cidrs empty: problems %q, blocked %v", problems(m), m.Structure.Global.Settings.BlockCIDRs)
	}
	s := build("gzip-types=Application/JSON text/*").Structure.Global.Settings
	if !reflect.DeepEqual(s.GzipTypes, []string{"application/json", "text/*"}) {
		t.Errorf("gzip-types: %q", s.GzipTypes)
	}
}
