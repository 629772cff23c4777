package issuer

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base32"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"
)

// Role is what a user may do: its permissions become the access token's
// permissions claim, and those the client asked for become its scope.
type Role struct {
	Name        string
	Permissions []string
}

// User is a person who can log in. String never shows the password, so a
// User can be logged or printed with %v safely.
type User struct {
	Name     string // the login name; the token's sub is auth0|Name
	Password string
	Role     Role
}

func (u User) String() string { return u.Name + " (role " + u.Role.Name + ")" }

// Subject is the sub claim of the user's tokens, shaped like Auth0's
// database users.
func (u User) Subject() string { return subjectPrefix + u.Name }

const subjectPrefix = "auth0|"

// PublicClient is a client without a secret: a browser app or a CLI.
type PublicClient struct {
	ID string
	// RedirectURIs are the only redirect_uri values /authorize accepts for
	// this client, compared exactly. A device-only client needs none.
	RedirectURIs []string
}

// The demo's users: DemoReader may read products, DemoVisitor may not, so
// that the chain's 403 can be seen.
const (
	DemoReader  = "alice"
	DemoVisitor = "bob"
)

// DemoUsers returns DemoReader, whose role grants readScope, and
// DemoVisitor, whose role grants nothing, each with a fresh random
// password for the demo to print.
func DemoUsers(readScope string) ([]User, error) {
	users := []User{
		{Name: DemoReader, Role: Role{Name: "reader", Permissions: []string{readScope}}},
		{Name: DemoVisitor, Role: Role{Name: "visitor"}},
	}
	for i := range users {
		pw, err := NewPassword()
		if err != nil {
			return nil, err
		}
		users[i].Password = pw
	}
	return users, nil
}

// NewPassword returns a random password that is easy to type:
// 80 bits as four groups of four lowercase letters and digits.
func NewPassword() (string, error) {
	b := make([]byte, 10)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("generate password: %w", err)
	}
	s := strings.ToLower(base32.StdEncoding.EncodeToString(b)) // 16 characters
	return s[0:4] + "-" + s[4:8] + "-" + s[8:12] + "-" + s[12:16], nil
}

func validateUsers(users []User) []error {
	var errs []error
	seen := map[string]bool{}
	for _, u := range users {
		switch {
		case u.Name == "" || strings.ContainsAny(u.Name, "|/ \t\r\n"):
			errs = append(errs, fmt.Errorf("user name %q must be non-empty without spaces, | or /", u.Name))
		case seen[u.Name]:
			errs = append(errs, fmt.Errorf("user %q is configured twice", u.Name))
		}
		seen[u.Name] = true
		if u.Password == "" {
			errs = append(errs, fmt.Errorf("user %q needs a password", u.Name))
		}
	}
	return errs
}

func validatePublicClients(clients []PublicClient, confidentialID string) []error {
	var errs []error
	seen := map[string]bool{confidentialID: true}
	for _, c := range clients {
		if c.ID == "" || seen[c.ID] {
			errs = append(errs, fmt.Errorf("public client ID %q must be non-empty and unique", c.ID))
		}
		seen[c.ID] = true
		for _, ru := range c.RedirectURIs {
			u, err := url.Parse(ru)
			if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Fragment != "" {
				errs = append(errs, fmt.Errorf("client %q: redirect URI %q must be an absolute http(s) URL without a fragment", c.ID, ru))
			}
		}
	}
	return errs
}

// authenticate returns the user whose name and password these are, or
// errWrongPassword, or a *lockedError while the name is locked out after
// too many wrong passwords. The passwords are hashed first so the
// comparison takes the same time whatever their lengths, and an unknown
// name costs the same as a wrong password.
func (iss *Issuer) authenticate(name, password string) (User, error) {
	u, known := iss.users[name]
	key := name
	if !known {
		key = "" // every unknown name counts against one shared entry
	}
	now := iss.cfg.Now()
	if wait := iss.pending.attempts.blocked(now, key); wait > 0 {
		return User{}, &lockedError{wait: wait}
	}
	want := sha256.Sum256([]byte(u.Password))
	got := sha256.Sum256([]byte(password))
	if subtle.ConstantTimeCompare(want[:], got[:]) != 1 || !known {
		iss.pending.attempts.fail(now, key)
		return User{}, errWrongPassword
	}
	iss.pending.attempts.succeed(key)
	return u, nil
}

