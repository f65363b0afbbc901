package nginx

import (
	"bytes"
	"errors"
)

// InstalledGeneration returns the generation an nginx.conf that Render
// wrote serves: the answer of its location = /tidegate/generation
// (nginx.tmpl, `return 200 GEN;`). It is how a restarted tidegate knows
// which configuration the last good nginx.conf of a previous run is, before
// any nginx runs to ask.
func InstalledGeneration(conf []byte) (string, error) {
	gen := ""
	if i := bytes.Index(conf, []byte("location = /tidegate/generation")); i >= 0 {
		rest := conf[i:]
		if j := bytes.Index(rest, []byte("return 200 ")); j >= 0 {
			rest = rest[j+len("return 200 "):]
			if k := bytes.IndexByte(rest, ';'); k > 0 {
				gen = string(rest[:k])
			}
		}
	}
	if gen == "" {
		return "", errNoGeneration
	}
	return gen, nil
}

// errNoGeneration is an nginx.conf without the generation location: not
// one tidegate wrote.
var errNoGeneration = errors.New("no generation")
