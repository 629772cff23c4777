package app_test

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"

	"github.com/trustchain/trustchain/adapters/dev/spiffeca"
	"github.com/trustchain/trustchain/adapters/spiffetls"
	"github.com/trustchain/trustchain/app"
	"github.com/trustchain/trustchain/domain"
	"github.com/trustchain/trustchain/internal/testkit/logbuf"
	"github.com/trustchain/trustchain/internal/testkit/workloadapitest"
)

func roleSPIFFEID(t testing.TB, role domain.Role) spiffeid.ID {
	t.Helper()
	h, _ := domain.HopOf(role)
	id, err := spiffetls.ID("cluster.local", "default", h.ServiceAccount)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

var intruder = spiffeid.RequireFromString("spiffe://cluster.local/ns/default/sa/intruder")

// TestChainOverTheWorkloadAPIEachRolePicksItsOwnSVID gives every role an
// agent that offers several SVIDs, as overlapping registration entries do,
// the role's own last: each must present its own, or A's call would end in
// 502 at the first handshake.
func TestChainOverTheWorkloadAPIEachRolePicksItsOwnSVID(t *testing.T) {
	c := startChain(t, chainOptions{workloadAPI: func(ca *spiffeca.DevCA, role domain.Role) string {
		offered := []spiffeid.ID{intruder}
		for _, h := range domain.Chain() {
			if h.Role != role {
				offered = append(offered, roleSPIFFEID(t, h.Role))
			}
		}
		return workloadapitest.Start(t, ca, append(offered, roleSPIFFEID(t, role))...).Addr()
	}})
	if status, _, body := get(t, nil, c.url(roleA)+"/products", c.token(nil), nil); status != http.StatusOK {
		t.Fatalf("status %d through the chain, want 200: %s", status, body)
	}
	metrics := scrape(t, c, roleC)
	if want := `trustchain_svid_expiry_timestamp_seconds{role="c",spiffe_id="` + roleSPIFFEID(t, roleC).String() + `"}`; !strings.Contains(metrics, want) {
		t.Errorf("C's metrics lack %s", want)
	}
}

// TestRoleWithoutItsOwnSVIDIsNotReadyUntilItGetsOne starts C against an
// agent that offers only other workloads' SVIDs: it starts, reports not
// ready naming the ID it waits for, and becomes ready without a restart
// once the agent offers its own.
func TestRoleWithoutItsOwnSVIDIsNotReadyUntilItGetsOne(t *testing.T) {
	c := startChain(t, chainOptions{})
	ag := workloadapitest.Start(t, c.ca, intruder, roleSPIFFEID(t, roleA))
	logs := &logbuf.Buffer{}
	svc := startRoleC(t, c, logs, func(cfg *app.Config, _ *app.Deps) { cfg.SPIFFESocket = ag.Addr() })

	r := readyz(t, svc)
	if r.status != http.StatusServiceUnavailable || !strings.HasPrefix(r.Failed["svid"], "no SVID: waiting for spiffe://cluster.local/ns/default/sa/service-c from the Workload API, which offers: "+intruder.String()+", spiffe://cluster.local/ns/default/sa/service-a") {
		t.Fatalf("/readyz = %+v; want 503 naming the SVID C waits for and those on offer", r)
	}
	ag.Offer(intruder, roleSPIFFEID(t, roleC))
	if err := svc.WaitReady(context.Background(), 5*time.Second); err != nil {
		t.Fatalf("not ready after the agent offered C's own SVID: %v", err)
	}
	if n := strings.Count(logs.String(), "SVID cannot serve: not ready"); n != 1 {
		t.Errorf("not-ready state logged %d times, want once:\n%s", n, logs)
	}
}

// TestRoleHoldingABadSVIDIsNotReadyAndSaysWhy walks C through another
// workload's SVID, an SVID past its renewal deadline, an expired one and a
// good one, without a restart.
func TestRoleHoldingABadSVIDIsNotReadyAndSaysWhy(t *testing.T) {
	c := startChain(t, chainOptions{})
	// SVIDs of a CA with a 2s lifetime (backdated a minute) are past the
	// renewal deadline (a tenth of 62s left) as soon as they are issued.
	short, err := spiffeca.NewDevCA(spiffeid.RequireTrustDomainFromString("cluster.local"), 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	src := &switchSource{bundle: c.ca.Bundle()}
	src.set(issueSVID(t, c.ca, roleSPIFFEID(t, roleA)))
	svc := startRoleC(t, c, &logbuf.Buffer{}, func(_ *app.Config, deps *app.Deps) { deps.Identity = src })

	expectNotReady := func(want error, text string) {
		t.Helper()
		err := svc.Ready(context.Background())
		if !errors.Is(err, want) {
			t.Fatalf("Ready = %v, want %v", err, want)
		}
		if r := readyz(t, svc); r.status != http.StatusServiceUnavailable || !strings.Contains(r.Failed["svid"], text) {
			t.Fatalf("/readyz = %+v; want 503 with svid saying %q", r, text)
		}
	}
	expectNotReady(spiffetls.ErrNotOwnSVID, "holds spiffe://cluster.local/ns/default/sa/service-a, not its own spiffe://cluster.local/ns/default/sa/service-c")
	src.set(issueSVID(t, short, roleSPIFFEID(t, roleC)))
	expectNotReady(spiffetls.ErrSVIDRenewalLate, "less than a tenth of its lifetime left")
	time.Sleep(2100 * time.Millisecond)
	expectNotReady(spiffetls.ErrSVIDExpired, "expired at")
	src.set(issueSVID(t, c.ca, roleSPIFFEID(t, roleC)))
	if err := svc.Ready(context.Background()); err != nil {
		t.Fatalf("not ready with a good SVID: %v", err)
	}
}

// TestFilesWithAnotherWorkloadsSVIDAreRefusedAtStart names the flag.
func TestFilesWithAnotherWorkloadsSVIDAreRefusedAtStart(t *testing.T) {
	dir := t.TempDir()
	if _, err := spiffeca.WriteDevCerts(dir, "cluster.local", "default", []string{"service-a", "service-c"}, time.Hour); err != nil {
		t.Fatal(err)
	}
	cfg := app.Defaults()
	cfg.Role, cfg.PeerAuth = string(roleC), app.PeerAuthMTLS
	cfg.Listen, cfg.AdminListen = "127.0.0.1:0", "127.0.0.1:0"
	cfg.OIDCIssuer, cfg.OIDCAudience, cfg.Upstream = "https://issuer.test/", audience, "https://127.0.0.1:1"
	cfg.TLSCert, cfg.TLSKey, cfg.TLSBundle = dir+"/service-a.pem", dir+"/service-a-key.pem", dir+"/bundle.pem"
	_, err := app.New(context.Background(), cfg, app.Deps{Logger: slog.New(slog.DiscardHandler)})
	if !errors.Is(err, spiffetls.ErrNotOwnSVID) || !strings.HasPrefix(err.Error(), "--tls-cert: ") {
		t.Fatalf("New = %v; want --tls-cert: ... %v", err, spiffetls.ErrNotOwnSVID)
	}
}

// startRoleC runs a second C in front of the chain's B, adjusted by edit.
func startRoleC(t *testing.T, c *chain, logs *logbuf.Buffer, edit func(*app.Config, *app.Deps)) *app.Service {
	t.Helper()
	cfg := app.Defaults()
	cfg.Role, cfg.PeerAuth = string(roleC), app.PeerAuthMTLS
	cfg.Listen, cfg.AdminListen = "127.0.0.1:0", "127.0.0.1:0"
	cfg.OIDCIssuer, cfg.OIDCAudience = c.issuer.Issuer(), audience
	cfg.Upstream = c.url(roleB)
	deps := app.Deps{Logger: slog.New(slog.NewJSONHandler(logs, nil))}
	edit(&cfg, &deps)
	svc, err := app.New(context.Background(), cfg, deps)
	if err != nil {
		t.Fatal(err)
	}
	runService(t, svc)
	return svc
}

func issueSVID(t testing.TB, ca *spiffeca.DevCA, id spiffeid.ID) *x509svid.SVID {
	t.Helper()
	svid, err := ca.Issue(id)
	if err != nil {
		t.Fatal(err)
	}
	return svid
}

// switchSource serves the SVID the test sets, with a fixed bundle.
type switchSource struct {
	bundle *x509bundle.Bundle
	mu     sync.Mutex
	svid   *x509svid.SVID
}

func (s *switchSource) set(svid *x509svid.SVID) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.svid = svid
}

func (s *switchSource) GetX509SVID() (*x509svid.SVID, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.svid, nil
}

func (s *switchSource) GetX509BundleForTrustDomain(td spiffeid.TrustDomain) (*x509bundle.Bundle, error) {
	return s.bundle.GetX509BundleForTrustDomain(td)
}
