package server

import (
	"net/http"
	"strings"

	"github.com/trustchain/trustchain/adapters/httpapi/wire"
	"github.com/trustchain/trustchain/domain"
	"github.com/trustchain/trustchain/ports"
)

// Route names: what a request matched, for metrics, span names and logs.
// A route's name is its pattern's path. They are bounded: a path that
// matches no route is RouteOther, so scanners cannot blow up label sets
// with raw paths.
const (
	RouteProducts = wire.ProductsPath
	RouteProduct  = wire.ProductsPath + "/{id}"
	RouteOther    = "other"
)

// route is one path of the API and what serves GET (and HEAD) on it.
type route struct {
	pattern string // the net/http pattern's path, and the route's name
	serve   func(handlers, http.ResponseWriter, *http.Request)
}

// routes is the API, and the one list of it: NewAPI registers each route
// (GET and HEAD behind the peer and token checks, a JSON 405 with Allow for
// any other method), Routes names them for the metrics, and routeOf labels
// every request with one of them. A new route is a row here.
var routes = []route{
	{RouteProducts, handlers.list},
	{RouteProduct, handlers.get},
}

// Routes lists every route name the API reports: each route, then
// RouteOther.
func Routes() []string {
	names := make([]string, 0, len(routes)+1)
	for _, rt := range routes {
		names = append(names, rt.pattern)
	}
	return append(names, RouteOther)
}

// routeOf turns the mux's pattern ("GET /products/{id}") into the bounded
// route name.
func routeOf(pattern string) string {
	if _, path, ok := strings.Cut(pattern, " "); ok {
		pattern = path
	}
	for _, rt := range routes {
		if rt.pattern == pattern {
			return rt.pattern
		}
	}
	return RouteOther
}

// handlers serve the routes; each route's serve is one of their methods.
type handlers struct {
	source   ports.ProductSource
	envelope bool
	paging   Paging
	clock    ports.Clock
}

// list serves one page of products, with a Link to the next one.
func (h handlers) list(w http.ResponseWriter, r *http.Request) {
	req, err := wire.ParsePageQuery(r.URL.RawQuery, h.paging.DefaultLimit, h.paging.MaxLimit)
	if err != nil {
		writeError(w, r, err)
		return
	}
	page, err := h.source.ListProducts(sourceContext(r), req)
	if err != nil {
		writeError(w, r, err)
		return
	}
	if link := wire.NextLink(page); link != "" {
		w.Header()["Link"] = []string{link}
	}
	buf := getBuffer()
	defer putBuffer(buf)
	if h.envelope {
		*buf = wire.AppendPageEnvelope(*buf, page, domain.NewEnvelope(h.clock.Now()))
	} else {
		*buf = wire.AppendProducts(*buf, page.Products())
	}
	writeBody(w, http.StatusOK, *buf)
}

// get serves one product.
func (h handlers) get(w http.ResponseWriter, r *http.Request) {
	id, err := wire.ParseProductID(r.PathValue("id"))
	if err != nil {
		writeError(w, r, err)
		return
	}
	p, err := h.source.GetProduct(sourceContext(r), id)
	if err != nil {
		writeError(w, r, err)
		return
	}
	buf := getBuffer()
	defer putBuffer(buf)
	if h.envelope {
		*buf = wire.AppendProductEnvelope(*buf, p, domain.NewEnvelope(h.clock.Now()))
	} else {
		*buf = wire.AppendProduct(*buf, p)
	}
	writeBody(w, http.StatusOK, *buf)
}

var allowed = []string{"GET, HEAD"}

func methodNotAllowed(w http.ResponseWriter, r *http.Request) {
	w.Header()["Allow"] = allowed
	writeProblem(w, r, wire.Problem{Status: http.StatusMethodNotAllowed, Code: "method_not_allowed",
		Message: r.Method + " is not allowed; use " + allowed[0]}, "")
}

func notFound(w http.ResponseWriter, r *http.Request) {
	writeProblem(w, r, wire.Problem{Status: http.StatusNotFound, Code: "not_found", Message: "no such resource"}, "")
}

// serverWide answers the asterisk form (RFC 9110 §7.1), which names no
// resource: OPTIONS * says which methods the server allows, any other
// method with * is malformed. ServeMux would answer with an empty 400.
func serverWide(mux http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.RequestURI != "*" {
			mux.ServeHTTP(w, r)
			return
		}
		if r.Method == http.MethodOptions {
			w.Header()["Allow"] = allowed
			w.Header()["Content-Length"] = []string{"0"}
			w.WriteHeader(http.StatusOK)
			return
		}
		writeError(w, r, domain.ErrInvalidRequest)
	})
}
