package issuer

import (
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
)

// State keeps what a local issuer must keep for its tokens and logins to
// outlive a restart: the signing key, and named values such as the users'
// passwords, the client secret and the address the issuer listens on. It
// lives in a directory only its owner can read (0700, files 0600), and it
// refuses one that others can.
type State struct {
	dir string

	mu     sync.Mutex
	values map[string]string
}

const (
	stateKeyFile    = "signing-key.pem"
	stateValuesFile = "state.json"
)

// OpenState opens the state in dir, creating dir (0700) if it is missing.
func OpenState(dir string) (*State, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("state dir: %w", err)
	}
	if err := private(dir); err != nil {
		return nil, err
	}
	s := &State{dir: dir, values: map[string]string{}}
	b, err := s.read(stateValuesFile)
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return nil, err
	default:
		if err := json.Unmarshal(b, &s.values); err != nil {
			return nil, fmt.Errorf("state %s: %w", filepath.Join(dir, stateValuesFile), err)
		}
	}
	return s, nil
}

// private refuses a path whose mode lets anyone but its owner in.
func private(path string) error {
	fi, err := os.Stat(path)
	if err != nil {
		return fmt.Errorf("state: %w", err)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		want := "600"
		if fi.IsDir() {
			want = "700"
		}
		return fmt.Errorf("state %s is open to other users (mode %03o): it holds the signing key and passwords; chmod %s it", path, perm, want)
	}
	return nil
}

func (s *State) read(name string) ([]byte, error) {
	path := filepath.Join(s.dir, name)
	if _, err := os.Stat(path); err != nil {
		return nil, err
	}
	if err := private(path); err != nil {
		return nil, err
	}
	return os.ReadFile(path)
}

// write replaces a file whole (a temporary file renamed over it), so a
// crash never leaves half a key.
func (s *State) write(name string, b []byte) error {
	tmp, err := os.CreateTemp(s.dir, name+".*") // 0600
	if err != nil {
		return fmt.Errorf("state: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return fmt.Errorf("state: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("state: %w", err)
	}
	if err := os.Rename(tmp.Name(), filepath.Join(s.dir, name)); err != nil {
		return fmt.Errorf("state: %w", err)
	}
	return nil
}

// Key returns the kept signing key, generating and keeping one on first use.
func (s *State) Key() (*rsa.PrivateKey, error) {
	b, err := s.read(stateKeyFile)
	if errors.Is(err, fs.ErrNotExist) {
		priv, err := NewKey()
		if err != nil {
			return nil, err
		}
		der, err := x509.MarshalPKCS8PrivateKey(priv)
		if err != nil {
			return nil, fmt.Errorf("state: %w", err)
		}
		return priv, s.write(stateKeyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
	}
	if err != nil {
		return nil, err
	}
	block, _ := pem.Decode(b)
	if block == nil || block.Type != "PRIVATE KEY" {
		return nil, fmt.Errorf("state %s: not a PEM private key", filepath.Join(s.dir, stateKeyFile))
	}
	key, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("state %s: %w", filepath.Join(s.dir, stateKeyFile), err)
	}
	priv, ok := key.(*rsa.PrivateKey)
	if !ok || priv.N.BitLen() < rsaKeyBits {
		return nil, fmt.Errorf("state %s: not an RSA key of %d bits or more", filepath.Join(s.dir, stateKeyFile), rsaKeyBits)
	}
	return priv, nil
}

// Value returns the value kept under name, or keeps and returns the one
// newValue gives when there is none yet.
func (s *State) Value(name string, newValue func() (string, error)) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if v, ok := s.values[name]; ok {
		return v, nil
	}
	v, err := newValue()
	if err != nil {
		return "", err
	}
	return v, s.setLocked(name, v)
}

// Set keeps value under name.
func (s *State) Set(name, value string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.values[name] == value {
		return nil
	}
	return s.setLocked(name, value)
}

func (s *State) setLocked(name, value string) error {
	s.values[name] = value
	b, err := json.MarshalIndent(s.values, "", "  ")
	if err != nil {
		return fmt.Errorf("state: %w", err)
	}
	return s.write(stateValuesFile, append(b, '\n'))
}

// Get returns the value kept under name, or "".
func (s *State) Get(name string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.values[name]
}
