package spiffetls_test

import (
	"crypto/tls"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"

	"github.com/trustchain/trustchain/adapters/dev/spiffeca"
	"github.com/trustchain/trustchain/adapters/spiffetls"
	"github.com/trustchain/trustchain/internal/testkit/logbuf"
)

const trustDomain = "cluster.local"

var (
	td       = spiffeid.RequireTrustDomainFromString(trustDomain)
	serviceA = spiffeid.RequireFromString("spiffe://cluster.local/ns/default/sa/service-a")
	serviceB = spiffeid.RequireFromString("spiffe://cluster.local/ns/default/sa/service-b")
	serviceC = spiffeid.RequireFromString("spiffe://cluster.local/ns/default/sa/service-c")
)

var _ spiffetls.Source = (*spiffeca.MemorySource)(nil)

func newCA(tb testing.TB) *spiffeca.DevCA {
	tb.Helper()
	ca, err := spiffeca.NewDevCA(td, time.Hour)
	if err != nil {
		tb.Fatalf("NewDevCA: %v", err)
	}
	return ca
}

func memorySource(tb testing.TB, ca *spiffeca.DevCA, id spiffeid.ID) *spiffeca.MemorySource {
	tb.Helper()
	src, err := ca.Source(id)
	if err != nil {
		tb.Fatalf("Source(%s): %v", id, err)
	}
	return src
}

// peerServer is an mTLS server whose handler answers with the caller's
// SPIFFE ID, as VerifiedPeer names it, and counts how often it ran.
type peerServer struct {
	URL    string
	served atomic.Int32
	log    *logbuf.Buffer

	mu       sync.Mutex
	refusals []spiffetls.Refusal
}

// refused returns the refusals the server's TLS hook reported so far.
func (ps *peerServer) refused() []spiffetls.Refusal {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	return slices.Clone(ps.refusals)
}

// startServer serves over ServerTLSConfig on loopback. It wraps the listener
// itself because httptest's StartTLS adds its own certificate, which
// crypto/tls prefers over GetCertificate when the client sends no SNI (as
// with 127.0.0.1), so the SVID would never be presented.
func startServer(tb testing.TB, src spiffetls.Source, allowed ...spiffeid.ID) *peerServer {
	tb.Helper()
	ps := &peerServer{log: &logbuf.Buffer{}}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ps.served.Add(1)
		// The API's peer check, over the handshake it relies on.
		id, err := spiffetls.VerifiedPeer{}.CheckPeer(r)
		if err != nil {
			http.Error(w, err.Error(), http.StatusForbidden)
			return
		}
		_, _ = w.Write([]byte(id))
	}))
	srv.Config.ErrorLog = log.New(ps.log, "", 0)
	srv.Listener = tls.NewListener(srv.Listener, spiffetls.ServerTLSConfig(src, allowed, func(r spiffetls.Refusal) {
		ps.mu.Lock()
		ps.refusals = append(ps.refusals, r)
		ps.mu.Unlock()
	}))
	srv.Start()
	tb.Cleanup(srv.Close)
	ps.URL = strings.Replace(srv.URL, "http://", "https://", 1)
	return ps
}

// mtlsClient calls expected with ClientTLSConfig. Keep-alives are off so
// every request is a new handshake, which is what rotation tests need.
func mtlsClient(tb testing.TB, src spiffetls.Source, expected spiffeid.ID) *http.Client {
	tb.Helper()
	tr := &http.Transport{
		TLSClientConfig:   spiffetls.ClientTLSConfig(src, expected),
		DisableKeepAlives: true,
	}
	tb.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 5 * time.Second}
}

// mixedSource presents one source's SVID and trusts another's bundles, to
// build a caller whose certificate comes from a CA the server does not trust.
type mixedSource struct {
	svid   x509svid.Source
	bundle x509bundle.Source
}

func (m mixedSource) GetX509SVID() (*x509svid.SVID, error) { return m.svid.GetX509SVID() }

func (m mixedSource) GetX509BundleForTrustDomain(td spiffeid.TrustDomain) (*x509bundle.Bundle, error) {
	return m.bundle.GetX509BundleForTrustDomain(td)
}

func listenLoopback(tb testing.TB) net.Listener {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("listen: %v", err)
	}
	return ln
}

func eventuallyWithin(d time.Duration, cond func() bool) bool {
	for deadline := time.Now().Add(d); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if cond() {
			return true
		}
	}
	return cond()
}
