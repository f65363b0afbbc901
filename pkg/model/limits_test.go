package model_test

import (
	"encoding/json"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tidegate/tidegate/pkg/fixture"
	"github.com/tidegate/tidegate/pkg/model"
	"github.com/tidegate/tidegate/pkg/tlsutil"
)

// TestLimitsMatchLua: the model's limits are the Lua data plane's, so nginx
// never refuses a push for an item the model built.
func TestLimitsMatchLua(t *testing.T) {
	b, err := os.ReadFile("../../lua/tidegate/schema.lua")
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]int{"MAX_ENDPOINTS": model.MaxEndpoints, "MAX_HOSTS": model.MaxCertificateHosts, "MAX_CANARIES": model.MaxCanaries} {
		m := regexp.MustCompile(`(?m)^local ` + name + ` = ([0-9]+)`).FindSubmatch(b)
		if m == nil {
			t.Errorf("schema.lua has no %s", name)
			continue
		}
		if got, _ := strconv.Atoi(string(m[1])); got != want {
			t.Errorf("schema.lua %s = %d, the model's is %d", name, got, want)
		}
	}
}

// TestEjectionDefaultsMatchLua: the ejection Lua applies to a backend that
// carries none is model.DefaultEjection, field by field (the JSON names the
// push uses), so a backend the model leaves at the defaults is balanced as
// its documentation says.
func TestEjectionDefaultsMatchLua(t *testing.T) {
	b, err := os.ReadFile("../../lua/tidegate/schema.lua")
	if err != nil {
		t.Fatal(err)
	}
	block := regexp.MustCompile(`(?s)\n_M\.EJECTION_DEFAULTS = \{\n(.*?)\n\}`).FindSubmatch(b)
	if block == nil {
		t.Fatal("schema.lua has no _M.EJECTION_DEFAULTS table")
	}
	lua := map[string]int{}
	for _, line := range strings.Split(string(block[1]), "\n") {
		m := regexp.MustCompile(`^\s*([a-z0-9_]+) = ([0-9]+),?\s*$`).FindStringSubmatch(line)
		if m == nil {
			t.Fatalf("schema.lua EJECTION_DEFAULTS: unexpected line %q", line)
		}
		lua[m[1]], _ = strconv.Atoi(m[2])
	}
	j, err := json.Marshal(model.DefaultEjection)
	if err != nil {
		t.Fatal(err)
	}
	var goDefaults map[string]int
	if err := json.Unmarshal(j, &goDefaults); err != nil {
		t.Fatal(err)
	}
	for name, want := range goDefaults {
		got, ok := lua[name]
		if !ok {
			t.Errorf("schema.lua EJECTION_DEFAULTS has no %s", name)
			continue
		}
		if got != want {
			t.Errorf("schema.lua EJECTION_DEFAULTS.%s = %d, model.DefaultEjection's is %d", name, got, want)
		}
	}
	for name := range lua {
		if _, ok := goDefaults[name]; !ok {
			t.Errorf("schema.lua EJECTION_DEFAULTS.%s is not a field of model.Ejection", name)
		}
	}
}

// TestTooManyCanaries: canaries beyond what one backend takes are reported
// and left out; the first ones (by age) stay.
func TestTooManyCanaries(t *testing.T) {
	objs := []any{fixture.Service("default/web", "80"), fixture.Ingress("main").Created(time.Hour).Host("a.io").Prefix("/", "web:80")}
	for i := range model.MaxCanaries + 2 {
		svc := fmt.Sprintf("v%02d", i)
		objs = append(objs, fixture.Service("default/"+svc, "80"),
			fixture.Ingress("c-"+svc).Created(time.Duration(-i)*time.Minute).Host("a.io").Prefix("/", svc+":80").
				Annotate(ann+"canary", "true").Annotate(ann+"canary-weight", "1"))
	}
	m := model.Build(fixture.Snapshot(objs...), model.DefaultOptions())
	if got := len(backendNamed(m, "default/web:80").Canaries); got != model.MaxCanaries {
		t.Errorf("%d canaries, want %d", got, model.MaxCanaries)
	}
	var reported []string
	for _, p := range problems(m) {
		if strings.Contains(p, "already has 16 canaries") {
			reported = append(reported, p)
		}
	}
	if len(reported) != 2 {
		t.Errorf("left-out canaries reported: %q, want 2", reported)
	}
}

// TestDefaultSSLCertificate: the --default-ssl-certificate Secret is pushed
// under the default name "*", next to the hosts that name it themselves; a
// missing one is reported and leaves tidegate's self-signed default.
func TestDefaultSSLCertificate(t *testing.T) {
	crt, key, err := tlsutil.SelfSigned("wild", "*.example.test")
	if err != nil {
		t.Fatal(err)
	}
	ing := fixture.Ingress("a").Host("a.example.test").Prefix("/", "web:80").TLS("wild", "a.example.test")
	opts := model.DefaultOptions()
	opts.DefaultSSLCertificate = "default/wild"
	m := model.Build(fixture.Snapshot(fixture.Service("default/web", "80"), ing, fixture.TLSSecret("default/wild", crt, key)), opts)
	if len(m.Dynamic.Certificates) != 1 || !slices.Equal(m.Dynamic.Certificates[0].Hosts, []string{model.DefaultSNI, "a.example.test"}) {
		t.Errorf("certificates %+v, want default/wild for * and a.example.test", m.Dynamic.Certificates)
	}
	missing := model.Build(fixture.Snapshot(fixture.Service("default/web", "80")), opts)
	if len(missing.Dynamic.Certificates) != 0 || !strings.Contains(strings.Join(problems(missing), "\n"),
		"Secret default/wild --default-ssl-certificate: not found; tidegate's self-signed certificate is served instead") {
		t.Errorf("a missing default Secret: certificates %+v, problems %q", missing.Dynamic.Certificates, problems(missing))
	}
}
