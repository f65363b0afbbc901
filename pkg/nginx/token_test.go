package nginx_test

import (
	"os"
	"path/filepath"
	"regexp"
	"testing"

	"github.com/tidegate/tidegate/pkg/nginx"
)

// TestControlToken: the token is made once per working directory, readable
// by its owner only, and read back by the next tidegate; a file that does
// not hold a well-formed token is replaced.
func TestControlToken(t *testing.T) {
	path := nginx.Settings{WorkDir: t.TempDir()}.TokenPath()
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	first, made, err := nginx.ControlToken(path)
	if err != nil || !made {
		t.Fatalf("first call: %q %v %v, want a new token", first, made, err)
	}
	if !regexp.MustCompile(`^[0-9a-f]{64}$`).MatchString(first) {
		t.Errorf("token %q is not 64 lower-case hex digits", first)
	}
	st, err := os.Stat(path)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("token file: %v %v, want mode 0600", st.Mode(), err)
	}
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	again, made, err := nginx.ControlToken(path)
	if err != nil || made || again != first {
		t.Errorf("second call: %q %v %v, want the first token read back", again, made, err)
	}
	if st, _ := os.Stat(path); st.Mode().Perm() != 0o600 {
		t.Errorf("a token file of mode %v was left readable by others", st.Mode())
	}
	for name, content := range map[string]string{
		"empty":      "",
		"short":      first[1:],
		"newline":    first + "\n",
		"upper case": "ABCDEF" + first[6:],
		"not hex":    "g" + first[1:],
	} {
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := nginx.ReadToken(path); err == nil {
			t.Errorf("%s: ReadToken took %q", name, content)
		}
		tok, made, err := nginx.ControlToken(path)
		if err != nil || !made || tok == first {
			t.Errorf("%s: got %q %v %v, want a new token", name, tok, made, err)
		}
		if b, _ := os.ReadFile(path); string(b) != tok {
			t.Errorf("%s: the file holds %q, want the new token", name, b)
		}
	}
}