// standardScopes are the OpenID scopes any user may be granted; offline
// access is left out because this issuer has no refresh tokens.
var standardScopes = []string{"openid", "profile", "email"}

// grantedScopes is what Auth0 does with RBAC on: of the scopes the client
// asked for, the user gets the OpenID ones and those their role permits.
func grantedScopes(requested string, role Role) []string {
	var out []string
	for _, s := range strings.Fields(requested) {
		if (slices.Contains(standardScopes, s) || slices.Contains(role.Permissions, s)) && !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}

func (iss *Issuer) scopesSupported() []string {
	out := append([]string{}, standardScopes...)
	add := func(scopes []string) {
		for _, s := range scopes {
			if !slices.Contains(out, s) {
				out = append(out, s)
			}
		}
	}
	add(iss.cfg.Scopes)
	for _, u := range iss.cfg.Users {
		add(u.Role.Permissions)
	}
	return out
}

// login is what a finished browser or device login carries to the token
// endpoint.
type login struct {
	user     User
	clientID string
	scope    []string // granted
	nonce    string
	authTime time.Time
}

// UserClaims returns the access-token claims the token endpoint would issue
// now to the user with this sub (auth0|name) through clientID, with every
// permission of the user's role in scope, for callers to alter before Mint
// (the demo mints an expired one).
func (iss *Issuer) UserClaims(sub, clientID string) (map[string]any, error) {
	name, ok := strings.CutPrefix(sub, subjectPrefix)
	u, known := iss.users[name]
	if !ok || !known {
		return nil, fmt.Errorf("no user with sub %q", sub)
	}
	return iss.accessClaims(login{user: u, clientID: clientID, scope: u.Role.Permissions}), nil
}

func (iss *Issuer) accessClaims(l login) map[string]any {
	now := iss.cfg.Now()
	return map[string]any{
		"iss":         iss.Issuer(),
		"sub":         l.user.Subject(),
		"aud":         []string{iss.cfg.Audience, iss.cfg.URL + "/userinfo"},
		"iat":         now.Unix(),
		"exp":         now.Add(iss.cfg.TokenTTL).Unix(),
		"scope":       strings.Join(l.scope, " "),
		"permissions": append([]string{}, l.user.Role.Permissions...),
		"azp":         l.clientID,
	}
}

func (iss *Issuer) idClaims(l login) map[string]any {
	now := iss.cfg.Now()
	claims := map[string]any{
		"iss":       iss.Issuer(),
		"sub":       l.user.Subject(),
		"aud":       l.clientID,
		"iat":       now.Unix(),
		"exp":       now.Add(iss.cfg.TokenTTL).Unix(),
		"auth_time": l.authTime.Unix(),
	}
	if l.nonce != "" {
		claims["nonce"] = l.nonce
	}
	if slices.Contains(l.scope, "profile") {
		claims["name"] = l.user.Name
		claims["nickname"] = l.user.Name
	}
	return claims
}

// writeUserTokens answers a successful code or device exchange: an access
// token for the API, bound to the DPoP key jkt when it is not "", and,
// when openid was granted, an ID token for the client.
func (iss *Issuer) writeUserTokens(w http.ResponseWriter, l login, jkt string) {
	resp, err := iss.userTokens(l, jkt)
	if err != nil {
		writeOAuthError(w, http.StatusInternalServerError, "server_error", "could not sign the token")
		return
	}
	writeJSON(w, http.StatusOK, resp)
}

func (iss *Issuer) userTokens(l login, jkt string) (tokenResponse, error) {
	claims := iss.accessClaims(l)
	tokenType := bind(claims, jkt)
	access, err := iss.Mint(claims)
	if err != nil {
		return tokenResponse{}, err
	}
	resp := tokenResponse{
		AccessToken: access,
		TokenType:   tokenType,
		ExpiresIn:   int64(iss.cfg.TokenTTL / time.Second),
		Scope:       strings.Join(l.scope, " "),
	}
	if slices.Contains(l.scope, "openid") {
		if resp.IDToken, err = iss.Mint(iss.idClaims(l)); err != nil {
			return tokenResponse{}, err
		}
	}
	return resp, nil
}
