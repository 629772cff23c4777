package wire

import "strconv"

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

// ProductPath is the path of one product, /products/{id}.
func ProductPath(id int64) string { return ProductsPath + "/" + strconv.FormatInt(id, 10) }

// HeaderRequestID carries the id a user can quote, on every request between
// the hops and on every answer.
const HeaderRequestID = "X-Request-Id"

// ContentType is the media type of every body, answer or error.
const ContentType = "application/json"
