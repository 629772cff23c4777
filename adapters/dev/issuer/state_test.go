package issuer_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/trustchain/trustchain/adapters/dev/issuer"
)

// TestStateOutlivesARestart: the key and the values read back the same
// from a second OpenState, and only the owner can read any of it.
func TestStateOutlivesARestart(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state")
	s1, err := issuer.OpenState(dir)
	if err != nil {
		t.Fatal(err)
	}
	key1, err := s1.Key()
	if err != nil {
		t.Fatal(err)
	}
	pw1, err := s1.Value("password.alice", issuer.NewPassword)
	if err != nil {
		t.Fatal(err)
	}
	if err := s1.Set("issuer-listen", "127.0.0.1:4444"); err != nil {
		t.Fatal(err)
	}

	s2, err := issuer.OpenState(dir)
	if err != nil {
		t.Fatal(err)
	}
	key2, err := s2.Key()
	if err != nil {
		t.Fatal(err)
	}
	pw2, err := s2.Value("password.alice", func() (string, error) { return "a new one", nil })
	if err != nil {
		t.Fatal(err)
	}
	if !key1.Equal(key2) || pw1 != pw2 || s2.Get("issuer-listen") != "127.0.0.1:4444" {
		t.Fatalf("state changed across a restart: same key %v, passwords %q then %q, address %q", key1.Equal(key2), pw1, pw2, s2.Get("issuer-listen"))
	}

	paths := []string{dir}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		paths = append(paths, filepath.Join(dir, e.Name()))
	}
	if len(paths) != 3 {
		t.Fatalf("state dir holds %v, want the key and the values", paths)
	}
	for _, p := range paths {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm()&0o077 != 0 {
			t.Errorf("%s has mode %o: others can read it", p, fi.Mode().Perm())
		}
	}
}

// TestStateRefusesWhatOthersCanRead: a directory or file others can read
// is refused with the chmod that fixes it, not used.
func TestStateRefusesWhatOthersCanRead(t *testing.T) {
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := issuer.OpenState(dir); err == nil || !strings.Contains(err.Error(), "chmod 700") {
		t.Fatalf("OpenState on a 0755 directory = %v", err)
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	s, err := issuer.OpenState(dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Key(); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(filepath.Join(dir, "signing-key.pem"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Key(); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Fatalf("Key from a 0644 file = %v", err)
	}
}
