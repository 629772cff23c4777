// Package spiffeca is a throwaway certificate authority for development and the
// demo: it mints short-lived SPIFFE X.509-SVIDs so the roles can speak native
// mTLS without SPIRE or a mesh, in memory or as PEM files on disk.
package spiffeca

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"math/big"
	"net/url"
	"time"

	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"
)

// clockSkew backdates certificates so a peer whose clock runs slightly
// behind does not reject one issued a moment ago.
const clockSkew = time.Minute

// DevCA is a self-signed ECDSA P-256 root for one trust domain.
type DevCA struct {
	td   spiffeid.TrustDomain
	ttl  time.Duration
	root *x509.Certificate
	key  *ecdsa.PrivateKey
}

// NewDevCA creates a root for td that is valid for ttl. Every SVID it issues
// is valid for ttl as well, but never past the root.
func NewDevCA(td spiffeid.TrustDomain, ttl time.Duration) (*DevCA, error) {
	switch {
	case td.IsZero():
		return nil, errors.New("dev CA: empty trust domain")
	case ttl <= 0:
		return nil, fmt.Errorf("dev CA: ttl %s is not positive", ttl)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("dev CA: generate root key: %w", err)
	}
	serial, err := randomSerial()
	if err != nil {
		return nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{Organization: []string{"trustchain dev CA"}, CommonName: td.Name()},
		NotBefore:             now.Add(-clockSkew),
		NotAfter:              now.Add(ttl),
		IsCA:                  true,
		BasicConstraintsValid: true,
		MaxPathLenZero:        true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		URIs:                  []*url.URL{td.ID().URL()},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, fmt.Errorf("dev CA: sign root: %w", err)
	}
	root, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("dev CA: parse root: %w", err)
	}
	return &DevCA{td: td, ttl: ttl, root: root, key: key}, nil
}

// Issue mints an SVID for id, usable both to serve and to call, since every
// role but A does both.
func (ca *DevCA) Issue(id spiffeid.ID) (*x509svid.SVID, error) {
	if !id.MemberOf(ca.td) {
		return nil, fmt.Errorf("dev CA: %q is not in trust domain %q", id, ca.td)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("dev CA: generate key for %q: %w", id, err)
	}
	serial, err := randomSerial()
	if err != nil {
		return nil, err
	}
	now := time.Now()
	notAfter := now.Add(ca.ttl)
	if notAfter.After(ca.root.NotAfter) {
		notAfter = ca.root.NotAfter
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{Organization: []string{"trustchain dev"}},
		NotBefore:             now.Add(-clockSkew),
		NotAfter:              notAfter,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		URIs:                  []*url.URL{id.URL()},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.root, key.Public(), ca.key)
	if err != nil {
		return nil, fmt.Errorf("dev CA: sign SVID for %q: %w", id, err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("dev CA: parse SVID for %q: %w", id, err)
	}
	return &x509svid.SVID{ID: id, Certificates: []*x509.Certificate{leaf}, PrivateKey: key}, nil
}

// Bundle is the trust bundle peers need to verify SVIDs from this CA.
func (ca *DevCA) Bundle() *x509bundle.Bundle {
	return x509bundle.FromX509Authorities(ca.td, []*x509.Certificate{ca.root})
}

// Source issues an SVID for id and serves it with the CA's bundle, for roles
// running in one process (the demo) or tests. It does not renew the SVID.
func (ca *DevCA) Source(id spiffeid.ID) (*MemorySource, error) {
	svid, err := ca.Issue(id)
	if err != nil {
		return nil, err
	}
	return &MemorySource{svid: svid, bundle: ca.Bundle()}, nil
}

// MemorySource is a fixed SVID and bundle held in memory. It satisfies
// spiffetls.Source.
type MemorySource struct {
	svid   *x509svid.SVID
	bundle *x509bundle.Bundle
}

// GetX509SVID implements x509svid.Source.
func (s *MemorySource) GetX509SVID() (*x509svid.SVID, error) { return s.svid, nil }

// GetX509BundleForTrustDomain implements x509bundle.Source.
func (s *MemorySource) GetX509BundleForTrustDomain(td spiffeid.TrustDomain) (*x509bundle.Bundle, error) {
	return s.bundle.GetX509BundleForTrustDomain(td)
}

// Close releases nothing; it exists so every source is shut down alike.
func (s *MemorySource) Close() error { return nil }

func randomSerial() (*big.Int, error) {
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	if err != nil {
		return nil, fmt.Errorf("dev CA: serial number: %w", err)
	}
	return serial, nil
}
