package server

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/trustchain/trustchain/adapters/httpapi/wire"
	"github.com/trustchain/trustchain/domain"
)

// requestState is what one request's log line and metrics report, filled
// in by the layers as they learn it. One per request, reached through the
// context.
type requestState struct {
	requestID   string
	credentials domain.Credentials // set once the token is verified
	subject     string
	peer        string
	// peerErr is the peer check's refusal, acted on by the routes that
	// check peers.
	peerErr       error
	requiredScope string
	// dpop is the edge's DPoP setting and usedDPoP whether the request
	// came with DPoP credentials: together they pick the challenges.
	dpop     *DPoP
	usedDPoP bool
	// proof is "ok" once the request's DPoP proof passed its checks, for
	// the access log; a refused proof is the error's reason.
	proof string
	err   error
}

type stateKey struct{}

func stateFrom(ctx context.Context) *requestState {
	if s, ok := ctx.Value(stateKey{}).(*requestState); ok {
		return s
	}
	return &requestState{}
}

// maxRequestIDLength bounds a caller's request id: Envoy's are 36-character
// UUIDs, and anything much longer is a way to grow every hop's headers and
// log lines.
const maxRequestIDLength = 128

// validRequestID accepts up to maxRequestIDLength characters of letters,
// digits and - _ . : , the alphabet of UUIDs, ULIDs and hex ids.
func validRequestID(id string) bool {
	if id == "" || len(id) > maxRequestIDLength {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.' || c == ':') {
			return false
		}
	}
	return true
}

// withRequestID is the outermost layer: it settles the request's id (the
// caller's own if it is valid, a new one otherwise), writes it on the
// request, so every layer and the next hop see the same one, and on the
// answer, whatever the answer turns out to be.
func withRequestID(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.Header.Get(wire.HeaderRequestID)
		if !validRequestID(id) || len(r.Header[wire.HeaderRequestID]) > 1 {
			id = uuid.NewString()
			r.Header[wire.HeaderRequestID] = []string{id}
		}
		w.Header()[wire.HeaderRequestID] = []string{id}
		state := &requestState{requestID: id}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), stateKey{}, state)))
	})
}

// Outcome is what the API reports about one answered request.
type Outcome struct {
	Route     string // a route name, never the raw path
	Status    int
	Elapsed   time.Duration
	RequestID string
	// Reason names why the request was refused or failed; "" when it was
	// served.
	Reason string
}

// maxLoggedPath bounds the path in a log line; the rest is the client's
// to invent.
const maxLoggedPath = 256

// observe reports each request once it is answered: one access-log line
// and one observation for the metrics, whatever answered it (a route, the
// 404 and 405 handlers, or the mux's own path-cleaning redirect). It wraps
// the mux and reads the matched pattern after it ran. The Authorization
// header is never read here, so no token reaches the log.
func observe(log *slog.Logger, report func(context.Context, Outcome), next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := &statusRecorder{ResponseWriter: w}
		next.ServeHTTP(rec, r)
		elapsed := time.Since(start)
		status := rec.status
		if status == 0 {
			status = http.StatusOK
		}
		route := routeOf(r.Pattern)
		state := stateFrom(r.Context())
		if report != nil {
			o := Outcome{Route: route, Status: status, Elapsed: elapsed, RequestID: state.requestID}
			if state.err != nil {
				o.Reason = wire.ReasonFor(state.err)
			}
			report(r.Context(), o)
		}
		level := slog.LevelInfo
		if state.err != nil {
			level = slog.LevelWarn
			// A shed request is the hop protecting itself, not a failure.
			if status >= 500 && !errors.Is(state.err, domain.ErrOverloaded) {
				level = slog.LevelError
			}
		}
		if !log.Enabled(r.Context(), level) {
			return
		}
		attrs := make([]slog.Attr, 0, 10)
		attrs = append(attrs,
			slog.String("method", r.Method),
			slog.String("path", wire.Truncate(r.URL.Path, maxLoggedPath)),
			slog.String("route", route),
			slog.Int("status", status),
			slog.Float64("duration_seconds", elapsed.Seconds()), // a number any log store can sum
			slog.String("request_id", state.requestID),
		)
		if state.subject != "" {
			attrs = append(attrs, slog.String("sub", state.subject))
		}
		if state.peer != "" {
			attrs = append(attrs, slog.String("peer", state.peer))
		}
		if state.proof != "" {
			attrs = append(attrs, slog.String("dpop", state.proof))
		}
		if state.err != nil {
			attrs = append(attrs, errorAttr(state.err))
		}
		log.LogAttrs(r.Context(), level, "request", attrs...)
	})
}

