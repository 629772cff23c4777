package spiffetls

import (
	"bytes"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"
	"github.com/spiffe/go-spiffe/v2/workloadapi"
)

var (
	_ Source = (*FileSource)(nil)
	_ Source = (*workloadapi.X509Source)(nil)
)

// defaultCheckInterval bounds how often handshakes look at the disk: often
// enough that a rotated SVID is in use within a second, rarely enough that a
// busy server does not read three files per connection.
const defaultCheckInterval = time.Second

// Files names the PEM files of a file-based source.
type Files struct {
	Cert   string // the SVID certificate chain, leaf first
	Key    string // the SVID private key (PKCS#8)
	Bundle string // the trust domain's CA certificates
}

// FileSource serves an SVID and trust bundle from PEM files and picks up new
// files (cert-manager, SPIRE's helper, a kubelet secret update) without a
// restart. The files are re-read on a handshake at most once per second; a
// set that fails to load, say a certificate whose key has not been written
// yet, is logged and the last good set stays in use.
type FileSource struct {
	files    Files
	w        Workload
	log      *slog.Logger
	interval time.Duration

	mu        sync.Mutex
	svid      *x509svid.SVID
	bundle    *x509bundle.Bundle
	raw       [3][]byte // contents the current svid and bundle came from
	checkedAt time.Time
}

// NewFileSource loads the files once and fails if they do not form a valid
// SVID of w.ID that chains to the bundle. Reloads are reported to w.Log;
// a reload that fails, or brings another workload's SVID, keeps the
// current SVID and counts as a failed rotation.
func NewFileSource(files Files, w Workload) (*FileSource, error) {
	s := &FileSource{files: files, w: w, log: w.logger(), interval: defaultCheckInterval}
	raw, err := s.read()
	if err != nil {
		return nil, err
	}
	if err := s.load(raw); err != nil {
		return nil, err
	}
	s.checkedAt = time.Now()
	return s, nil
}

// GetX509SVID returns the current SVID. It implements x509svid.Source.
func (s *FileSource) GetX509SVID() (*x509svid.SVID, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.refresh()
	return s.svid, nil
}

// GetX509BundleForTrustDomain returns the bundle when td is the SVID's trust
// domain. It implements x509bundle.Source.
func (s *FileSource) GetX509BundleForTrustDomain(td spiffeid.TrustDomain) (*x509bundle.Bundle, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.refresh()
	return s.bundle.GetX509BundleForTrustDomain(td)
}

// Close releases nothing; it exists so every source is shut down alike.
func (s *FileSource) Close() error { return nil }

// refresh reloads the files when their contents changed. Comparing contents
// rather than modification times also catches a rewrite within the
// filesystem's timestamp granularity. The caller holds s.mu.
func (s *FileSource) refresh() {
	now := time.Now()
	if now.Sub(s.checkedAt) < s.interval {
		return
	}
	s.checkedAt = now
	raw, err := s.read()
	if err == nil && sameContents(raw, s.raw) {
		return
	}
	if err == nil {
		err = s.load(raw)
	}
	if err != nil {
		s.w.failed()
		s.log.Warn("keeping the previous SVID: reloading certificate files failed",
			"err", err, "spiffe_id", s.svid.ID.String(), "not_after", s.svid.Certificates[0].NotAfter)
		return
	}
	s.log.Info("loaded a new SVID from files",
		"spiffe_id", s.svid.ID.String(), "serial", s.svid.Certificates[0].SerialNumber.String(),
		"not_after", s.svid.Certificates[0].NotAfter)
}

func (s *FileSource) read() ([3][]byte, error) {
	var raw [3][]byte
	for i, path := range [3]string{s.files.Cert, s.files.Key, s.files.Bundle} {
		b, err := os.ReadFile(path)
		if err != nil {
			return raw, fmt.Errorf("read SVID files: %w", err)
		}
		raw[i] = b
	}
	return raw, nil
}

// load replaces the current SVID and bundle only if the new ones are
// consistent, so peers are never shown a certificate they cannot verify.
func (s *FileSource) load(raw [3][]byte) error {
	svid, err := x509svid.Parse(raw[0], raw[1])
	if err != nil {
		return fmt.Errorf("parse SVID %s with key %s: %w", s.files.Cert, s.files.Key, err)
	}
	bundle, err := x509bundle.Parse(svid.ID.TrustDomain(), raw[2])
	if err != nil {
		return fmt.Errorf("parse bundle %s: %w", s.files.Bundle, err)
	}
	if svid.ID != s.w.ID {
		return fmt.Errorf("%w: %s holds %s, not this workload's own %s", ErrNotOwnSVID, s.files.Cert, svid.ID, s.w.ID)
	}
	if _, _, err := x509svid.Verify(svid.Certificates, bundle); err != nil {
		return fmt.Errorf("SVID %s does not verify against bundle %s: %w", s.files.Cert, s.files.Bundle, err)
	}
	s.svid, s.bundle, s.raw = svid, bundle, raw
	return nil
}

func sameContents(a, b [3][]byte) bool {
	return bytes.Equal(a[0], b[0]) && bytes.Equal(a[1], b[1]) && bytes.Equal(a[2], b[2])
}
