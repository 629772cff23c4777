package spiffetls_test

import (
	"context"
	"errors"
	"math/big"
	"net/http"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/spiffetls/tlsconfig"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"

	"github.com/trustchain/trustchain/adapters/dev/spiffeca"
	"github.com/trustchain/trustchain/adapters/spiffetls"
	"github.com/trustchain/trustchain/internal/testkit/workloadapitest"
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
			src, err := spiffetls.NewWorkloadSource(context.Background(), tt.addr, spiffetls.Workload{ID: serviceC})
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

	src, err := spiffetls.NewWorkloadSource(ctx, addr, spiffetls.Workload{ID: serviceC})
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
	ag := workloadapitest.Start(t, ca, serviceC)
	src := workloadSource(t, ag, serviceC)
	srv := startServer(t, src, serviceA)

	if got := presentedID(t, ca, srv); got != serviceC {
		t.Fatalf("server presented %s, want %s", got, serviceC)
	}
}

// TestWorkloadSourcePicksItsOwnSVID offers several SVIDs, as overlapping
// registration entries do, the workload's own never first: each role must
// present its own, and one whose own is not on offer has none and says
// which it waits for, until an update brings it.
func TestWorkloadSourcePicksItsOwnSVID(t *testing.T) {
	ca := newCA(t)
	ag := workloadapitest.Start(t, ca, serviceA, serviceC, serviceB)
	for _, own := range []spiffeid.ID{serviceB, serviceC} {
		t.Run(own.Path(), func(t *testing.T) {
			srv := startServer(t, workloadSource(t, ag, own), serviceA)
			if got := presentedID(t, ca, srv); got != own {
				t.Fatalf("server presented %s, want its own %s", got, own)
			}
		})
	}

	t.Run("own not offered, then offered", func(t *testing.T) {
		ag.Offer(serviceA, serviceC)
		src := workloadSource(t, ag, serviceB)
		svid, err := src.GetX509SVID()
		if !errors.Is(err, spiffetls.ErrNoSVID) {
			t.Fatalf("GetX509SVID = %v, %v; want ErrNoSVID", svid, err)
		}
		for _, want := range []string{serviceB.String(), serviceA.String() + ", " + serviceC.String()} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("error %q does not name %s", err, want)
			}
		}
		mon := spiffetls.NewMonitor(src, serviceB, spiffetls.MonitorHooks{}, nil)
		if err := mon.Check(context.Background()); !errors.Is(err, spiffetls.ErrNoSVID) {
			t.Fatalf("Check = %v, want ErrNoSVID", err)
		}

		ag.Offer(serviceC, serviceB)
		if !eventuallyWithin(5*time.Second, func() bool { return mon.Check(context.Background()) == nil }) {
			t.Fatalf("still not ready after the agent offered %s: %v", serviceB, mon.Check(context.Background()))
		}
	})
}

// TestWorkloadSourceRenewsPromptlyAfterAgentOutage stops the agent for long
// enough that the client libraries' default backoffs (go-spiffe's linear
// one to 30s, gRPC's reconnect one to 120s) would leave it waiting several
// seconds more, then brings it back with a new SVID: the source must hold
// it within a few seconds.
func TestWorkloadSourceRenewsPromptlyAfterAgentOutage(t *testing.T) {
	if testing.Short() {
		t.Skip("waits out a 20s agent outage")
	}
	ca := newCA(t)
	ag := workloadapitest.Start(t, ca, serviceC)
	var failures atomic.Int32
	src, err := spiffetls.NewWorkloadSource(t.Context(), ag.Addr(), spiffetls.Workload{
		ID: serviceC, RotationFailed: func(time.Time) { failures.Add(1) },
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = src.Close() })
	before := heldSerial(t, src)

	ag.Stop()
	time.Sleep(20 * time.Second)
	ag.Start()
	back := time.Now()
	if !eventuallyWithin(10*time.Second, func() bool { return heldSerial(t, src).Cmp(before) != 0 }) {
		t.Fatal("no new SVID 10s after the agent returned")
	}
	took := time.Since(back)
	t.Logf("new SVID %s after the agent returned; %d failed attempts during the outage", took.Round(10*time.Millisecond), failures.Load())
	if took > 3*time.Second {
		t.Errorf("new SVID only %s after the agent returned, want at most 3s", took)
	}
	if failures.Load() < 5 {
		t.Errorf("%d failed rotation attempts counted in a 20s outage, want one per retry", failures.Load())
	}
}

func heldSerial(tb testing.TB, src x509svid.Source) *big.Int {
	tb.Helper()
	svid, err := src.GetX509SVID()
	if err != nil {
		tb.Fatalf("GetX509SVID: %v", err)
	}
	return svid.Certificates[0].SerialNumber
}

func workloadSource(tb testing.TB, ag *workloadapitest.Agent, own spiffeid.ID) *spiffetls.WorkloadSource {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	src, err := spiffetls.NewWorkloadSource(ctx, ag.Addr(), spiffetls.Workload{ID: own})
	if err != nil {
		tb.Fatalf("NewWorkloadSource: %v", err)
	}
	tb.Cleanup(func() { _ = src.Close() })
	return src
}

// presentedID calls srv as service-a and returns the ID the server proved.
func presentedID(tb testing.TB, ca *spiffeca.DevCA, srv *peerServer) spiffeid.ID {
	tb.Helper()
	tr := &http.Transport{TLSClientConfig: tlsconfig.MTLSClientConfig(memorySource(tb, ca, serviceA), ca.Bundle(), tlsconfig.AuthorizeAny())}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr, Timeout: 5 * time.Second}).Get(srv.URL)
	if err != nil {
		tb.Fatalf("GET: %v", err)
	}
	resp.Body.Close()
	id, err := x509svid.IDFromCert(resp.TLS.PeerCertificates[0])
	if err != nil {
		tb.Fatal(err)
	}
	return id
}
