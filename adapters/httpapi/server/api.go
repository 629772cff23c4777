package server

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"sync"

	"github.com/trustchain/trustchain/adapters/httpapi/wire"
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
	// Peer, when set, names the calling workload on every request and
	// refuses one it does not allow before the token is looked at.
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
	// Wrap, when set, decorates the whole API inside the request-id and peer layers
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
	// Admission, when set, bounds the requests in flight; it is asked
	// first, before any check spends work on a request it has no room for.
	Admission *Admission
	// DPoP is the edge's DPoP setting; the zero value at inner hops.
	DPoP DPoP
}

// NewAPI returns the handler for the API port: GET (and HEAD) on every
// route of the table in routes.go, a JSON 405 with Allow for other methods
// there, and a JSON 404 elsewhere.
func NewAPI(cfg APIConfig) http.Handler {
	h := handlers{source: cfg.Source, envelope: cfg.Envelope, paging: cfg.Paging, clock: cfg.Clock}
	guard := func(rt route) http.Handler {
		tc := tokenCheck{verifier: cfg.Verifier, scope: cfg.RequiredScope, dpop: cfg.DPoP, peerProven: cfg.Peer != nil, clock: cfg.Clock}
		var g http.Handler = authenticate(tc, cfg.OnTokenCheck,
			http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { rt.serve(h, w, r) }))
		if cfg.Peer != nil {
			g = authorizePeer(cfg.OnPeerRefused, g)
		}
		if a := cfg.Admission; a != nil {
			checked := g.ServeHTTP
			g = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				a.admit(rt.weight(cfg.Paging, r), w, r, checked)
			})
		}
		return g
	}
	mux := http.NewServeMux()
	for _, rt := range routes {
		mux.Handle("GET "+rt.pattern, guard(rt))
		mux.HandleFunc(rt.pattern, methodNotAllowed)
	}
	mux.HandleFunc("/", notFound)

	var api http.Handler = observe(cfg.Logger, cfg.Observe, serverWide(mux))
	if cfg.Wrap != nil {
		api = cfg.Wrap(api)
	}
	return withRequestID(identifyPeer(cfg.Peer, api))
}

// Paging is how a hop reads ?limit=&after= on GET /products.
type Paging struct {
	// DefaultLimit is the page size when the request names none.
	DefaultLimit int
	// MaxLimit is the largest page a caller may ask for.
	MaxLimit int
}

// writeError answers r with the status err maps to and records err for the
// request's log line. It is the one place a request's error is handled.
func writeError(w http.ResponseWriter, r *http.Request, err error) {
	state := stateFrom(r.Context())
	state.err = err

	var rejection *wire.UpstreamRejection
	if errors.As(err, &rejection) {
		// The next hop refused the caller: the client has already
		// rebuilt the answer as this hop's own (status, code, this hop's
		// message, and the challenge's error, scope and algs only).
		writeProblem(w, r, wire.Problem{Status: rejection.Status, Code: rejection.Code, Message: rejection.Message}, rejection.Challenge)
		return
	}
	if errors.Is(err, context.Canceled) && r.Context().Err() != nil {
		w.WriteHeader(clientClosedRequest)
		return
	}
	p := wire.ProblemFor(err)
	challenge := p.Challenge
	if p.Status == http.StatusForbidden && challenge != "" && state.requiredScope != "" {
		challenge += `, scope="` + state.requiredScope + `"`
	}
	if p.Status == http.StatusServiceUnavailable {
		w.Header()["Retry-After"] = []string{wire.RetryAfterOf(err)}
	}
	if challenges := state.dpop.challenges(challenge, state.usedDPoP); len(challenges) > 1 {
		// Both schemes' challenges, each in its own header line.
		w.Header()["Www-Authenticate"], challenge = challenges, ""
	} else if len(challenges) == 1 {
		challenge = challenges[0]
	}
	writeProblem(w, r, p, challenge)
}

// clientClosedRequest is nginx's status for a client that went away; it is
// never seen by that client but keeps logs and metrics honest.
const clientClosedRequest = 499

// writeProblem writes an error body for p, naming the request id.
func writeProblem(w http.ResponseWriter, r *http.Request, p wire.Problem, challenge string) {
	if challenge != "" {
		w.Header()["Www-Authenticate"] = []string{challenge}
	}
	buf := getBuffer()
	defer putBuffer(buf)
	*buf = wire.AppendError(*buf, wire.ErrorBody{Code: p.Code, Message: p.Message, RequestID: stateFrom(r.Context()).requestID})
	writeBody(w, p.Status, *buf)
}

// Header values shared by every answer; net/http never changes them.
var (
	contentTypeJSON = []string{wire.ContentType}
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

// buffers recycles the byte slices answers are built in. Slices that grew
// past maxPooledBuffer (a huge page) are left to the GC rather than pinned.
var buffers = sync.Pool{New: func() any { b := make([]byte, 0, 4<<10); return &b }}

const maxPooledBuffer = 256 << 10

func getBuffer() *[]byte { return buffers.Get().(*[]byte) }

func putBuffer(b *[]byte) {
	if cap(*b) > maxPooledBuffer {
		return
	}
	*b = (*b)[:0]
	buffers.Put(b)
}