// maxLoggedDetail bounds an error's text in a log line; upstream answers
// and headers can end up in it.
const maxLoggedDetail = 512

// errorAttr is the log attribute for a handled error: always an object with
// a bounded reason and the error's text, so typed log stores can query
// error.reason across every refusal.
func errorAttr(err error) slog.Attr {
	return slog.Group("error",
		slog.String("reason", wire.ReasonFor(err)),
		slog.String("detail", wire.Truncate(err.Error(), maxLoggedDetail)),
	)
}

// statusRecorder remembers the status for the log and the metrics. Unwrap
// lets http.ResponseController reach the connection for everything else.
type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (w *statusRecorder) WriteHeader(code int) {
	// 1xx answers are interim; the final status comes later.
	if w.status == 0 && code >= 200 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusRecorder) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

func (w *statusRecorder) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// PeerCheck learns which workload sent a request and whether it may call
// this one: the one question both identity modes answer. app picks the
// implementation (the identity the native mTLS handshake verified, or the
// XFCC header the mesh's proxy wrote), or none with peer authentication
// off. The layers here only ask it: they never read a certificate or an
// identity header themselves.
type PeerCheck interface {
	// CheckPeer returns the caller's identity for the log ("" when it is
	// not known) and, when the caller may not call, an error wrapping
	// domain.ErrPeerForbidden.
	CheckPeer(r *http.Request) (peer string, err error)
}

// identifyPeer asks check about every request, so every log line names
// the caller; the routes' authorizePeer acts on a refusal.
func identifyPeer(check PeerCheck, next http.Handler) http.Handler {
	if check == nil {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		state := stateFrom(r.Context())
		peer, err := check.CheckPeer(r)
		state.peer, state.peerErr = wire.Truncate(peer, maxLoggedPath), err
		next.ServeHTTP(w, r)
	})
}

// authorizePeer refuses callers whose workload identity is not allowed,
// before the token is even looked at, as the mesh would.
func authorizePeer(refused func(), next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := stateFrom(r.Context()).peerErr; err != nil {
			if refused != nil {
				refused()
			}
			writeError(w, r, err)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// authenticate verifies the access token (and, at the edge, its DPoP
// proof), enforces the required scope and keeps the verified token, as
// domain.Credentials, in the request's state; sourceContext hands them to
// the source. (Not a new request with a new context: that copy would be
// made on every request, at every hop.)
func authenticate(tc tokenCheck, checked func(reason string), next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		state := stateFrom(r.Context())
		state.requiredScope = tc.scope
		state.dpop = &tc.dpop
		principal, raw, err := tc.verify(w, r, state)
		if checked != nil {
			checked(domain.TokenReason(err))
		}
		state.subject = principal.Subject()
		if err != nil {
			writeError(w, r, err)
			return
		}
		state.credentials = domain.NewCredentials(raw, state.requestID)
		next.ServeHTTP(w, r)
	})
}

// sourceContext is the context to call the source with: the request's,
// carrying the credentials authenticate verified. Without them (a route
// nothing authenticated) the client for the next hop refuses to call.
func sourceContext(r *http.Request) context.Context {
	creds := stateFrom(r.Context()).credentials
	if creds.Token() == "" {
		return r.Context()
	}
	return domain.WithCredentials(r.Context(), creds)
}

// accessToken extracts the access token from the Authorization header:
// RFC 6750 Bearer credentials, or RFC 9449 DPoP ones when withDPoP (the
// edge with DPoP on), which it reports. No credentials of an accepted
// scheme is "missing" (a bare challenge); credentials that cannot be a
// token are "invalid".
func accessToken(r *http.Request, withDPoP bool) (token string, isDPoP bool, err error) {
	values := r.Header["Authorization"]
	if len(values) == 0 {
		return "", false, domain.ErrTokenMissing
	}
	if len(values) > 1 {
		return "", false, &domain.TokenError{Reason: domain.ReasonMalformed}
	}
	scheme, token, _ := strings.Cut(values[0], " ")
	isDPoP = withDPoP && strings.EqualFold(scheme, "DPoP")
	if !isDPoP && !strings.EqualFold(scheme, "Bearer") {
		return "", false, domain.ErrTokenMissing
	}
	token = strings.TrimSpace(token)
	if token == "" || strings.ContainsAny(token, " \t") {
		return "", isDPoP, &domain.TokenError{Reason: domain.ReasonMalformed}
	}
	return token, isDPoP, nil
}
