// Package spiffetls gives workloads native mutual TLS with SPIFFE X.509-SVIDs
// when no mesh sidecar does it for them: it keeps the workload's SVID and
// trust bundle current (from rotating files or the SPIFFE Workload API) and
// builds tls.Configs that admit only the expected SPIFFE IDs.
package spiffetls

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"slices"

	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/spiffetls/tlsconfig"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"

	"github.com/trustchain/trustchain/domain"
)

// Source supplies this workload's current SVID and the bundles that peers'
// SVIDs are verified against. Both are asked for on every handshake, so a
// source that rotates is picked up without restarting anything.
type Source interface {
	x509svid.Source
	x509bundle.Source
}

// ServerTLSConfig presents the workload's SVID and admits only clients whose
// certificate verifies against the bundle and whose SPIFFE ID is in allowed.
// A refused handshake fails with an error wrapping domain.ErrPeerForbidden
// that names the caller; net/http reports it through http.Server.ErrorLog.
func ServerTLSConfig(src Source, allowed []spiffeid.ID) *tls.Config {
	allowed = slices.Clone(allowed)
	authorize := func(id spiffeid.ID, _ [][]*x509.Certificate) error {
		if !slices.Contains(allowed, id) {
			return fmt.Errorf("spiffetls: caller %q: %w", id, domain.ErrPeerForbidden)
		}
		return nil
	}
	cfg := tlsconfig.MTLSServerConfig(src, src, authorize)
	// go-spiffe checks peers in VerifyPeerCertificate, which crypto/tls skips
	// on resumed sessions; without tickets every connection is checked
	// against the current bundle.
	cfg.SessionTicketsDisabled = true
	return cfg
}

// ClientTLSConfig presents the workload's SVID and accepts the server only if
// it proves to be expected: the next hop, not merely any workload of the
// trust domain. Host names are not checked; the SPIFFE ID replaces them.
func ClientTLSConfig(src Source, expected spiffeid.ID) *tls.Config {
	return tlsconfig.MTLSClientConfig(src, src, tlsconfig.AuthorizeID(expected))
}
