package httpin

// Paths the binary serves. The deploy manifests' probes and policies are
// checked against these, so a rename cannot silently break a rollout.
const (
	ProductsPath = "/products"
	HealthzPath  = "/healthz"
	ReadyzPath   = "/readyz"
	MetricsPath  = "/metrics"
)
