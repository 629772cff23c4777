package httpin

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/trustchain/trustchain/adapters/relay"
	"github.com/trustchain/trustchain/domain"
	"github.com/trustchain/trustchain/internal/statuswriter"
	"github.com/trustchain/trustchain/ports"
)

// requestInfo collects what the access log line reports about a request as
// the middleware chain learns it.
type requestInfo struct {
	subject       string
	peer          string
	requiredScope string
	err           error
}

type infoKey struct{}

func infoFrom(ctx context.Context) *requestInfo {
	if info, ok := ctx.Value(infoKey{}).(*requestInfo); ok {
		return info
	}
	return &requestInfo{}
}

func noteError(ctx context.Context, err error) { infoFrom(ctx).err = err }

func requiredScopeFrom(ctx context.Context) string { return infoFrom(ctx).requiredScope }

// accessLog writes one line per request: role, method, path, status,
// duration, request id, token subject and, for a refusal, the reason. The
// Authorization header is never read here, so no token reaches the log.
func accessLog(log *slog.Logger, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		requestID := r.Header.Get("X-Request-Id")
		if requestID == "" {
			// The ingress gateway normally sets one; mint one otherwise so
			// the hops' lines can still be joined.
			requestID = newRequestID()
			r.Header.Set("X-Request-Id", requestID)
		}
		info := &requestInfo{}
		rec := statuswriter.New(w)
		next.ServeHTTP(rec, r.WithContext(context.WithValue(r.Context(), infoKey{}, info)))

		status := rec.Status()
		attrs := []slog.Attr{
			slog.String("method", r.Method),
			slog.String("path", r.URL.Path),
			slog.Int("status", status),
			slog.Duration("duration", time.Since(start)),
			slog.String("request_id", requestID),
		}
		if info.subject != "" {
			attrs = append(attrs, slog.String("sub", info.subject))
		}
		if info.peer != "" {
			attrs = append(attrs, slog.String("peer", info.peer))
		}
		level := slog.LevelInfo
		if info.err != nil {
			attrs = append(attrs, errorAttr(info.err))
			if status >= 500 {
				level = slog.LevelError
			} else {
				level = slog.LevelWarn
			}
		}
		log.LogAttrs(r.Context(), level, "request", attrs...)
	})
}

func newRequestID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// PeerCheck authorises the calling workload and returns its identity for
// the log. A refusal wraps domain.ErrPeerForbidden.
type PeerCheck func(r *http.Request) (peer string, err error)

// authorizePeer refuses callers whose workload identity is not allowed,
// before the token is even looked at: the mesh would have done the same.
func authorizePeer(check PeerCheck, refused func(error), next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		peer, err := check(r)
		infoFrom(r.Context()).peer = peer
		if err != nil {
			refused(err)
			writeError(w, r, err)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// authenticate verifies the bearer token, enforces the required scope and
// puts the token in the context for the next hop.
func authenticate(verifier ports.TokenVerifier, scope string, checked func(error), next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		info := infoFrom(r.Context())
		info.requiredScope = scope
		principal, raw, err := verify(r, verifier, scope)
		checked(err)
		if principal.Subject() != "" {
			info.subject = principal.Subject()
		}
		if err != nil {
			writeError(w, r, err)
			return
		}
		ctx := relay.NewContext(r.Context(), relay.FromRequest(r, raw))
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}

// verify returns the principal and raw token of an acceptable request.
func verify(r *http.Request, verifier ports.TokenVerifier, scope string) (domain.Principal, string, error) {
	raw, err := bearerToken(r)
	if err != nil {
		return domain.Principal{}, "", err
	}
	principal, err := verifier.Verify(r.Context(), raw)
	if err != nil {
		return domain.Principal{}, "", err
	}
	if !principal.HasScope(scope) {
		return principal, "", domain.ErrInsufficientScope
	}
	return principal, raw, nil
}

// bearerToken extracts the RFC 6750 bearer token from the Authorization
// header. No Bearer credentials at all is "missing" (a bare challenge);
// Bearer credentials that cannot be a token are "invalid".
func bearerToken(r *http.Request) (string, error) {
	values := r.Header.Values("Authorization")
	if len(values) == 0 {
		return "", domain.ErrTokenMissing
	}
	if len(values) > 1 {
		return "", &domain.TokenError{Reason: domain.ReasonMalformed}
	}
	scheme, token, _ := strings.Cut(values[0], " ")
	if !strings.EqualFold(scheme, "Bearer") {
		return "", domain.ErrTokenMissing
	}
	token = strings.TrimSpace(token)
	if token == "" || strings.ContainsAny(token, " \t") {
		return "", &domain.TokenError{Reason: domain.ReasonMalformed}
	}
	return token, nil
}
