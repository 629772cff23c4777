package domain

import (
	"context"
	"log/slog"
)

// Credentials are what one hop hands on for its caller: the bearer token it
// verified, unchanged, and the request id the user can quote. The inbound
// side puts them in the request's context; the client for the next hop
// reads them there, so no adapter needs to know about another.
type Credentials struct {
	token     string
	requestID string
}

// NewCredentials returns credentials for a verified token and request id.
func NewCredentials(token, requestID string) Credentials {
	return Credentials{token: token, requestID: requestID}
}

// Token is the bearer token, to forward as it came. Never log it.
func (c Credentials) Token() string { return c.token }

// RequestID identifies the request across the hops and in every answer.
func (c Credentials) RequestID() string { return c.requestID }

// LogValue keeps the token out of any log that is handed credentials.
func (c Credentials) LogValue() slog.Value {
	return slog.GroupValue(slog.String("request_id", c.requestID), slog.Bool("token", c.token != ""))
}

// String keeps the token out of fmt's output too.
func (c Credentials) String() string {
	return "credentials for request " + c.requestID
}

type credentialsKey struct{}

// WithCredentials returns ctx carrying c.
func WithCredentials(ctx context.Context, c Credentials) context.Context {
	return context.WithValue(ctx, credentialsKey{}, c)
}

// CredentialsFrom returns the credentials WithCredentials stored, if any.
func CredentialsFrom(ctx context.Context) (Credentials, bool) {
	c, ok := ctx.Value(credentialsKey{}).(Credentials)
	return c, ok
}
