package xfcc

import (
	"fmt"
	"net/http"
	"strings"

	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/trustchain/trustchain/domain"
)

// Authorizer admits a request when the last XFCC element was written by a
// trusted proxy and names an allowed caller. The zero value admits nobody:
// with no allowed caller or no trusted proxy, every request is refused.
//
// It is only as trustworthy as the path to the application: the app port must
// be reachable solely through the trusted proxy (a sidecar's inbound capture
// with STRICT mTLS, or, in ambient mode, a ztunnel policy that admits only the
// waypoint), otherwise any client can write the header itself.
type Authorizer struct {
	// Allowed lists the SPIFFE IDs that may call this workload.
	Allowed []spiffeid.ID
	// TrustedProxies lists the SPIFFE IDs accepted in the last element's
	// By=, that is the proxies whose word about the caller counts. Behind a
	// sidecar this is the workload's own ID: Envoy writes By= from its own
	// certificate, which carries the workload's identity, so an element
	// another proxy wrote upstream cannot be replayed here. Behind an
	// ambient waypoint it is the waypoint's ID. Empty trusts no proxy.
	TrustedProxies []spiffeid.ID
}

// Authorize returns the caller's SPIFFE ID, or an error wrapping
// domain.ErrPeerForbidden that names what the caller presented.
//
// Only the last element counts. A sidecar's Envoy (APPEND_FORWARD,
// SANITIZE_SET) appends the element for the connection it terminated, and an
// ambient waypoint replaces the header with one element of its own
// (By=<waypoint>;URI=<caller>), so any earlier element is whatever the client
// chose to send and proves nothing.
func (a Authorizer) Authorize(r *http.Request) (spiffeid.ID, error) {
	values := r.Header.Values(HeaderName)
	if len(values) == 0 {
		return spiffeid.ID{}, fmt.Errorf("xfcc: no XFCC header: %w", domain.ErrPeerForbidden)
	}
	// Several header lines are one list, as HTTP defines for comma lists.
	elems, err := Parse(strings.Join(values, ","))
	if err != nil {
		return spiffeid.ID{}, fmt.Errorf("xfcc: %w: %w", err, domain.ErrPeerForbidden)
	}
	last := elems[len(elems)-1]

	by, err := onlySPIFFEID("proxy (By=)", last.By)
	if err != nil {
		return spiffeid.ID{}, err
	}
	if err := spiffeid.MatchOneOf(a.TrustedProxies...)(by); err != nil {
		return spiffeid.ID{}, fmt.Errorf("xfcc: element written by %q, not by a trusted proxy: %w", by, domain.ErrPeerForbidden)
	}
	if len(last.URI) == 0 {
		return spiffeid.ID{}, fmt.Errorf("xfcc: no client certificate URI (hash %q): %w", last.Hash, domain.ErrPeerForbidden)
	}
	id, err := onlySPIFFEID("client certificate", last.URI)
	if err != nil {
		return spiffeid.ID{}, err
	}
	if err := spiffeid.MatchOneOf(a.Allowed...)(id); err != nil {
		return spiffeid.ID{}, fmt.Errorf("xfcc: caller %q: %w", id, domain.ErrPeerForbidden)
	}
	return id, nil
}

// onlySPIFFEID returns the one SPIFFE ID in uris. An X.509-SVID has exactly
// one URI SAN, so none or several means the certificate is not one.
func onlySPIFFEID(what string, uris []string) (spiffeid.ID, error) {
	if len(uris) != 1 {
		return spiffeid.ID{}, fmt.Errorf("xfcc: %s has %d URIs %q, want one SPIFFE ID: %w", what, len(uris), uris, domain.ErrPeerForbidden)
	}
	id, err := spiffeid.FromString(uris[0])
	if err != nil {
		return spiffeid.ID{}, fmt.Errorf("xfcc: %s URI %q is not a SPIFFE ID: %w", what, uris[0], domain.ErrPeerForbidden)
	}
	return id, nil
}

// CheckPeer is Authorize as the API's peer check: the caller's SPIFFE ID
// as text ("" when refused), and the same refusal.
func (a Authorizer) CheckPeer(r *http.Request) (string, error) {
	id, err := a.Authorize(r)
	return id.String(), err
}
