// Package xfcc authorizes callers inside an Istio mesh from the
// X-Forwarded-Client-Cert header that the proxy in front of the workload sets
// after it has verified the caller's mTLS identity: the workload's own Envoy
// sidecar, or in ambient mode the waypoint.
package xfcc

import (
	"errors"
	"fmt"
	"strings"
)

// HeaderName is the header Envoy uses to forward client certificate details.
const HeaderName = "X-Forwarded-Client-Cert"

// ErrMalformed means a header value does not follow Envoy's XFCC grammar.
var ErrMalformed = errors.New("malformed XFCC header")

// Element is what one proxy recorded about the client certificate it saw.
// Values are kept as Envoy wrote them (Cert and Chain stay URL-encoded PEM),
// with quoting removed.
type Element struct {
	// By holds the URI SANs of the certificate of the proxy that wrote the
	// element: a sidecar's is its workload's identity, a waypoint's its own.
	// Envoy writes one By per SAN.
	By      []string
	Hash    string
	Cert    string
	Chain   string
	Subject string
	URI     []string
	DNS     []string
}

// Parse splits an XFCC header value into its elements, oldest first:
// elements are separated by ',', key=value pairs by ';', and a value may be
// double-quoted (with \" escapes) to carry ',', ';' or '='. Keys are
// case-insensitive. Parse is strict: an empty element, an unknown or repeated
// single-valued key, or a stray quote is an error wrapping ErrMalformed,
// because a header we only half understand must not be used to grant access.
func Parse(header string) ([]Element, error) {
	if strings.TrimSpace(header) == "" {
		return nil, fmt.Errorf("%w: empty", ErrMalformed)
	}
	s := scanner{in: header}
	var (
		out []Element
		el  Element
	)
	for {
		key, err := s.key()
		if err != nil {
			return nil, err
		}
		val, err := s.value()
		if err != nil {
			return nil, err
		}
		if err := el.set(key, val); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrMalformed, err)
		}
		s.skipSpace()
		if s.done() {
			return append(out, el), nil
		}
		switch c := s.next(); c {
		case ';':
		case ',':
			out = append(out, el)
			el = Element{}
		default:
			return nil, s.errorf("unexpected %q", c)
		}
	}
}

func (e *Element) set(key, val string) error {
	single := func(dst *string) error {
		if *dst != "" {
			return fmt.Errorf("repeated key %s", key)
		}
		*dst = val
		return nil
	}
	// Envoy writes "URI=" or "DNS=" with an empty value when the certificate
	// has no such SAN; keeping "" would only make callers special-case it.
	multi := func(dst *[]string) error {
		if val != "" {
			*dst = append(*dst, val)
		}
		return nil
	}
	switch strings.ToLower(key) {
	case "by":
		return multi(&e.By)
	case "hash":
		return single(&e.Hash)
	case "cert":
		return single(&e.Cert)
	case "chain":
		return single(&e.Chain)
	case "subject":
		return single(&e.Subject)
	case "uri":
		return multi(&e.URI)
	case "dns":
		return multi(&e.DNS)
	default:
		return fmt.Errorf("unknown key %q", key)
	}
}

type scanner struct {
	in  string
	pos int
}

func (s *scanner) done() bool { return s.pos >= len(s.in) }

func (s *scanner) peek() byte { return s.in[s.pos] }

func (s *scanner) next() byte {
	c := s.in[s.pos]
	s.pos++
	return c
}

// skipSpace allows the optional whitespace that joining several header lines
// with ", " introduces.
func (s *scanner) skipSpace() {
	for !s.done() && (s.peek() == ' ' || s.peek() == '\t') {
		s.pos++
	}
}

func (s *scanner) errorf(format string, args ...any) error {
	return fmt.Errorf("%w: at byte %d: %s", ErrMalformed, s.pos, fmt.Sprintf(format, args...))
}

// key reads up to and including the '=' that ends a key.
func (s *scanner) key() (string, error) {
	s.skipSpace()
	start := s.pos
	for !s.done() {
		switch s.peek() {
		case '=':
			key := strings.TrimRight(s.in[start:s.pos], " \t")
			if key == "" {
				return "", s.errorf("empty key")
			}
			s.pos++
			return key, nil
		case ',', ';', '"':
			return "", s.errorf("expected key=value, found %q", s.peek())
		}
		s.pos++
	}
	return "", s.errorf("expected key=value, found end of header")
}

// value reads a quoted string or a bare token, stopping before the ';' or ','
// that follows it.
func (s *scanner) value() (string, error) {
	s.skipSpace()
	if !s.done() && s.peek() == '"' {
		return s.quoted()
	}
	start := s.pos
	for !s.done() {
		switch s.peek() {
		case ',', ';':
			return strings.TrimRight(s.in[start:s.pos], " \t"), nil
		case '"':
			return "", s.errorf("quote inside unquoted value")
		}
		s.pos++
	}
	return strings.TrimRight(s.in[start:], " \t"), nil
}

func (s *scanner) quoted() (string, error) {
	open := s.pos
	s.pos++ // opening quote
	var b strings.Builder
	for !s.done() {
		switch c := s.next(); c {
		case '"':
			return b.String(), nil
		case '\\':
			if s.done() {
				return "", s.errorf("dangling escape")
			}
			b.WriteByte(s.next())
		default:
			b.WriteByte(c)
		}
	}
	s.pos = open
	return "", s.errorf("unterminated quoted value")
}
