// Package nginxfiles embeds the nginx template so the tidegate binary is
// self-contained.
package nginxfiles

import _ "embed"

// Template is nginx/nginx.tmpl, rendered by pkg/nginx.
//
//go:embed nginx.tmpl
var Template string
