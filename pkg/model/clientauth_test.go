package model_test

import (
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/tidegate/tidegate/pkg/fixture"
	"github.com/tidegate/tidegate/pkg/model"
	"github.com/tidegate/tidegate/pkg/tlsutil"
)

func caSecret(nsName string, data map[string][]byte) *corev1.Secret {
	ns, name, _ := strings.Cut(nsName, "/")
	return &corev1.Secret{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Secret"},
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Data: data}
}

// TestClientAuthIsAHostSetting: the oldest Ingress of a host with
// auth-tls-secret decides for every path of the host (a younger one that
// asks for another CA is told); an unusable Secret refuses the host's
// requests instead of letting them through unchecked.
func TestClientAuthIsAHostSetting(t *testing.T) {
	ca, _, _ := tlsutil.SelfSigned("Client CA")
	web := fixture.Service("default/web", "80")
	tests := map[string]struct {
		secret     *corev1.Secret
		wantDenied bool
		wantReason string
	}{
		"a CA in ca.crt":         {secret: caSecret("default/ca", map[string][]byte{"ca.crt": ca})},
		"no such Secret":         {wantDenied: true, wantReason: "auth-tls-secret default/ca not found"},
		"no ca.crt":              {secret: caSecret("default/ca", map[string][]byte{"tls.crt": ca}), wantDenied: true, wantReason: "has no ca.crt"},
		"ca.crt is not PEM":      {secret: caSecret("default/ca", map[string][]byte{"ca.crt": []byte("hello")}), wantDenied: true, wantReason: "holds no PEM certificate"},
		"ca.crl that is not PEM": {secret: caSecret("default/ca", map[string][]byte{"ca.crt": ca, "ca.crl": []byte("nope")}), wantDenied: true, wantReason: "holds no PEM revocation list"},
		"a broken certificate":   {secret: caSecret("default/ca", map[string][]byte{"ca.crt": []byte("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")}), wantDenied: true, wantReason: "does not parse"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			older := fixture.Ingress("default/older").Host("a.io").Prefix("/", "web:80").
				Annotate("nginx.ingress.kubernetes.io/auth-tls-secret", "ca").Created(-time.Hour)
			younger := fixture.Ingress("default/younger").Host("a.io").Prefix("/api", "web:80").
				Annotate("nginx.ingress.kubernetes.io/auth-tls-secret", "other-ca")
			objs := []any{web, older, younger}
			if tc.secret != nil {
				objs = append(objs, tc.secret)
			}
			m := model.Build(fixture.Snapshot(objs...), model.DefaultOptions())
			var srv *model.Server
			for i := range m.Structure.Servers {
				if m.Structure.Servers[i].Host == "a.io" {
					srv = &m.Structure.Servers[i]
				}
			}
			if srv == nil || srv.ClientAuth == nil {
				t.Fatalf("a.io has no client authentication; problems: %v", problems(m))
			}
			if srv.ClientAuth.Ingress != "default/older" || srv.ClientAuth.Verify != "on" || srv.ClientAuth.Depth != 1 {
				t.Errorf("client auth %+v, want the older Ingress's with ingress-nginx's defaults", *srv.ClientAuth)
			}
			for _, l := range srv.Locations {
				if l.AuthDenied != tc.wantDenied {
					t.Errorf("%s: AuthDenied %v, want %v", l.Path, l.AuthDenied, tc.wantDenied)
				}
			}
			all := strings.Join(problems(m), "\n")
			if !strings.Contains(all, "default/younger") || !strings.Contains(all, "older Ingress default/older") {
				t.Errorf("the younger Ingress's auth-tls-secret must be reported as not applying: %v", all)
			}
			if tc.wantReason != "" && !strings.Contains(all, tc.wantReason) {
				t.Errorf("problems %v, want %q", all, tc.wantReason)
			}
			if !tc.wantDenied {
				if !strings.HasSuffix(srv.ClientAuth.CAFile, ".ca.pem") || len(m.Structure.AuthFiles) != 1 || m.Structure.AuthFiles[0].Name != srv.ClientAuth.CAFile {
					t.Errorf("CA file %q, files %v", srv.ClientAuth.CAFile, m.Structure.AuthFiles)
				}
			}
		})
	}
}

// TestSecretRefs: every Secret an Ingress reads is named, so that a source
// keeping only referenced Secrets whole keeps these (in a cluster a
// stripped auth-secret refused every request).
func TestSecretRefs(t *testing.T) {
	ing := fixture.Ingress("shop/a").Host("a.io").Prefix("/", "web:80").TLS("site-tls", "a.io").
		Annotate("nginx.ingress.kubernetes.io/auth-secret", "users").
		Annotate("nginx.ingress.kubernetes.io/auth-tls-secret", "certs/client-ca").
		Annotate("nginx.ingress.kubernetes.io/proxy-ssl-secret", "backend-tls").Ingress
	got := strings.Join(model.SecretRefs(ing), " ")
	if want := "shop/site-tls shop/users certs/client-ca shop/backend-tls"; got != want {
		t.Errorf("SecretRefs = %q, want %q", got, want)
	}
}
