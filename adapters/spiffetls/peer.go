package spiffetls

import (
	"fmt"
	"net/http"

	"github.com/trustchain/trustchain/domain"
)

// VerifiedPeer is the API's peer check with native mTLS: it names the
// caller of a request that came over a connection ServerTLSConfig
// admitted. The handshake has already verified the caller's SVID against
// the bundle and the allowed IDs, so this reads the SPIFFE ID it verified
// and checks nothing again. A request without a client certificate did not
// come through that handshake and is refused.
type VerifiedPeer struct{}

// CheckPeer returns the SPIFFE ID of the certificate the caller presented,
// or an error wrapping domain.ErrPeerForbidden.
func (VerifiedPeer) CheckPeer(r *http.Request) (string, error) {
	if r.TLS == nil || len(r.TLS.PeerCertificates) == 0 {
		return "", fmt.Errorf("spiffetls: the request came without a client certificate: %w", domain.ErrPeerForbidden)
	}
	leaf := r.TLS.PeerCertificates[0]
	if len(leaf.URIs) != 1 {
		return "", fmt.Errorf("spiffetls: the client certificate has %d URIs, want one SPIFFE ID: %w", len(leaf.URIs), domain.ErrPeerForbidden)
	}
	return leaf.URIs[0].String(), nil
}
