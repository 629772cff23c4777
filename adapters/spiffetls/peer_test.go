package spiffetls_test

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net/http/httptest"
	"net/url"
	"testing"

	"github.com/trustchain/trustchain/adapters/spiffetls"
	"github.com/trustchain/trustchain/domain"
)

// TestVerifiedPeerRefusesWithoutTheHandshake: a request that did not come
// over an mTLS connection with one SPIFFE ID is refused, not waved through
// with no name. (The admitted case runs over real TLS in
// TestServerAdmitsOnlyTheAllowedCaller.)
func TestVerifiedPeerRefusesWithoutTheHandshake(t *testing.T) {
	a, _ := url.Parse(serviceA.String())
	b, _ := url.Parse(serviceB.String())
	for name, state := range map[string]*tls.ConnectionState{
		"plaintext":      nil,
		"no certificate": {},
		"no URI":         {PeerCertificates: []*x509.Certificate{{}}},
		"two URIs":       {PeerCertificates: []*x509.Certificate{{URIs: []*url.URL{a, b}}}},
	} {
		t.Run(name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/products", nil)
			r.TLS = state
			peer, err := spiffetls.VerifiedPeer{}.CheckPeer(r)
			if !errors.Is(err, domain.ErrPeerForbidden) || peer != "" {
				t.Fatalf("CheckPeer = %q, %v; want a refusal", peer, err)
			}
		})
	}
	r := httptest.NewRequest("GET", "/products", nil)
	r.TLS = &tls.ConnectionState{PeerCertificates: []*x509.Certificate{{URIs: []*url.URL{a}}}}
	if peer, err := (spiffetls.VerifiedPeer{}).CheckPeer(r); err != nil || peer != serviceA.String() {
		t.Fatalf("CheckPeer = %q, %v; want %s", peer, err, serviceA)
	}
}
