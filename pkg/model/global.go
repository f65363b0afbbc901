package model

import (
	"strings"

	"github.com/tidegate/tidegate/pkg/annotations"
	"github.com/tidegate/tidegate/pkg/configmap"
	"github.com/tidegate/tidegate/pkg/snapshot"
)

// Global holds nginx-wide settings: the part of the ConfigMap nginx.conf
// is rendered from (configmap.Global).
type Global = configmap.Global

// Settings is the ConfigMap's TLS, compression, timeout, buffer and
// forwarding keys (configmap.Settings), as the renderer reads them from
// Global.
type Settings = configmap.Settings

// Buffers are the ConfigMap's request and response buffer sizes.
type Buffers = configmap.Buffers

// LuaDicts are the sizes, in MiB, of the Lua data plane's shared memory
// zones (lua-shared-dicts).
type LuaDicts = configmap.LuaDicts

// MaxLuaDict is the largest zone lua-shared-dicts may ask for, in MiB.
const MaxLuaDict = configmap.MaxLuaDict

// DefaultSettings are ingress-nginx's defaults.
func DefaultSettings() Settings { return configmap.DefaultSettings() }

// DefaultLuaDicts are tidegate's zone sizes.
func DefaultLuaDicts() LuaDicts { return configmap.DefaultLuaDicts() }

// globalSettings are the parsed ConfigMap keys.
type globalSettings struct {
	Global
	SSLRedirect bool
	// ForceSSLRedirect redirects plain HTTP to https on every host, TLS
	// section or not (force-ssl-redirect; the annotation overrides it).
	ForceSSLRedirect bool
	// snippets are allow-snippet-annotations and
	// global-allowed-response-headers (snippets.go, headers.go).
	snippets snippetSettings
	// loadBalance is the ConfigMap's load-balance (balancing.go).
	loadBalance string
}

// parseGlobal reads the controller ConfigMap (pkg/configmap). Unknown or
// invalid keys are reported and the default is kept.
func parseGlobal(snap *snapshot.Snapshot, opts Options, report func(Problem)) globalSettings {
	var data map[string]string
	if ns, name, ok := strings.Cut(opts.ConfigMap, "/"); ok {
		if cm := snap.ConfigMap(ns, name); cm != nil {
			data = cm.Data
		}
	}
	c, entries := configmap.Parse(data)
	for _, e := range entries {
		report(Problem{Kind: "ConfigMap", Object: opts.ConfigMap, Field: "data." + e.Key,
			Warning: e.Status != annotations.Rejected, Reason: e.Detail})
	}
	return globalSettings{
		Global:           c.Global,
		SSLRedirect:      c.SSLRedirect,
		ForceSSLRedirect: c.ForceSSLRedirect,
		loadBalance:      c.LoadBalance,
		snippets:         snippetSettings{allow: c.AllowSnippetAnnotations, allowedHeaders: c.AllowedResponseHeaders},
	}
}
