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

// Refusal is one caller the server turned away in the TLS handshake.
type Refusal struct {
	// Peer is the SPIFFE ID the caller's certificate claims, unverified
	// when the certificate did not verify; "" when it sent none.
	Peer string
	// Err wraps domain.ErrPeerForbidden and says why.
	Err error
}

// ServerTLSConfig presents the workload's SVID and admits only clients whose
// certificate verifies against the bundle and whose SPIFFE ID is in allowed.
// Every refused handshake is reported to refused, once, from the TLS
// verification hook, so it can be counted and logged: a caller with no
// certificate at all included.
func ServerTLSConfig(src Source, allowed []spiffeid.ID, refused func(Refusal)) *tls.Config {
	cfg := tlsconfig.MTLSServerConfig(src, src, tlsconfig.AuthorizeOneOf(slices.Clone(allowed)...))
	verify := cfg.VerifyPeerCertificate
	// Request, then require in the hook: go-spiffe's RequireAnyClientCert
	// would end a handshake without a certificate before any hook runs,
	// and the refusal would go uncounted.
	cfg.ClientAuth = tls.RequestClientCert
	cfg.VerifyPeerCertificate = func(raw [][]byte, chains [][]*x509.Certificate) error {
		var r Refusal
		if len(raw) == 0 {
			r.Err = fmt.Errorf("spiffetls: caller presented no certificate: %w", domain.ErrPeerForbidden)
		} else if err := verify(raw, chains); err != nil {
			r.Peer = claimedID(raw[0])
			r.Err = fmt.Errorf("spiffetls: caller %q refused: %v: %w", r.Peer, err, domain.ErrPeerForbidden)
		} else {
			return nil
		}
		if refused != nil {
			refused(r)
		}
		return r.Err
	}
	// go-spiffe checks peers in VerifyPeerCertificate, which crypto/tls skips
	// on resumed sessions; without tickets every connection is checked
	// against the current bundle.
	cfg.SessionTicketsDisabled = true
	return cfg
}

// claimedID reads the SPIFFE ID a leaf certificate claims, for the log only:
// it may not have verified.
func claimedID(der []byte) string {
	cert, err := x509.ParseCertificate(der)
	if err != nil || len(cert.URIs) != 1 {
		return ""
	}
	return cert.URIs[0].String()
}

// ClientTLSConfig presents the workload's SVID and accepts the server only if
// it proves to be expected: the next hop, not merely any workload of the
// trust domain. Host names are not checked; the SPIFFE ID replaces them.
func ClientTLSConfig(src Source, expected spiffeid.ID) *tls.Config {
	return tlsconfig.MTLSClientConfig(src, src, tlsconfig.AuthorizeID(expected))
}

// AnonymousClientTLSConfig verifies that the server is expected, as
// ClientTLSConfig does, but presents no SVID: a caller with no workload
// identity, which is what the demo page plays to show the refusal.
func AnonymousClientTLSConfig(bundle x509bundle.Source, expected spiffeid.ID) *tls.Config {
	return tlsconfig.TLSClientConfig(bundle, tlsconfig.AuthorizeID(expected))
}
