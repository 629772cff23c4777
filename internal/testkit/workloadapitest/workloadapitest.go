// Package workloadapitest runs a minimal SPIFFE Workload API server for
// tests, standing in for a SPIRE agent: the go-spiffe client and the real
// gRPC protocol on one side, SVIDs from a test CA on the other.
package workloadapitest

import (
	"crypto/x509"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/proto/spiffe/workload"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"
	"google.golang.org/grpc"
)

// CA issues the SVIDs an agent offers; the dev CA is one.
type CA interface {
	Issue(id spiffeid.ID) (*x509svid.SVID, error)
	Bundle() *x509bundle.Bundle
}

// Agent is a minimal SPIFFE Workload API server on a unix socket, standing
// in for a SPIRE agent: it offers fresh SVIDs from ca for the IDs it is
// told, pushes every change to open streams, and can stop and come back.
type Agent struct {
	workload.UnimplementedSpiffeWorkloadAPIServer
	tb   testing.TB
	ca   CA
	sock string

	mu      sync.Mutex
	resp    *workload.X509SVIDResponse
	changed chan struct{} // closed on the next change
	server  *grpc.Server
}

// Start serves ids' SVIDs, in that order, until the test ends.
func Start(tb testing.TB, ca CA, ids ...spiffeid.ID) *Agent {
	tb.Helper()
	// Socket paths are limited to about 100 bytes; t.TempDir can exceed it.
	dir, err := os.MkdirTemp("", "wl")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { os.RemoveAll(dir) })
	a := &Agent{tb: tb, ca: ca, sock: filepath.Join(dir, "agent.sock"), changed: make(chan struct{})}
	a.Offer(ids...)
	a.Start()
	tb.Cleanup(a.Stop)
	return a
}

// Addr is the agent's address for --spiffe-socket.
func (a *Agent) Addr() string { return "unix://" + a.sock }

// Offer replaces the SVIDs on offer with new ones for ids, in that order.
func (a *Agent) Offer(ids ...spiffeid.ID) {
	a.tb.Helper()
	resp := &workload.X509SVIDResponse{}
	for _, id := range ids {
		svid, err := a.ca.Issue(id)
		if err != nil {
			a.tb.Fatal(err)
		}
		key, err := x509.MarshalPKCS8PrivateKey(svid.PrivateKey)
		if err != nil {
			a.tb.Fatal(err)
		}
		resp.Svids = append(resp.Svids, &workload.X509SVID{
			SpiffeId:    id.String(),
			X509Svid:    svid.Certificates[0].Raw,
			X509SvidKey: key,
			Bundle:      a.ca.Bundle().X509Authorities()[0].Raw,
		})
	}
	a.mu.Lock()
	a.resp = resp
	close(a.changed)
	a.changed = make(chan struct{})
	a.mu.Unlock()
}

// Start serves on the socket; Stop closes it and every stream, as an agent
// that goes away does. A restarted agent issues new SVIDs.
func (a *Agent) Start() {
	a.tb.Helper()
	_ = os.Remove(a.sock)
	ln, err := net.Listen("unix", a.sock)
	if err != nil {
		a.tb.Fatal(err)
	}
	server := grpc.NewServer()
	workload.RegisterSpiffeWorkloadAPIServer(server, a)
	a.mu.Lock()
	restarted := a.server != nil
	a.server = server
	a.mu.Unlock()
	if restarted {
		ids := a.offeredIDs()
		a.Offer(ids...)
	}
	go func() { _ = server.Serve(ln) }()
}

func (a *Agent) Stop() {
	a.mu.Lock()
	server := a.server
	a.mu.Unlock()
	server.Stop()
}

func (a *Agent) offeredIDs() []spiffeid.ID {
	a.mu.Lock()
	defer a.mu.Unlock()
	var ids []spiffeid.ID
	for _, s := range a.resp.Svids {
		ids = append(ids, spiffeid.RequireFromString(s.SpiffeId))
	}
	return ids
}

// FetchX509SVID sends what is on offer and every change, holding the
// stream open between them as an agent does between rotations.
func (a *Agent) FetchX509SVID(_ *workload.X509SVIDRequest, stream grpc.ServerStreamingServer[workload.X509SVIDResponse]) error {
	for {
		a.mu.Lock()
		resp, changed := a.resp, a.changed
		a.mu.Unlock()
		if err := stream.Send(resp); err != nil {
			return err
		}
		select {
		case <-changed:
		case <-stream.Context().Done():
			return nil
		}
	}
}
