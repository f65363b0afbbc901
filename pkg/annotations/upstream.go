package annotations

// Upstream is the service-upstream annotation: proxy to the Service's
// ClusterIP:port (one peer, kube-proxy balances) instead of its endpoints.
type Upstream struct {
	ServiceUpstream bool
}

func init() {
	register("service-upstream", func(v string, c *Config) (Status, string, error) {
		b, err := boolValue(v)
		if err != nil {
			return "", "", err
		}
		c.Upstream.ServiceUpstream = b
		if !b {
			return Applied, "", nil
		}
		return Different, "the ClusterIP is one peer: session affinity, ewma and upstream-hash-by have nothing to choose from; a headless Service (clusterIP None) falls back to its endpoints", nil
	})
}
