package domain

import "slices"

// Principal is the user a verified token speaks for.
type Principal struct {
	subject string
	scopes  []string
	jkt     string // the cnf.jkt the token is bound to, "" when it is not
}

// NewPrincipal returns the principal for a verified token's subject and
// granted scopes (from every claim the deployment reads scopes from:
// scope, scp, permissions by default). A scope matches only exactly.
func NewPrincipal(subject string, scopes []string) Principal {
	return Principal{subject: subject, scopes: slices.Clone(scopes)}
}

// Subject is the token's sub claim, safe to log.
func (p Principal) Subject() string { return p.subject }

// Scopes returns the granted scopes.
func (p Principal) Scopes() []string { return slices.Clone(p.scopes) }

// HasScope reports whether the principal was granted scope. An empty
// requirement is always met: the scope check is opt-in per deployment.
func (p Principal) HasScope(scope string) bool {
	return scope == "" || slices.Contains(p.scopes, scope)
}

// BoundTo returns p for a token bound (RFC 9449 cnf.jkt) to the key with
// the given RFC 7638 thumbprint.
func (p Principal) BoundTo(jkt string) Principal {
	p.jkt = jkt
	return p
}

// KeyThumbprint is the token's cnf.jkt: the base64url SHA-256 thumbprint
// of the key every request with it must prove, or "" for a bearer token.
func (p Principal) KeyThumbprint() string { return p.jkt }
