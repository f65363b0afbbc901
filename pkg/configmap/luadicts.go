package configmap

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// LuaDicts are the sizes, in MiB, of the shared memory zones the Lua data
// plane keeps its backends and certificates in. Changing one reloads nginx
// with that zone empty; the controller then pushes everything again.
type LuaDicts struct {
	Backends     int
	Certificates int
}

// DefaultLuaDicts are tidegate's sizes. A zone costs memory only as it fills
// (about 6 MiB per GiB of zone for the slab allocator's page table, the rest
// on use). Measured with a 2.3 KiB chain and a 1.7 KiB RSA key per
// certificate: 16 MiB held 2,500 certificates and failed at 3,500; 256 MiB
// held 40,000, nearly full.
func DefaultLuaDicts() LuaDicts { return LuaDicts{Backends: 64, Certificates: 256} }

// MaxLuaDict is the largest zone lua-shared-dicts may ask for, in MiB.
const MaxLuaDict = 4096

func init() {
	registry["lua-shared-dicts"] = parser{fallback: "the default sizes are used", parse: func(v string, c *Config) ([]string, error) {
		ignored, err := parseLuaDicts(v, &c.Settings.LuaDicts)
		var warnings []string
		for _, name := range ignored {
			warnings = append(warnings, fmt.Sprintf("tidegate has no Lua shared dict %q (it sizes only configuration_data and certificate_data); it is ignored", name))
		}
		return warnings, err
	}}
}

// luaDictNames are ingress-nginx's names for the zones tidegate has.
var luaDictNames = map[string]func(*LuaDicts) *int{
	"configuration_data": func(d *LuaDicts) *int { return &d.Backends },
	"certificate_data":   func(d *LuaDicts) *int { return &d.Certificates },
}

var luaDictSize = regexp.MustCompile(`^([0-9]{1,9})\s*([kKmM]?)$`)

// parseLuaDicts reads ingress-nginx's lua-shared-dicts key,
// "certificate_data: 512, configuration_data: 100m": a size without a unit
// is in megabytes, as there. A size only ever raises tidegate's default
// (ingress-nginx's defaults are smaller, and a migrated ConfigMap must not
// shrink the zones). Names of zones tidegate does not have are returned as
// warnings: ingress-nginx's own balancer caches and Lua plugins' zones.
func parseLuaDicts(v string, d *LuaDicts) (ignored []string, err error) {
	out := *d
	for _, item := range strings.Split(v, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		name, size, ok := strings.Cut(item, ":")
		name, size = strings.TrimSpace(name), strings.TrimSpace(size)
		m := luaDictSize.FindStringSubmatch(size)
		if !ok || name == "" || m == nil {
			return nil, fmt.Errorf("%q is not \"name: size\" with a size such as 512 or 512m", item)
		}
		n, _ := strconv.Atoi(m[1])
		mib := n
		if m[2] == "k" || m[2] == "K" {
			mib = (n + 1023) / 1024
		}
		if mib > MaxLuaDict {
			return nil, fmt.Errorf("%s: %s is more than %dm", name, size, MaxLuaDict)
		}
		field, known := luaDictNames[name]
		if !known {
			ignored = append(ignored, name)
			continue
		}
		if p := field(&out); mib > *p {
			*p = mib
		}
	}
	*d = out
	return ignored, nil
}
