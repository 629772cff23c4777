package spiffetls_test

import (
	"errors"
	"log/slog"
	"math/big"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"

	"github.com/trustchain/trustchain/adapters/dev/spiffeca"
	"github.com/trustchain/trustchain/adapters/spiffetls"
	"github.com/trustchain/trustchain/internal/testkit/logbuf"
)

func roleFiles(dir, sa string) spiffetls.Files {
	return spiffetls.Files{
		Cert:   filepath.Join(dir, sa+".pem"),
		Key:    filepath.Join(dir, sa+"-key.pem"),
		Bundle: filepath.Join(dir, "bundle.pem"),
	}
}

func writeDevCerts(tb testing.TB, dir string) {
	tb.Helper()
	if _, err := spiffeca.WriteDevCerts(dir, trustDomain, "default", []string{"service-a", "service-b", "service-c"}, time.Hour); err != nil {
		tb.Fatalf("WriteDevCerts: %v", err)
	}
}

// fileSource reloads on every handshake, so tests need not sleep.
func fileSource(tb testing.TB, files spiffetls.Files, id spiffeid.ID, log *slog.Logger) *spiffetls.FileSource {
	tb.Helper()
	src, err := spiffetls.NewFileSource(files, spiffetls.Workload{ID: id, Log: log})
	if err != nil {
		tb.Fatalf("NewFileSource: %v", err)
	}
	spiffetls.SetCheckInterval(src, 0)
	tb.Cleanup(func() { _ = src.Close() })
	return src
}

func fileSerial(tb testing.TB, files spiffetls.Files) *big.Int {
	tb.Helper()
	svid, err := x509svid.Load(files.Cert, files.Key)
	if err != nil {
		tb.Fatalf("load %s: %v", files.Cert, err)
	}
	return svid.Certificates[0].SerialNumber
}

