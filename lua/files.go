// Package luafiles embeds the Lua modules of the data plane; tidegate writes
// them into its working directory before it starts nginx.
package luafiles

import "embed"

// FS holds tidegate/*.lua and tidegate/balancers/*.lua.
//
//go:embed tidegate
var FS embed.FS
