package nginx

import (
	"fmt"
	"strings"
)

// Quote returns s as a double-quoted nginx string. It is the only way a value
// that came from a user reaches nginx.conf. Characters that nginx's parser
// treats specially inside quotes ('"' and '\') are escaped; control
// characters cannot be represented safely and are refused.
func Quote(s string) (string, error) {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == 0x7f {
			return "", fmt.Errorf("value %q contains a control character (0x%02x)", s, c)
		}
	}
	var b strings.Builder
	b.Grow(len(s) + 2)
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '"' || c == '\\' {
			b.WriteByte('\\')
		}
		b.WriteByte(c)
	}
	b.WriteByte('"')
	return b.String(), nil
}

// QuoteVarFree quotes a value for a directive whose argument nginx expands
// variables in (set, return, add_header ...): a '$' there would read a
// variable, so it is refused.
func QuoteVarFree(s string) (string, error) {
	if strings.ContainsRune(s, '$') {
		return "", fmt.Errorf("value %q contains '$', which nginx would expand as a variable here", s)
	}
	return Quote(s)
}