// servedSerial makes a fresh connection and returns the serial of the
// certificate the server presented.
func servedSerial(tb testing.TB, client *http.Client, url string) *big.Int {
	tb.Helper()
	resp, err := client.Get(url)
	if err != nil {
		tb.Fatalf("GET: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		tb.Fatalf("status = %d", resp.StatusCode)
	}
	return resp.TLS.PeerCertificates[0].SerialNumber
}

func TestFileSourceRotatesWithoutRestart(t *testing.T) {
	t.Run("new SVID from the same CA, default check interval", func(t *testing.T) {
		ca := newCA(t)
		c := roleFiles(t.TempDir(), "service-c")
		writeSVID(t, ca, serviceC, c)
		src, err := spiffetls.NewFileSource(c, spiffetls.Workload{ID: serviceC})
		if err != nil {
			t.Fatal(err)
		}
		srv := startServer(t, src, serviceA)
		client := mtlsClient(t, memorySource(t, ca, serviceA), serviceC)

		first := fileSerial(t, c)
		if got := servedSerial(t, client, srv.URL); got.Cmp(first) != 0 {
			t.Fatalf("served serial %s, want %s from the files", got, first)
		}
		writeSVID(t, ca, serviceC, c)
		second := fileSerial(t, c)
		// The source looks at the disk at most once a second.
		if !eventuallyWithin(3*time.Second, func() bool { return servedSerial(t, client, srv.URL).Cmp(second) == 0 }) {
			t.Fatalf("still serving the old certificate 3s after rotation, want serial %s", second)
		}
	})

	t.Run("new CA on both sides", func(t *testing.T) {
		dir := t.TempDir()
		writeDevCerts(t, dir)
		c := roleFiles(dir, "service-c")
		srv := startServer(t, fileSource(t, c, serviceC, nil), serviceA)
		client := mtlsClient(t, fileSource(t, roleFiles(dir, "service-a"), serviceA, nil), serviceC)

		first := fileSerial(t, c)
		if got := servedSerial(t, client, srv.URL); got.Cmp(first) != 0 {
			t.Fatalf("served serial %s, want %s from the files", got, first)
		}
		// Every SVID and the bundle change. Both sides reload on each
		// handshake here; with the default interval a CA switch needs a
		// bundle that holds both CAs for a while.
		writeDevCerts(t, dir)
		second := fileSerial(t, c)
		if got := servedSerial(t, client, srv.URL); got.Cmp(second) != 0 {
			t.Fatalf("after rotation served serial %s, want the new %s", got, second)
		}
	})
}

func TestFileSourceKeepsLastGoodSVID(t *testing.T) {
	dir := t.TempDir()
	writeDevCerts(t, dir)
	c := roleFiles(dir, "service-c")
	logs := &logbuf.Buffer{}
	var failures atomic.Int32
	src, err := spiffetls.NewFileSource(c, spiffetls.Workload{ID: serviceC, Log: slog.New(slog.NewTextHandler(logs, nil)),
		RotationFailed: func(time.Time) { failures.Add(1) }})
	if err != nil {
		t.Fatal(err)
	}
	spiffetls.SetCheckInterval(src, 0)
	srv := startServer(t, src, serviceA)
	// A's files are never touched, so its source just keeps them.
	client := mtlsClient(t, fileSource(t, roleFiles(dir, "service-a"), serviceA, nil), serviceC)
	good := fileSerial(t, c)

	other := t.TempDir()
	writeDevCerts(t, other)
	// Each breakage builds on the one before, ending with a well-formed SVID
	// from a CA the bundle does not hold.
	breakages := []struct {
		name  string
		apply func(t *testing.T)
	}{
		{"garbage certificate", func(t *testing.T) { writeFile(t, c.Cert, []byte("not PEM")) }},
		{"certificate without its key", func(t *testing.T) { copyFile(t, roleFiles(other, "service-c").Cert, c.Cert) }},
		{"missing key", func(t *testing.T) { removeFile(t, c.Key) }},
		{"SVID from a CA the bundle does not hold", func(t *testing.T) {
			copyFile(t, roleFiles(other, "service-c").Key, c.Key)
		}},
		{"another workload's SVID from the same CA", func(t *testing.T) {
			copyFile(t, roleFiles(dir, "service-b").Cert, c.Cert)
			copyFile(t, roleFiles(dir, "service-b").Key, c.Key)
		}},
	}
	for _, b := range breakages {
		t.Run(b.name, func(t *testing.T) {
			logs.Reset()
			failed := failures.Load()
			b.apply(t)
			if got := servedSerial(t, client, srv.URL); got.Cmp(good) != 0 {
				t.Fatalf("served serial %s, want the last good %s", got, good)
			}
			if !strings.Contains(logs.String(), "keeping the previous SVID") {
				t.Errorf("failed reload not logged; logs: %q", logs.String())
			}
			if failures.Load() == failed {
				t.Error("failed reload not counted as a failed rotation")
			}
		})
	}
}

// writeSVID writes a fresh SVID for id and ca's bundle to files.
func writeSVID(tb testing.TB, ca *spiffeca.DevCA, id spiffeid.ID, files spiffetls.Files) {
	tb.Helper()
	svid, err := ca.Issue(id)
	if err != nil {
		tb.Fatal(err)
	}
	certPEM, keyPEM, err := svid.Marshal()
	if err != nil {
		tb.Fatal(err)
	}
	bundlePEM, err := ca.Bundle().Marshal()
	if err != nil {
		tb.Fatal(err)
	}
	writeFile(tb, files.Bundle, bundlePEM)
	writeFile(tb, files.Cert, certPEM)
	writeFile(tb, files.Key, keyPEM)
}

func TestNewFileSourceRejectsBadFiles(t *testing.T) {
	dir := t.TempDir()
	writeDevCerts(t, dir)
	other := t.TempDir()
	writeDevCerts(t, other)
	tests := []struct {
		name  string
		files spiffetls.Files
		want  error // nil: any error
	}{
		{"missing files", roleFiles(filepath.Join(dir, "nope"), "service-c"), nil},
		{"key of another SVID", spiffetls.Files{Cert: filepath.Join(dir, "service-c.pem"), Key: filepath.Join(dir, "service-a-key.pem"), Bundle: filepath.Join(dir, "bundle.pem")}, nil},
		{"bundle of another CA", spiffetls.Files{Cert: filepath.Join(dir, "service-c.pem"), Key: filepath.Join(dir, "service-c-key.pem"), Bundle: filepath.Join(other, "bundle.pem")}, nil},
		{"bundle is not PEM", spiffetls.Files{Cert: filepath.Join(dir, "service-c.pem"), Key: filepath.Join(dir, "service-c-key.pem"), Bundle: filepath.Join(dir, "service-c-key.pem")}, nil},
		{"another workload's SVID", roleFiles(dir, "service-a"), spiffetls.ErrNotOwnSVID},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src, err := spiffetls.NewFileSource(tt.files, spiffetls.Workload{ID: serviceC})
			if err == nil {
				src.Close()
				t.Fatal("NewFileSource succeeded")
			}
			if tt.want != nil && !errors.Is(err, tt.want) {
				t.Fatalf("error %v, want %v", err, tt.want)
			}
		})
	}
}

func writeFile(tb testing.TB, path string, data []byte) {
	tb.Helper()
	if err := os.WriteFile(path, data, 0o600); err != nil {
		tb.Fatal(err)
	}
}

func copyFile(tb testing.TB, from, to string) {
	tb.Helper()
	data, err := os.ReadFile(from)
	if err != nil {
		tb.Fatal(err)
	}
	writeFile(tb, to, data)
}

func removeFile(tb testing.TB, path string) {
	tb.Helper()
	if err := os.Remove(path); err != nil {
		tb.Fatal(err)
	}
}
