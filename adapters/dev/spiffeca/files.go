package spiffeca

import (
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
)

// WriteDevCerts creates a fresh CA for trustDomain and writes into dir, in this
// order: bundle.pem, then <sa>.pem and <sa>-key.pem for each service account
// in namespace. It returns the paths written. Files are 0600 in
// a 0700 directory because they hold private keys. Each file is replaced by a
// rename, so a FileSource watching dir never reads a half-written file.
func WriteDevCerts(dir, trustDomain, namespace string, serviceAccounts []string, ttl time.Duration) ([]string, error) {
	td, err := spiffeid.TrustDomainFromString(trustDomain)
	if err != nil {
		return nil, fmt.Errorf("dev certs: trust domain %q: %w", trustDomain, err)
	}
	ca, err := NewDevCA(td, ttl)
	if err != nil {
		return nil, err
	}
	bundlePEM, err := ca.Bundle().Marshal()
	if err != nil {
		return nil, fmt.Errorf("dev certs: encode bundle: %w", err)
	}
	files := []pemFile{{"bundle.pem", bundlePEM}}
	for _, sa := range serviceAccounts {
		id, err := spiffeid.FromSegments(td, "ns", namespace, "sa", sa)
		if err != nil {
			return nil, fmt.Errorf("dev certs: namespace %q: %w", namespace, err)
		}
		svid, err := ca.Issue(id)
		if err != nil {
			return nil, err
		}
		certPEM, keyPEM, err := svid.Marshal()
		if err != nil {
			return nil, fmt.Errorf("dev certs: encode %s: %w", sa, err)
		}
		files = append(files, pemFile{sa + ".pem", certPEM}, pemFile{sa + "-key.pem", keyPEM})
	}

	// Everything is minted before touching the disk, so bad names leave
	// nothing behind.
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("dev certs: %w", err)
	}
	paths := make([]string, 0, len(files))
	for _, f := range files {
		path := filepath.Join(dir, f.name)
		if err := writePrivate(path, f.data); err != nil {
			return paths, fmt.Errorf("dev certs: %w", err)
		}
		paths = append(paths, path)
	}
	return paths, nil
}

type pemFile struct {
	name string
	data []byte
}

// writePrivate writes data to path with mode 0600 via a temporary file and a
// rename, so the mode holds even when path existed with looser permissions.
func writePrivate(path string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // no-op once renamed
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return err
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}
