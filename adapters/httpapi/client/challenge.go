package client

import (
	"strings"
)

// A hop relays the next hop's 401/403 challenge only as far as the caller
// needs it to act: which error, which scope, which DPoP algorithms. The
// challenge is parsed as RFC 9110 §11.6.1 defines it and rebuilt from
// those parameters alone, so no text the next hop wrote (error_description,
// error_uri, a realm) reaches the client.

// maxChallengeLength caps the WWW-Authenticate values this hop reads.
const maxChallengeLength = 512

// challenge is one auth-scheme and its auth-params, in order.
type challenge struct {
	scheme string
	params [][2]string
}

// relayedParams are the auth-params passed on, each with the check its
// value must pass.
var relayedParams = []struct {
	name  string
	valid func(string) bool
}{
	{"error", knownChallengeError},
	{"scope", validScope},
	{"algs", validAlgs},
}

// relayChallenge rebuilds the Bearer and DPoP challenges of values from
// their relayed parameters. ok is false when values cannot be parsed, are
// too long, or repeat a parameter: the caller then answers with its own.
// Other schemes are dropped; the result is "" when none is left.
func relayChallenge(values []string) (relayed string, ok bool) {
	total := 0
	for _, v := range values {
		total += len(v)
	}
	if total > maxChallengeLength {
		return "", false
	}
	var out []string
	for _, v := range values {
		challenges, ok := parseChallenges(v)
		if !ok {
			return "", false
		}
		for _, c := range challenges {
			rebuilt, ok := c.rebuild()
			if !ok {
				return "", false
			}
			if rebuilt != "" {
				out = append(out, rebuilt)
			}
		}
	}
	relayed = strings.Join(out, ", ")
	// Quotes added around token values can lengthen what was read.
	return relayed, len(relayed) <= maxChallengeLength
}

// rebuild writes c with its relayed parameters, or "" for a scheme this
// hop does not pass on. A parameter named twice, or a relayed one whose
// value fails its check, makes the whole challenge suspect.
func (c challenge) rebuild() (string, bool) {
	var b strings.Builder
	switch {
	case strings.EqualFold(c.scheme, "Bearer"):
		b.WriteString("Bearer")
	case strings.EqualFold(c.scheme, "DPoP"):
		b.WriteString("DPoP")
	default:
		return "", true
	}
	seen := make(map[string]bool, len(c.params))
	for _, p := range c.params {
		if seen[p[0]] {
			return "", false
		}
		seen[p[0]] = true
	}
	sep := " "
	for _, rp := range relayedParams {
		for _, p := range c.params {
			if p[0] != rp.name {
				continue
			}
			if !rp.valid(p[1]) {
				return "", false
			}
			b.WriteString(sep + rp.name + `="` + p[1] + `"`)
			sep = ", "
		}
	}
	return b.String(), true
}

// knownChallengeError accepts the error codes of RFC 6750 §3.1 and RFC
// 9449 §7.1; any other value could be text.
func knownChallengeError(v string) bool {
	switch v {
	case "invalid_request", "invalid_token", "insufficient_scope", "invalid_dpop_proof", "use_dpop_nonce":
		return true
	}
	return false
}

// maxRelayedScope caps a relayed scope value.
const maxRelayedScope = 256

// validScope accepts RFC 6749 §3.3 scope-tokens (printable ASCII but " and
// \) separated by single spaces.
func validScope(v string) bool {
	if v == "" || len(v) > maxRelayedScope {
		return false
	}
	for _, tok := range strings.Split(v, " ") {
		if tok == "" {
			return false
		}
		for i := 0; i < len(tok); i++ {
			if c := tok[i]; c < 0x21 || c > 0x7e || c == '"' || c == '\\' {
				return false
			}
		}
	}
	return true
}

// validAlgs accepts a short space-separated list of JOSE algorithm names.
func validAlgs(v string) bool {
	if v == "" || len(v) > 128 {
		return false
	}
	for _, alg := range strings.Split(v, " ") {
		if alg == "" || len(alg) > 16 {
			return false
		}
		for i := 0; i < len(alg); i++ {
			if c := alg[i]; !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9') {
				return false
			}
		}
	}
	return true
}

// parseChallenges parses one WWW-Authenticate value (RFC 9110 §11.6.1):
//
//	challenges = #( auth-scheme [ 1*SP #auth-param ] )
//	auth-param = token BWS "=" BWS ( token / quoted-string )
//
// Parameter names are lower-cased, as they are case-insensitive. token68
// credentials (Basic, Negotiate) are not understood: no hop writes one,
// their schemes are dropped anyway, and one ending in "=" makes the whole
// value unparseable.
func parseChallenges(v string) ([]challenge, bool) {
	p := parser{s: v}
	var out []challenge
	for {
		p.skipListSeparators()
		if p.done() {
			return out, len(out) > 0
		}
		scheme := p.token()
		if scheme == "" {
			return nil, false
		}
		c := challenge{scheme: scheme}
		if !p.done() && p.peek() != ',' {
			if !p.spaces() {
				return nil, false
			}
			if !p.params(&c) {
				return nil, false
			}
		}
		out = append(out, c)
	}
}

// params reads the auth-params after a scheme, up to the next scheme or
// the end. Between elements any run of commas and whitespace is allowed
// (RFC 9110 §5.6.1 asks recipients to accept empty list elements).
func (p *parser) params(c *challenge) bool {
	for {
		start := p.i
		name := p.token()
		if name == "" {
			return p.done() || p.peek() == ','
		}
		p.ows()
		if p.done() || p.peek() != '=' {
			// The token was the next challenge's scheme.
			p.i = start
			return true
		}
		p.i++
		p.ows()
		value, ok := p.value()
		if !ok {
			return false
		}
		c.params = append(c.params, [2]string{strings.ToLower(name), value})
		p.ows()
		if p.done() {
			return true
		}
		if p.peek() != ',' {
			return false
		}
		p.skipListSeparators()
	}
}

// parser walks a header value byte by byte.
type parser struct {
	s string
	i int
}

func (p *parser) done() bool { return p.i >= len(p.s) }
func (p *parser) peek() byte { return p.s[p.i] }

func (p *parser) ows() {
	for !p.done() && (p.peek() == ' ' || p.peek() == '\t') {
		p.i++
	}
}

// spaces consumes 1*SP, reporting whether there was any.
func (p *parser) spaces() bool {
	start := p.i
	for !p.done() && p.peek() == ' ' {
		p.i++
	}
	return p.i > start
}

func (p *parser) skipListSeparators() {
	for !p.done() && (p.peek() == ' ' || p.peek() == '\t' || p.peek() == ',') {
		p.i++
	}
}

// token reads an RFC 9110 token (tchar+).
func (p *parser) token() string {
	start := p.i
	for !p.done() && isTchar(p.peek()) {
		p.i++
	}
	return p.s[start:p.i]
}

// value reads a token or a quoted-string, unescaping the latter. A value
// with a control character or a non-ASCII byte is refused.
func (p *parser) value() (string, bool) {
	if p.done() {
		return "", false
	}
	if p.peek() != '"' {
		t := p.token()
		return t, t != ""
	}
	p.i++
	var b strings.Builder
	for !p.done() {
		c := p.peek()
		p.i++
		switch {
		case c == '"':
			return b.String(), true
		case c == '\\':
			if p.done() {
				return "", false
			}
			c = p.peek()
			p.i++
		}
		if c != '\t' && (c < 0x20 || c > 0x7e) {
			return "", false
		}
		b.WriteByte(c)
	}
	return "", false
}

func isTchar(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	return strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
}
