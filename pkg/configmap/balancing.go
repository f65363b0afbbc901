package configmap

import "strings"

func init() {
	// The default algorithm of backends whose Ingress sets none
	// (load-balance); the annotation of the same name overrides it.
	registerFallback("load-balance", "round_robin is used", func(v string, c *Config) error {
		switch a := strings.TrimSpace(v); a {
		case "round_robin", "ewma":
			c.LoadBalance = a
			return nil
		}
		return notA(v, "round_robin or ewma")
	})
}
