package httpin

import (
	"log/slog"
	"net/http"

	"github.com/trustchain/trustchain/domain"
	"github.com/trustchain/trustchain/ports"
)

// APIConfig configures the API handler of one role.
type APIConfig struct {
	// Source is where the products come from: the store on B, the next
	// hop's client on A and C.
	Source ports.ProductSource
	// Verifier checks the bearer token on every request.
	Verifier ports.TokenVerifier
	// RequiredScope, when set, must be granted by the token.
	RequiredScope string
	// Peer, when set, authorises the calling workload first.
	Peer PeerCheck
	// Gateway makes the answer A's envelope instead of the bare array.
	Gateway bool
	// Clock stamps the envelope.
	Clock ports.Clock
	// Logger receives the access log.
	Logger *slog.Logger
	// Middleware, when set, wraps each route (metrics, tracing); route is
	// the bounded route name, never the raw path.
	Middleware func(route string, next http.Handler) http.Handler
	// OnTokenCheck, when set, learns each token check's outcome (nil
	// error for an accepted token), for metrics.
	OnTokenCheck func(err error)
	// OnPeerRefused, when set, learns each refused workload, for metrics.
	OnPeerRefused func(err error)
}

// NewAPI returns the handler for the API port.
func NewAPI(cfg APIConfig) http.Handler {
	var products http.Handler = productsHandler{source: cfg.Source, gateway: cfg.Gateway, clock: cfg.Clock}
	products = authenticate(cfg.Verifier, cfg.RequiredScope, orNoop(cfg.OnTokenCheck), products)
	if cfg.Peer != nil {
		products = authorizePeer(cfg.Peer, orNoop(cfg.OnPeerRefused), products)
	}
	products = allowMethods(products, http.MethodGet, http.MethodHead)

	wrap := cfg.Middleware
	if wrap == nil {
		wrap = func(_ string, h http.Handler) http.Handler { return h }
	}
	// The access log sits inside the route middleware so its line carries
	// the trace and span the tracing middleware started.
	mux := http.NewServeMux()
	mux.Handle(ProductsPath, wrap(ProductsPath, accessLog(cfg.Logger, products)))
	mux.Handle("/", wrap(RouteOther, accessLog(cfg.Logger, http.HandlerFunc(notFound))))
	return mux
}

// RouteOther names every path that is not a route, so scanners cannot blow
// up the cardinality of metrics or span names.
const RouteOther = "other"

func orNoop(f func(error)) func(error) {
	if f == nil {
		return func(error) {}
	}
	return f
}

// productsHandler serves GET /products from its source.
type productsHandler struct {
	source  ports.ProductSource
	gateway bool
	clock   ports.Clock
}

func (h productsHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	products, err := h.source.ListProducts(r.Context())
	if err != nil {
		writeError(w, r, err)
		return
	}
	if products == nil {
		products = []domain.Product{}
	}
	if h.gateway {
		writeJSON(w, http.StatusOK, domain.NewEnvelope(products, h.clock.Now()))
		return
	}
	writeJSON(w, http.StatusOK, products)
}

// allowMethods answers 405 with an Allow header for any other method.
func allowMethods(next http.Handler, methods ...string) http.Handler {
	allow := ""
	for i, m := range methods {
		if i > 0 {
			allow += ", "
		}
		allow += m
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for _, m := range methods {
			if r.Method == m {
				next.ServeHTTP(w, r)
				return
			}
		}
		w.Header().Set("Allow", allow)
		writeJSON(w, http.StatusMethodNotAllowed, errorBody{Error: "method_not_allowed", Message: r.Method + " is not allowed; use " + allow})
	})
}

func notFound(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusNotFound, errorBody{Error: "not_found", Message: "no such resource"})
}
