package spiffeca_test

import (
	"crypto/x509"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"

	"github.com/trustchain/trustchain/adapters/dev/spiffeca"
)

var td = spiffeid.RequireTrustDomainFromString("cluster.local")

func newCA(tb testing.TB, ttl time.Duration) *spiffeca.DevCA {
	tb.Helper()
	ca, err := spiffeca.NewDevCA(td, ttl)
	if err != nil {
		tb.Fatalf("NewDevCA: %v", err)
	}
	return ca
}

func TestIssue(t *testing.T) {
	ca := newCA(t, time.Hour)
	id := spiffeid.RequireFromString("spiffe://cluster.local/ns/default/sa/service-a")

	svid, err := ca.Issue(id)
	if err != nil {
		t.Fatalf("Issue: %v", err)
	}
	// Round-tripping through PEM runs go-spiffe's SVID rules (one URI SAN,
	// not a CA, digitalSignature, key matches) on what we minted.
	certPEM, keyPEM, err := svid.Marshal()
	if err != nil {
		t.Fatalf("Marshal: %v", err)
	}
	parsed, err := x509svid.Parse(certPEM, keyPEM)
	if err != nil {
		t.Fatalf("issued SVID is not a valid SVID: %v", err)
	}
	if parsed.ID != id {
		t.Errorf("ID = %s, want %s", parsed.ID, id)
	}
	gotID, _, err := x509svid.Verify(parsed.Certificates, ca.Bundle())
	if err != nil || gotID != id {
		t.Fatalf("Verify against own bundle = %s, %v", gotID, err)
	}

	leaf := parsed.Certificates[0]
	for _, eku := range []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth} {
		if !slices.Contains(leaf.ExtKeyUsage, eku) {
			t.Errorf("leaf lacks extended key usage %v", eku)
		}
	}
	if life := time.Until(leaf.NotAfter); life > time.Hour {
		t.Errorf("leaf lives %s, longer than the CA's ttl", life)
	}

	other := newCA(t, time.Hour)
	if _, _, err := x509svid.Verify(parsed.Certificates, other.Bundle()); err == nil {
		t.Error("SVID verified against another CA's bundle")
	}
}

func TestIssueRefusesForeignTrustDomain(t *testing.T) {
	ca := newCA(t, time.Hour)
	if _, err := ca.Issue(spiffeid.RequireFromString("spiffe://example.org/ns/default/sa/service-a")); err == nil {
		t.Fatal("issued an SVID outside the CA's trust domain")
	}
}

func TestNewDevCARejectsBadInput(t *testing.T) {
	tests := []struct {
		name string
		td   spiffeid.TrustDomain
		ttl  time.Duration
	}{
		{"zero trust domain", spiffeid.TrustDomain{}, time.Hour},
		{"zero ttl", td, 0},
		{"negative ttl", td, -time.Minute},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := spiffeca.NewDevCA(tt.td, tt.ttl); err == nil {
				t.Fatal("NewDevCA succeeded")
			}
		})
	}
}

func TestSourceServesIssuedSVIDAndBundle(t *testing.T) {
	ca := newCA(t, time.Hour)
	id := spiffeid.RequireFromString("spiffe://cluster.local/ns/default/sa/service-c")
	src, err := ca.Source(id)
	if err != nil {
		t.Fatalf("Source: %v", err)
	}
	svid, err := src.GetX509SVID()
	if err != nil || svid.ID != id {
		t.Fatalf("GetX509SVID = %v, %v; want %s", svid, err, id)
	}
	bundle, err := src.GetX509BundleForTrustDomain(td)
	if err != nil || !bundle.Equal(ca.Bundle()) {
		t.Fatalf("GetX509BundleForTrustDomain = %v, %v; want the CA bundle", bundle, err)
	}
	if _, err := src.GetX509BundleForTrustDomain(spiffeid.RequireTrustDomainFromString("example.org")); err == nil {
		t.Error("served a bundle for a foreign trust domain")
	}
}

