package xfcc

import (
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/trustchain/trustchain/domain"
)

// Authorizer admits a request when the caller's certificate, as recorded by
// this workload's own sidecar, carries an allowed SPIFFE ID. The zero value
// admits nobody.
//
// It is only as trustworthy as the path to the application: the app port must
// be reachable solely through the sidecar (Istio's inbound capture with
// STRICT mTLS), otherwise any client can write the header itself.
type Authorizer struct {
	// Allowed lists the SPIFFE IDs that may call this workload.
	Allowed []spiffeid.ID
	// Self is this workload's own SPIFFE ID. When set, the trusted element
	// must have been written for it (By=Self), so an element some other
	// proxy wrote upstream cannot be replayed here. Zero means unknown.
	Self spiffeid.ID
}

// Authorize returns the caller's SPIFFE ID, or an error wrapping
// domain.ErrPeerForbidden that names what the caller presented.
//
// Only the last element counts. Envoy (APPEND_FORWARD, SANITIZE_SET) appends
// the element for the connection it terminated, so every earlier element is
// whatever the client chose to send and proves nothing.
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

	if !a.Self.IsZero() && !slices.Contains(last.By, a.Self.String()) {
		return spiffeid.ID{}, fmt.Errorf("xfcc: element written for %q, not for this workload %q: %w",
			last.By, a.Self, domain.ErrPeerForbidden)
	}
	switch len(last.URI) {
	case 0:
		return spiffeid.ID{}, fmt.Errorf("xfcc: no client certificate URI (hash %q): %w", last.Hash, domain.ErrPeerForbidden)
	case 1:
	default:
		// An X.509-SVID has exactly one URI SAN; several means it is not one.
		return spiffeid.ID{}, fmt.Errorf("xfcc: client certificate has %d URIs %q: %w", len(last.URI), last.URI, domain.ErrPeerForbidden)
	}
	id, err := spiffeid.FromString(last.URI[0])
	if err != nil {
		return spiffeid.ID{}, fmt.Errorf("xfcc: client URI %q is not a SPIFFE ID: %w", last.URI[0], domain.ErrPeerForbidden)
	}
	if !slices.Contains(a.Allowed, id) {
		return spiffeid.ID{}, fmt.Errorf("xfcc: caller %q: %w", id, domain.ErrPeerForbidden)
	}
	return id, nil
}
