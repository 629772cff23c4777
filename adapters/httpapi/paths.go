package httpapi

// Paths the binary serves. The deploy manifests' probes and policies are
// checked against these, so a rename cannot silently break a rollout.
const (
	ProductsPath = "/products"
	HealthzPath  = "/healthz"
	ReadyzPath   = "/readyz"
	MetricsPath  = "/metrics"
	// PprofPath is where --pprof serves net/http/pprof, on the admin port only.
	PprofPath = "/debug/pprof/"
)

// Routes name what a request matched, for metrics, span names and logs.
// They are bounded: a path that matches no route is RouteOther, so scanners
// cannot blow up label sets with raw paths.
const (
	RouteProducts = "/products"
	RouteProduct  = "/products/{id}"
	RouteOther    = "other"
)

// Routes lists every route name the API reports.
func Routes() []string { return []string{RouteProducts, RouteProduct, RouteOther} }
