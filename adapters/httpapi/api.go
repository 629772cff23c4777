package httpapi

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strconv"

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
	// Envelope makes the answer the gateway's envelope instead of the bare
	// array or product.
	Envelope bool
	// Paging sizes the pages of GET /products.
	Paging Paging
	// Clock stamps the envelope.
	Clock ports.Clock
	// Logger receives the access log.
	Logger *slog.Logger
	// Wrap, when set, decorates the whole API inside the request-id layer
	// (tracing); after the inner handler returns, r.Pattern holds the
	// route that matched.
	Wrap func(http.Handler) http.Handler
	// Observe, when set, learns every answered request (metrics, the
	// server span). ctx is the request's, with its trace.
	Observe func(ctx context.Context, o Outcome)
	// OnTokenCheck, when set, learns each token check's outcome: "" for an
	// accepted token, else the refusal reason.
	OnTokenCheck func(reason string)
	// OnPeerRefused, when set, learns each refused workload.
	OnPeerRefused func()
}

// NewAPI returns the handler for the API port: GET (and HEAD) on
// /products and /products/{id}; a JSON 405 with Allow for other methods
// there, and a JSON 404 elsewhere.
func NewAPI(cfg APIConfig) http.Handler {
	h := handlers{source: cfg.Source, envelope: cfg.Envelope, paging: cfg.Paging, clock: cfg.Clock}
	guard := func(next http.HandlerFunc) http.Handler {
		var g http.Handler = authenticate(cfg.Verifier, cfg.RequiredScope, cfg.OnTokenCheck, next)
		if cfg.Peer != nil {
			g = authorizePeer(cfg.Peer, cfg.OnPeerRefused, g)
		}
		return g
	}
	mux := http.NewServeMux()
	mux.Handle("GET "+RouteProducts, guard(h.list))
	mux.Handle("GET "+RouteProduct, guard(h.get))
	mux.HandleFunc(RouteProducts, methodNotAllowed)
	mux.HandleFunc(RouteProduct, methodNotAllowed)
	mux.HandleFunc("/", notFound)

	var api http.Handler = observe(cfg.Logger, cfg.Observe, mux)
	if cfg.Wrap != nil {
		api = cfg.Wrap(api)
	}
	return withRequestID(api)
}

type handlers struct {
	source   ports.ProductSource
	envelope bool
	paging   Paging
	clock    ports.Clock
}

func (h handlers) list(w http.ResponseWriter, r *http.Request) {
	req, err := h.paging.pageRequest(r.URL.RawQuery)
	if err != nil {
		writeError(w, r, err)
		return
	}
	page, err := h.source.ListProducts(sourceContext(r), req)
	if err != nil {
		writeError(w, r, err)
		return
	}
	if link := nextLink(page); link != "" {
		w.Header()["Link"] = []string{link}
	}
	buf := getBuffer()
	defer putBuffer(buf)
	if h.envelope {
		*buf = appendPageEnvelope(*buf, page, domain.NewEnvelope(h.clock.Now()))
	} else {
		*buf = appendProducts(*buf, page.Products())
	}
	writeBody(w, http.StatusOK, *buf)
}

func (h handlers) get(w http.ResponseWriter, r *http.Request) {
	id, err := parseProductID(r.PathValue("id"))
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
		*buf = appendProductEnvelope(*buf, p, domain.NewEnvelope(h.clock.Now()))
	} else {
		*buf = appendProduct(*buf, p)
	}
	writeBody(w, http.StatusOK, *buf)
}

var allowed = []string{"GET, HEAD"}

func methodNotAllowed(w http.ResponseWriter, r *http.Request) {
	w.Header()["Allow"] = allowed
	writeProblem(w, r, problem{status: http.StatusMethodNotAllowed, code: "method_not_allowed",
		message: r.Method + " is not allowed; use " + allowed[0]}, "")
}

func notFound(w http.ResponseWriter, r *http.Request) {
	writeProblem(w, r, problem{status: http.StatusNotFound, code: "not_found", message: "no such resource"}, "")
}

// writeError answers r with the status err maps to and records err for the
// request's log line. It is the one place a request's error is handled.
func writeError(w http.ResponseWriter, r *http.Request, err error) {
	state := stateFrom(r.Context())
	state.err = err

	var rejection *UpstreamRejection
	if errors.As(err, &rejection) {
		// The next hop refused the caller: its answer goes back as it
		// was, already checked by the client.
		writeProblem(w, r, problem{status: rejection.Status, code: rejection.Code, message: rejection.Message}, rejection.Challenge)
		return
	}
	if errors.Is(err, context.Canceled) && r.Context().Err() != nil {
		w.WriteHeader(clientClosedRequest)
		return
	}
	p := problemFor(err)
	var mistake *requestError
	if errors.As(err, &mistake) {
		p.message = mistake.message
	}
	challenge := p.challenge
	if p.status == http.StatusForbidden && challenge != "" && state.requiredScope != "" {
		challenge += `, scope="` + state.requiredScope + `"`
	}
	if p.status == http.StatusServiceUnavailable {
		w.Header()["Retry-After"] = []string{retryAfterOf(err)}
	}
	writeProblem(w, r, p, challenge)
}

// writeProblem writes an error body for p, naming the request id.
func writeProblem(w http.ResponseWriter, r *http.Request, p problem, challenge string) {
	if challenge != "" {
		w.Header()["Www-Authenticate"] = []string{challenge}
	}
	buf := getBuffer()
	defer putBuffer(buf)
	*buf = appendError(*buf, errorBody{code: p.code, message: p.message, requestID: stateFrom(r.Context()).requestID})
	writeBody(w, p.status, *buf)
}

// Header values shared by every answer; net/http never changes them.
var (
	contentTypeJSON = []string{"application/json"}
	noStore         = []string{"no-store"}
	noSniff         = []string{"nosniff"}
)

// writeBody writes a JSON answer with its length. The final newline is for
// people reading answers in a terminal.
func writeBody(w http.ResponseWriter, status int, body []byte) {
	body = append(body, '\n')
	h := w.Header()
	h["Content-Type"] = contentTypeJSON
	h["Cache-Control"] = noStore
	h["X-Content-Type-Options"] = noSniff
	h["Content-Length"] = []string{strconv.Itoa(len(body))}
	w.WriteHeader(status)
	_, _ = w.Write(body)
}