func TestWriteDevCerts(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "certs")

	paths, err := spiffeca.WriteDevCerts(dir, "cluster.local", "shop", []string{"service-a", "service-b", "service-c"}, time.Hour)
	if err != nil {
		t.Fatalf("WriteDevCerts: %v", err)
	}

	var want []string
	for _, name := range []string{"bundle.pem", "service-a.pem", "service-a-key.pem", "service-b.pem", "service-b-key.pem", "service-c.pem", "service-c-key.pem"} {
		want = append(want, filepath.Join(dir, name))
	}
	if !slices.Equal(paths, want) {
		t.Fatalf("paths = %v, want %v", paths, want)
	}
	for _, p := range paths {
		info, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if mode := info.Mode().Perm(); mode != 0o600 {
			t.Errorf("%s has mode %o, want 600", p, mode)
		}
	}
	if info, err := os.Stat(dir); err != nil || info.Mode().Perm() != 0o700 {
		t.Errorf("dir mode = %v, %v; want 700", info.Mode().Perm(), err)
	}
	if leftovers, _ := filepath.Glob(filepath.Join(dir, ".*")); len(leftovers) > 0 {
		t.Errorf("temporary files left behind: %v", leftovers)
	}

	bundle, err := x509bundle.Load(td, filepath.Join(dir, "bundle.pem"))
	if err != nil {
		t.Fatalf("load bundle: %v", err)
	}
	for _, sa := range []string{"service-a", "service-b", "service-c"} {
		t.Run(sa, func(t *testing.T) {
			svid, err := x509svid.Load(filepath.Join(dir, sa+".pem"), filepath.Join(dir, sa+"-key.pem"))
			if err != nil {
				t.Fatalf("load SVID: %v", err)
			}
			wantID := spiffeid.RequireFromString("spiffe://cluster.local/ns/shop/sa/" + sa)
			if svid.ID != wantID {
				t.Errorf("ID = %s, want %s", svid.ID, wantID)
			}
			if gotID, _, err := x509svid.Verify(svid.Certificates, bundle); err != nil || gotID != wantID {
				t.Errorf("Verify against bundle.pem = %s, %v", gotID, err)
			}
		})
	}
}

func TestWriteDevCertsReplacesFiles(t *testing.T) {
	dir := t.TempDir()
	if _, err := spiffeca.WriteDevCerts(dir, "cluster.local", "default", []string{"service-a", "service-b", "service-c"}, time.Hour); err != nil {
		t.Fatal(err)
	}
	key := filepath.Join(dir, "service-a-key.pem")
	old, err := os.ReadFile(key)
	if err != nil {
		t.Fatal(err)
	}
	// Someone loosened a key's mode; the next run must not keep it.
	if err := os.Chmod(key, 0o644); err != nil {
		t.Fatal(err)
	}

	if _, err := spiffeca.WriteDevCerts(dir, "cluster.local", "default", []string{"service-a", "service-b", "service-c"}, time.Hour); err != nil {
		t.Fatal(err)
	}
	info, err := os.Stat(key)
	if err != nil {
		t.Fatal(err)
	}
	if mode := info.Mode().Perm(); mode != 0o600 {
		t.Errorf("rewritten key has mode %o, want 600", mode)
	}
	if now, _ := os.ReadFile(key); string(now) == string(old) {
		t.Error("key was not replaced")
	}
}

func TestWriteDevCertsRejectsBadNames(t *testing.T) {
	tests := []struct{ name, td, ns string }{
		{"bad trust domain", "Not A Domain", "default"},
		{"bad namespace", "cluster.local", "a/b"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "certs")
			if _, err := spiffeca.WriteDevCerts(dir, tt.td, tt.ns, []string{"service-a"}, time.Hour); err == nil {
				t.Fatal("WriteDevCerts succeeded")
			}
			if _, err := os.Stat(dir); !os.IsNotExist(err) {
				t.Errorf("wrote into %s despite bad names", dir)
			}
		})
	}
}
