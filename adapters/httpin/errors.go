package httpin

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"

	"github.com/trustchain/trustchain/domain"
)

// errorBody is the small JSON body of every error answer.
type errorBody struct {
	Error   string `json:"error"`
	Message string `json:"message"`
}

// problem is how one domain error is shown to the client.
type problem struct {
	status    int
	code      string
	message   string
	challenge string // WWW-Authenticate, when the status calls for one
}

// errorTable maps domain errors to answers. It is the only place that
// decides a status from an error; order matters where errors overlap.
var errorTable = []struct {
	target error
	answer problem
}{
	{domain.ErrTokenMissing, problem{http.StatusUnauthorized, "unauthorized", "a bearer token is required", `Bearer`}},
	{domain.ErrTokenInvalid, problem{http.StatusUnauthorized, "invalid_token", "the access token is invalid", `Bearer error="invalid_token"`}},
	{domain.ErrInsufficientScope, problem{http.StatusForbidden, "insufficient_scope", "the access token lacks the required scope", `Bearer error="insufficient_scope"`}},
	{domain.ErrVerifierNotReady, problem{http.StatusServiceUnavailable, "unavailable", "the token verifier is not ready", ""}},
	{domain.ErrPeerForbidden, problem{http.StatusForbidden, "forbidden", "the calling workload is not allowed", ""}},
	{domain.ErrUpstreamTimeout, problem{http.StatusGatewayTimeout, "upstream_timeout", "the next service did not answer in time", ""}},
	{domain.ErrUpstreamUnavailable, problem{http.StatusBadGateway, "bad_gateway", "the next service failed", ""}},
	{domain.ErrUpstreamBadResponse, problem{http.StatusBadGateway, "bad_gateway", "the next service returned an invalid answer", ""}},
	{domain.ErrSourceUnavailable, problem{http.StatusServiceUnavailable, "unavailable", "the product store is unavailable", ""}},
	{domain.ErrInvalidProduct, problem{http.StatusInternalServerError, "internal", "the product store holds an invalid product", ""}},
}

var internalProblem = problem{http.StatusInternalServerError, "internal", "internal error", ""}

// clientClosedRequest is nginx's status for a client that went away; it is
// never seen by that client but keeps logs and metrics honest.
const clientClosedRequest = 499

// writeError answers r with the status err maps to and records err for the
// request's log line. It is the one place an error is handled.
func writeError(w http.ResponseWriter, r *http.Request, err error) {
	noteError(r.Context(), err)

	var rejection *domain.UpstreamRejection
	if errors.As(err, &rejection) {
		// The next hop refused the caller: pass its answer back untouched.
		if rejection.Challenge != "" {
			w.Header().Set("WWW-Authenticate", rejection.Challenge)
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		w.WriteHeader(rejection.Status)
		_, _ = w.Write(rejection.Body)
		return
	}
	if errors.Is(err, context.Canceled) && r.Context().Err() != nil {
		w.WriteHeader(clientClosedRequest)
		return
	}

	p := internalProblem
	for _, row := range errorTable {
		if errors.Is(err, row.target) {
			p = row.answer
			break
		}
	}
	if p.challenge != "" {
		challenge := p.challenge
		if p.status == http.StatusForbidden {
			if scope := requiredScopeFrom(r.Context()); scope != "" {
				challenge += `, scope="` + scope + `"`
			}
		}
		w.Header().Set("WWW-Authenticate", challenge)
	}
	if p.status == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", "1")
	}
	writeJSON(w, p.status, errorBody{Error: p.code, Message: p.message})
}

// writeJSON writes v as the JSON answer with status.
func writeJSON(w http.ResponseWriter, status int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		// Only domain values are written; failing to encode one is a bug.
		status, body = http.StatusInternalServerError, []byte(`{"error":"internal","message":"internal error"}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_, _ = w.Write(append(body, '\n'))
}

// errorAttr is the log attribute for a handled error.
func errorAttr(err error) slog.Attr {
	var te *domain.TokenError
	if errors.As(err, &te) {
		return slog.Group("error", slog.String("reason", te.Reason), slog.String("detail", err.Error()))
	}
	return slog.String("error", err.Error())
}
