package model

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"sort"
	"strings"

	networkingv1 "k8s.io/api/networking/v1"

	"github.com/tidegate/tidegate/pkg/annotations"
)

// AuthFile is a file nginx reads that tidegate builds from a Secret: an
// htpasswd file, or the CA certificates or revocation list of client
// certificate authentication. tidegate writes it under its working
// directory; no part of its name comes from the user.
type AuthFile struct {
	// Name is hex (derived from the Secret's namespace/name, or from the
	// content) and an extension, ".htpasswd", ".ca.pem" or ".crl.pem".
	Name    string
	Content string
}

// addAuthFile records a file for nginx and returns its name.
func (b *builder) addAuthFile(seed, ext, content string) string {
	sum := sha256.Sum256([]byte(seed))
	name := hex.EncodeToString(sum[:8]) + ext
	if b.authFiles == nil {
		b.authFiles = map[string]string{}
	}
	b.authFiles[name] = content
	return name
}

// htpasswdLine is "user:hash": printable ASCII, no spaces, one colon at least.
func htpasswdLine(l string) error {
	user, hash, ok := strings.Cut(l, ":")
	if !ok || user == "" || hash == "" {
		return fmt.Errorf("a line is not user:hash")
	}
	for i := 0; i < len(l); i++ {
		if c := l[i]; c <= 0x20 || c >= 0x7f {
			return fmt.Errorf("a line contains a space or a non-printable character")
		}
	}
	return nil
}

// authFile resolves the htpasswd Secret of a basic-auth Ingress and returns
// the name of its file, or an error saying what is wrong with the Secret.
func (b *builder) authFile(ing *networkingv1.Ingress, a annotations.Auth) (string, error) {
	if a.Secret == "" {
		return "", fmt.Errorf("auth-type basic needs auth-secret")
	}
	sec, key, err := b.secretRef(ing, a.Secret, "auth-secret") // clientauth.go
	if err != nil {
		return "", err
	}
	var lines []string
	if a.Map {
		users := make([]string, 0, len(sec.Data))
		for u := range sec.Data {
			users = append(users, u)
		}
		sort.Strings(users)
		for _, u := range users {
			lines = append(lines, u+":"+strings.TrimSpace(string(sec.Data[u])))
		}
	} else {
		raw, ok := sec.Data["auth"]
		if !ok {
			return "", fmt.Errorf("auth-secret %s has no \"auth\" key (an htpasswd file); use auth-secret-type: auth-map for one key per user", key)
		}
		for _, l := range strings.Split(strings.ReplaceAll(string(raw), "\r\n", "\n"), "\n") {
			if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "#") {
				lines = append(lines, l)
			}
		}
	}
	if len(lines) == 0 {
		return "", fmt.Errorf("auth-secret %s holds no user", key)
	}
	for i, l := range lines {
		if err := htpasswdLine(l); err != nil {
			return "", fmt.Errorf("auth-secret %s line %d: %v", key, i+1, err)
		}
	}
	return b.addAuthFile(key, ".htpasswd", strings.Join(lines, "\n")+"\n"), nil
}
