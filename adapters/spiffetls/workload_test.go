package spiffetls_test

import (
	"context"
	"crypto/x509"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/proto/spiffe/workload"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"
	"google.golang.org/grpc"

	"github.com/trustchain/trustchain/adapters/dev/spiffeca"
	"github.com/trustchain/trustchain/adapters/spiffetls"
)

func TestNewWorkloadSourceRejectsBadAddress(t *testing.T) {
	tests := []struct {
		name string
		addr string
	}{
		{"empty", ""},
		{"not a URL", "::not a url"},
		{"unsupported scheme", "http://127.0.0.1:8081"},
		{"unix without a path", "unix://"},
		{"tcp with a host name", "tcp://localhost:8081"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// No deadline: a bad address must fail at once, not hang.
			src, err := spiffetls.NewWorkloadSource(context.Background(), tt.addr)
			if err == nil {
				src.Close()
				t.Fatal("NewWorkloadSource succeeded")
			}
			if !strings.Contains(err.Error(), "workload API address") {
				t.Errorf("error %q does not say the address is at fault", err)
			}
		})
	}
}

func TestNewWorkloadSourceGivesUpWithContext(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	addr := "unix://" + filepath.Join(t.TempDir(), "missing.sock")

	src, err := spiffetls.NewWorkloadSource(ctx, addr)
	if err == nil {
		src.Close()
		t.Fatal("NewWorkloadSource succeeded without an agent")
	}
	if !strings.Contains(err.Error(), addr) {
		t.Errorf("error %q does not name %s", err, addr)
	}
}

// TestWorkloadSourceServesMTLS stands in for a SPIRE agent with a minimal
// Workload API server and runs C's server on what it hands out.
func TestWorkloadSourceServesMTLS(t *testing.T) {
	ca := newCA(t)
	addr := fakeWorkloadAPI(t, ca)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()

	src, err := spiffetls.NewWorkloadSource(ctx, addr)
	if err != nil {
		t.Fatalf("NewWorkloadSource: %v", err)
	}
	t.Cleanup(func() { _ = src.Close() })
	srv := startServer(t, src, serviceA)

	resp, err := mtlsClient(t, memorySource(t, ca, serviceA), serviceC).Get(srv.URL)
	if err != nil {
		t.Fatalf("GET: %v", err)
	}
	resp.Body.Close()
	if id, err := x509svid.IDFromCert(resp.TLS.PeerCertificates[0]); err != nil || id != serviceC {
		t.Fatalf("server presented %s (%v), want %s", id, err, serviceC)
	}
}

// fakeWorkloadAPI serves one X509-SVID for service-c over a unix socket and
// returns its address.
func fakeWorkloadAPI(tb testing.TB, ca *spiffeca.DevCA) string {
	tb.Helper()
	svid, err := ca.Issue(serviceC)
	if err != nil {
		tb.Fatal(err)
	}
	key, err := x509.MarshalPKCS8PrivateKey(svid.PrivateKey)
	if err != nil {
		tb.Fatal(err)
	}
	resp := &workload.X509SVIDResponse{Svids: []*workload.X509SVID{{
		SpiffeId:    serviceC.String(),
		X509Svid:    svid.Certificates[0].Raw,
		X509SvidKey: key,
		Bundle:      ca.Bundle().X509Authorities()[0].Raw,
	}}}

	// Socket paths are limited to about 100 bytes; t.TempDir can exceed it.
	dir, err := os.MkdirTemp("", "wl")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { os.RemoveAll(dir) })
	sock := filepath.Join(dir, "agent.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		tb.Fatal(err)
	}
	server := grpc.NewServer()
	workload.RegisterSpiffeWorkloadAPIServer(server, &fakeAgent{resp: resp})
	go func() { _ = server.Serve(ln) }()
	tb.Cleanup(server.Stop)
	return "unix://" + sock
}

type fakeAgent struct {
	workload.UnimplementedSpiffeWorkloadAPIServer
	resp *workload.X509SVIDResponse
}

// FetchX509SVID sends the SVID and then holds the stream open, as an agent
// does between rotations.
func (a *fakeAgent) FetchX509SVID(_ *workload.X509SVIDRequest, stream grpc.ServerStreamingServer[workload.X509SVIDResponse]) error {
	if err := stream.Send(a.resp); err != nil {
		return err
	}
	<-stream.Context().Done()
	return nil
}
