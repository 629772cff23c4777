package oauthlogin

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Everything the issuer writes (the user code, the address, an error's
// description, a token's claims) reaches the user's terminal only through
// terminalSafe: an escape sequence in it could rewrite the screen, hide the
// real address or retitle the window.

// terminalSafe returns s with every control character (C0, DEL, C1), every
// bidirectional-text override and every invalid UTF-8 byte written as a Go
// escape (\x1b, \u202e), so it prints as the text it is.
func terminalSafe(s string) string {
	safe := true
	for _, r := range s {
		if unsafeRune(r) {
			safe = false
			break
		}
	}
	if safe {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case unsafeRune(r):
			q := strconv.QuoteRuneToASCII(r)
			b.WriteString(q[1 : len(q)-1])
		default:
			b.WriteRune(r)
		}
		i += size
	}
	return b.String()
}

func unsafeRune(r rune) bool {
	return r == utf8.RuneError || unicode.IsControl(r) || unicode.Is(unicode.Bidi_Control, r)
}

// safeError is an error whose text may carry the issuer's words, made safe
// to print; errors.Is and errors.As still see the original.
type safeError struct{ err error }

func (e safeError) Error() string { return terminalSafe(e.err.Error()) }
func (e safeError) Unwrap() error { return e.err }

// oidcScopes are the OpenID Connect scopes: they govern the ID token and
// userinfo, and many issuers leave them out of the access token, so their
// absence there is no cause for a warning.
var oidcScopes = []string{"openid", "profile", "email", "address", "phone", "offline_access"}

// writeSummary writes one line: who the token is for and what it grants,
// read from the token's payload (the issuer just handed it over; this is
// for display, the roles verify it), and a warning for each scope asked
// for that it does not grant.
func writeSummary(w io.Writer, token string, asked []string) error {
	sub, granted, err := tokenSummary(token)
	if err != nil {
		_, err := fmt.Fprintf(w, "logged in; the access token is not a JWT this command can read (%v)\n", err)
		return err
	}
	line := fmt.Sprintf("logged in as %s; scopes %s", terminalSafe(sub), terminalSafe(strings.Join(granted, " ")))
	if len(granted) == 0 {
		line = fmt.Sprintf("logged in as %s; no scopes", terminalSafe(sub))
	}
	var missing []string
	for _, s := range asked {
		if !slices.Contains(granted, s) && !slices.Contains(oidcScopes, s) {
			missing = append(missing, s)
		}
	}
	if len(missing) > 0 {
		line += fmt.Sprintf(" (warning: the token does not grant %s, asked with --scope)", terminalSafe(strings.Join(missing, " ")))
	}
	_, err = fmt.Fprintln(w, line)
	return err
}

// tokenSummary reads sub and the granted scopes from a JWT's payload:
// scope and scp (a space-delimited string or an array) and Auth0's
// permissions, in that order, without repeats.
func tokenSummary(token string) (sub string, scopes []string, err error) {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return "", nil, errors.New("not three segments")
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return "", nil, errors.New("payload is not base64url")
	}
	var claims struct {
		Sub         string          `json:"sub"`
		Scope       json.RawMessage `json:"scope"`
		Scp         json.RawMessage `json:"scp"`
		Permissions json.RawMessage `json:"permissions"`
	}
	if err := json.Unmarshal(payload, &claims); err != nil {
		return "", nil, errors.New("payload is not a JSON object")
	}
	for _, raw := range []json.RawMessage{claims.Scope, claims.Scp, claims.Permissions} {
		for _, s := range scopeList(raw) {
			if !slices.Contains(scopes, s) {
				scopes = append(scopes, s)
			}
		}
	}
	return claims.Sub, scopes, nil
}

// scopeList reads a space-delimited string or an array of strings, as the
// roles do: a string is split on spaces only (RFC 6749 section 3.3), so a
// tab does not make "read:products" look granted when the roles would
// refuse it.
func scopeList(raw json.RawMessage) []string {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return slices.DeleteFunc(strings.Split(s, " "), func(t string) bool { return t == "" })
	}
	var list []string
	if json.Unmarshal(raw, &list) == nil {
		return list
	}
	return nil
}
