package model

// Limits the Lua data plane enforces on one pushed item
// (lua/tidegate/schema.lua; TestLimitsMatchLua keeps the two equal). The
// model stays within them and reports what it leaves out: an item nginx
// refused would fail the whole push, and with it every other change.
const (
	// MaxEndpoints is the most endpoints one backend balances over.
	MaxEndpoints = 100000
	// MaxCertificateHosts is the most SNI names one certificate serves
	// (one Secret, all the Ingresses that use it).
	MaxCertificateHosts = 100000
	// MaxCanaries is the most canary backends one backend splits to.
	MaxCanaries = 16
)
