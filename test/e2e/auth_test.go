package e2e

import (
	"crypto/sha1"
	"encoding/base64"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/tidegate/tidegate/test/harness"
)

// htpasswdSHA is an htpasswd line with nginx's {SHA} scheme.
func htpasswdSHA(user, password string) string {
	sum := sha1.Sum([]byte(password))
	return user + ":{SHA}" + base64.StdEncoding.EncodeToString(sum[:])
}

// opaqueSecretYAML is a Secret with the keys of data.
func opaqueSecretYAML(name string, data map[string]string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "apiVersion: v1\nkind: Secret\nmetadata: {name: %s}\nstringData:\n", name)
	for k, v := range data {
		fmt.Fprintf(&b, "  %s: %q\n", k, v)
	}
	return b.String()
}

// TestBasicAuth: auth-type basic with an htpasswd Secret (auth-file and
// auth-map): 401 with the realm without credentials, 200 with good ones; a
// new password in the Secret applies; a missing Secret refuses requests.
func TestBasicAuth(t *testing.T) {
	be := harness.StartBackends(t, "private")
	secret := opaqueSecretYAML
	tg := startTidegate(t, map[string]string{
		"all.yaml": strings.Join([]string{harness.ServiceYAML("web", 80), harness.SliceYAML("web-1", "web", be.Port, be.Addrs),
			annotatedIngress("file", "file.test", "Prefix", "/", "auth-type=basic", "auth-secret=users", "auth-realm=Staff only"),
			annotatedIngress("map", "map.test", "Prefix", "/", "auth-type=basic", "auth-secret=default/users-map", "auth-secret-type=auth-map"),
			annotatedIngress("broken", "broken.test", "Prefix", "/", "auth-type=basic", "auth-secret=nope"),
			annotatedIngress("open", "open.test", "Prefix", "/"),
		}, "---\n"),
		"secrets.yaml": secret("users", map[string]string{"auth": htpasswdSHA("alice", "s3cret") + "\n" + htpasswdSHA("bob", "hunter2") + "\n"}) +
			"---\n" + secret("users-map", map[string]string{"carol": strings.TrimPrefix(htpasswdSHA("carol", "pw"), "carol:")}),
	})
	get := func(host, user, pass string) (int, string) {
		req, _ := http.NewRequest("GET", fmt.Sprintf("http://127.0.0.1:%d/", tg.HTTPPort), nil)
		req.Host = host
		if user != "" {
			req.SetBasicAuth(user, pass)
		}
		resp, err := tg.Client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		harness.ReadBody(resp)
		return resp.StatusCode, resp.Header.Get("WWW-Authenticate")
	}
	tests := map[string]struct {
		host, user, pass string
		want             int
	}{
		"no credentials":       {"file.test", "", "", 401},
		"wrong password":       {"file.test", "alice", "nope", 401},
		"good credentials":     {"file.test", "alice", "s3cret", 200},
		"second user":          {"file.test", "bob", "hunter2", 200},
		"auth-map user":        {"map.test", "carol", "pw", 200},
		"auth-map wrong user":  {"map.test", "alice", "s3cret", 401},
		"missing secret":       {"broken.test", "alice", "s3cret", 403},
		"no auth on open host": {"open.test", "", "", 200},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if st, _ := get(tc.host, tc.user, tc.pass); st != tc.want {
				t.Errorf("%s as %q: %d, want %d", tc.host, tc.user, st, tc.want)
			}
		})
	}
	if _, realm := get("file.test", "", ""); realm != `Basic realm="Staff only"` {
		t.Errorf("WWW-Authenticate: %q", realm)
	}
	tg.Write("secrets.yaml", secret("users", map[string]string{"auth": htpasswdSHA("alice", "new-password") + "\n"})+
		"---\n"+secret("users-map", map[string]string{"carol": strings.TrimPrefix(htpasswdSHA("carol", "pw"), "carol:")}))
	tg.Eventually("the new password applies", func() string {
		if st, _ := get("file.test", "alice", "new-password"); st != 200 {
			return fmt.Sprint("status ", st)
		}
		return ""
	})
	if st, _ := get("file.test", "alice", "s3cret"); st != 401 {
		t.Errorf("the old password still works: %d", st)
	}
}

// TestSatisfy: satisfy "any" admits a request that either the source
// ranges or the password admit; by default both must. A location whose
// authentication is refused (its Secret is missing) stays closed even to
// an allowed address.
func TestSatisfy(t *testing.T) {
	be := harness.StartBackends(t, "private")
	auth := []string{"auth-type=basic", "auth-secret=users"}
	ing := func(name, host string, anns ...string) string {
		return annotatedIngress(name, host, "Prefix", "/", append(append([]string{}, auth...), anns...)...)
	}
	tg := startTidegate(t, map[string]string{
		"all.yaml": strings.Join([]string{harness.ServiceYAML("web", 80), harness.SliceYAML("web-1", "web", be.Port, be.Addrs),
			opaqueSecretYAML("users", map[string]string{"auth": htpasswdSHA("alice", "s3cret") + "\n"}),
			ing("elsewhere", "elsewhere.test", "whitelist-source-range=10.0.0.0/8", "satisfy=any"),
			ing("here", "here.test", "whitelist-source-range=127.0.0.1/32", "satisfy=any"),
			ing("both", "both.test", "whitelist-source-range=127.0.0.1/32"),
			annotatedIngress("closed", "closed.test", "Prefix", "/", "auth-type=basic", "auth-secret=nope", "whitelist-source-range=127.0.0.1/32", "satisfy=any"),
		}, "---\n"),
	})
	for _, tc := range []struct {
		host string
		cred bool
		want int
	}{
		{"elsewhere.test", false, 401}, {"elsewhere.test", true, 200},
		{"here.test", false, 200},
		{"both.test", false, 401}, {"both.test", true, 200},
		{"closed.test", true, 403},
	} {
		var hdr []string
		if tc.cred {
			hdr = append(hdr, "Authorization: Basic "+base64.StdEncoding.EncodeToString([]byte("alice:s3cret")))
		}
		resp, _, err := tg.Fresh(tc.host, "/", hdr...)
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != tc.want {
			t.Errorf("%s (credentials %v): %d, want %d", tc.host, tc.cred, resp.StatusCode, tc.want)
		}
	}
}
