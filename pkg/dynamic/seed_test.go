package dynamic

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tidegate/tidegate/pkg/dynamic/dynamictest"
	"github.com/tidegate/tidegate/pkg/model"
)

// TestSeedServesBeforeAnyPush: nginx started with the seed tidegate writes
// before it (re)starts nginx or resizes a shared dict routes to the seeded
// backends and serves the seeded certificates before any push, where an
// empty zone would answer 503 and the default certificate. The push that
// follows wins (its version is above the seed's), and a reload, which keeps
// the zones, does not seed them again from a file still on disk. A seeded
// certificate whose key does not match is left out, as a push leaves it.
func TestSeedServesBeforeAnyPush(t *testing.T) {
	t.Parallel()
	a, b := dynamictest.StartBackend(t, "a"), dynamictest.StartBackend(t, "b")
	ng := dynamictest.New(t, dynamictest.Locations{"/kibana": kibana})
	c := New(ng.Socket, ng.Token)
	site, siteSerial := cert(t, "ns/site", "site.example.com")
	other, _ := cert(t, "ns/other", "other.example.com")
	broken, _ := cert(t, "ns/broken", "broken.example.com")
	broken.KeyPEM = other.KeyPEM
	seed := filepath.Join(ng.Dir, "seed")
	if err := c.WriteSeed(seed, []model.Backend{backend(kibana, ep{b: a})}, []model.Certificate{site, broken}); err != nil {
		t.Fatal(err)
	}
	if st, err := os.Stat(filepath.Join(seed, SeedCertificates)); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("the seed holds private keys: %v, mode %v", err, st.Mode())
	}
	ng.Start(t)
	if got := count(t, ng, "/kibana", 4); got["a"] != 4 {
		t.Fatalf("before any push: %v, want every request on the seeded backend a", got)
	}
	if got := ng.ServedCertificate(t, "site.example.com"); got != siteSerial {
		t.Errorf("before any push, site.example.com got certificate %s, want the seeded %s", got, siteSerial)
	}
	if log := ng.ErrorLog(); !strings.Contains(log, "seeded 1 backends") || !strings.Contains(log, "seeded 1 certificates") {
		t.Errorf("the seed is not logged (or the mismatched pair was not left out):\n%s", log)
	}

	push(t, c, backend(kibana, ep{b: b}))
	if got := count(t, ng, "/kibana", 4); got["b"] != 4 {
		t.Fatalf("after the push: %v, want every request on b", got)
	}
	reload(t, ng)
	if got := count(t, ng, "/kibana", 4); got["b"] != 4 {
		t.Errorf("after a reload with the seed still on disk: %v, want b (the zone keeps the push)", got)
	}
	if err := RemoveSeed(seed); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(seed, SeedBackends)); !os.IsNotExist(err) {
		t.Errorf("RemoveSeed left %s: %v", SeedBackends, err)
	}
}
