package spiffetls_test

import (
	"crypto/tls"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/trustchain/trustchain/adapters/spiffetls"
	"github.com/trustchain/trustchain/domain"
)

func TestServerAdmitsOnlyTheAllowedCaller(t *testing.T) {
	ca := newCA(t)
	foreign := newCA(t) // same trust domain name, different keys
	tests := []struct {
		name    string
		server  spiffeid.ID
		allowed spiffeid.ID
		caller  spiffetls.Source
		// wantRefused is the SPIFFE ID the refused caller claimed; empty
		// means the call must succeed.
		wantRefused string
		wantCause   string
	}{
		{name: "C accepts A", server: serviceC, allowed: serviceA, caller: memorySource(t, ca, serviceA)},
		{name: "B accepts C", server: serviceB, allowed: serviceC, caller: memorySource(t, ca, serviceC)},
		{
			name: "C refuses B", server: serviceC, allowed: serviceA, caller: memorySource(t, ca, serviceB),
			wantRefused: serviceB.String(), wantCause: "unexpected ID",
		},
		{
			name: "B refuses A", server: serviceB, allowed: serviceC, caller: memorySource(t, ca, serviceA),
			wantRefused: serviceA.String(), wantCause: "unexpected ID",
		},
		{
			name: "C refuses a service-a SVID from another CA", server: serviceC, allowed: serviceA,
			caller:      memorySource(t, foreign, serviceA),
			wantRefused: serviceA.String(), wantCause: "could not verify leaf certificate",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := startServer(t, memorySource(t, ca, tt.server), tt.allowed)
			// The foreign caller trusts the real server, so only the
			// server's check can stop it.
			client := mtlsClient(t, mixedSource{svid: tt.caller, bundle: memorySource(t, ca, tt.allowed)}, tt.server)

			resp, err := client.Get(srv.URL)
			if tt.wantRefused == "" {
				if err != nil {
					t.Fatalf("GET: %v", err)
				}
				defer resp.Body.Close()
				body, _ := io.ReadAll(resp.Body)
				if resp.StatusCode != http.StatusOK || string(body) != tt.allowed.String() {
					t.Fatalf("GET = %d %q, want 200 %q", resp.StatusCode, body, tt.allowed)
				}
				if r := srv.refused(); len(r) != 0 {
					t.Fatalf("an admitted caller was reported refused: %v", r)
				}
				return
			}
			if err == nil {
				resp.Body.Close()
				t.Fatalf("GET succeeded with status %d", resp.StatusCode)
			}
			if n := srv.served.Load(); n != 0 {
				t.Errorf("handler ran %d times", n)
			}
			refusals := srv.refused()
			if len(refusals) != 1 {
				t.Fatalf("the TLS hook reported %d refusals, want exactly 1: %v", len(refusals), refusals)
			}
			r := refusals[0]
			if r.Peer != tt.wantRefused || !errors.Is(r.Err, domain.ErrPeerForbidden) || !strings.Contains(r.Err.Error(), tt.wantCause) {
				t.Errorf("refusal = %q, %v; want %q, a forbidden peer, because %q", r.Peer, r.Err, tt.wantRefused, tt.wantCause)
			}
		})
	}
}

func TestServerRefusesPlaintext(t *testing.T) {
	ca := newCA(t)
	srv := startServer(t, memorySource(t, ca, serviceC), serviceA)

	resp, err := http.Get(strings.Replace(srv.URL, "https://", "http://", 1))
	if err == nil {
		resp.Body.Close()
		// net/http answers an HTTP request on a TLS port with a canned 400.
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("plaintext GET = %d, want an error or 400", resp.StatusCode)
		}
	}
	if n := srv.served.Load(); n != 0 {
		t.Errorf("handler ran %d times for plaintext", n)
	}
}

func TestServerRefusesClientWithoutCertificate(t *testing.T) {
	ca := newCA(t)
	srv := startServer(t, memorySource(t, ca, serviceC), serviceA)
	client := &http.Client{
		Timeout: 5 * time.Second,
		Transport: &http.Transport{
			// This client would talk to anyone; only the server's demand
			// for a certificate can stop it.
			TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, //nolint:gosec // the point of the test
		},
	}

	resp, err := client.Get(srv.URL)
	if err == nil {
		resp.Body.Close()
		t.Fatalf("GET without a client certificate = %d, want a handshake error", resp.StatusCode)
	}
	if n := srv.served.Load(); n != 0 {
		t.Errorf("handler ran %d times", n)
	}
	// The hook sees callers with no certificate too, so they are counted.
	if r := srv.refused(); len(r) != 1 || r[0].Peer != "" || !errors.Is(r[0].Err, domain.ErrPeerForbidden) {
		t.Errorf("refusals = %v, want one with no peer", r)
	}
}

func TestClientRefusesUnexpectedServer(t *testing.T) {
	ca := newCA(t)
	tests := []struct {
		name    string
		start   func(t *testing.T) (url string, served func() int32)
		wantErr string
	}{
		{
			name: "B pretending to be C",
			start: func(t *testing.T) (string, func() int32) {
				srv := startServer(t, memorySource(t, ca, serviceB), serviceA)
				return srv.URL, srv.served.Load
			},
			wantErr: `unexpected ID "spiffe://cluster.local/ns/default/sa/service-b"`,
		},
		{
			name: "C's name from another CA",
			start: func(t *testing.T) (string, func() int32) {
				srv := startServer(t, memorySource(t, newCA(t), serviceC), serviceA)
				return srv.URL, srv.served.Load
			},
			wantErr: "could not verify leaf certificate",
		},
		{
			name: "an ordinary web certificate",
			start: func(t *testing.T) (string, func() int32) {
				srv := httptest.NewTLSServer(http.NotFoundHandler())
				t.Cleanup(srv.Close)
				return srv.URL, func() int32 { return 0 }
			},
			wantErr: "could not get leaf SPIFFE ID",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			url, served := tt.start(t)
			client := mtlsClient(t, memorySource(t, ca, serviceA), serviceC)

			resp, err := client.Get(url)
			if err == nil {
				resp.Body.Close()
				t.Fatalf("GET succeeded with status %d", resp.StatusCode)
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("error %q does not contain %q", err, tt.wantErr)
			}
			if n := served(); n != 0 {
				t.Errorf("server handler ran %d times", n)
			}
		})
	}
}

// TestServeTLSWiring runs the config the way the binary does, through
// http.Server.ServeTLS with no certificate files.
func TestServeTLSWiring(t *testing.T) {
	ca := newCA(t)
	srv := &http.Server{
		Handler:           http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) }),
		TLSConfig:         spiffetls.ServerTLSConfig(memorySource(t, ca, serviceC), []spiffeid.ID{serviceA}, nil),
		ReadHeaderTimeout: 5 * time.Second,
	}
	ln := listenLoopback(t)
	done := make(chan error, 1)
	go func() { done <- srv.ServeTLS(ln, "", "") }()
	t.Cleanup(func() {
		srv.Close()
		if err := <-done; err != http.ErrServerClosed {
			t.Errorf("ServeTLS: %v", err)
		}
	})

	client := mtlsClient(t, memorySource(t, ca, serviceA), serviceC)
	// A client that would resume sessions if offered tickets.
	client.Transport.(*http.Transport).TLSClientConfig.ClientSessionCache = tls.NewLRUClientSessionCache(4)
	for i := range 2 {
		resp, err := client.Get("https://" + ln.Addr().String())
		if err != nil {
			t.Fatalf("GET %d: %v", i, err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusNoContent {
			t.Fatalf("GET %d: status = %d, want 204", i, resp.StatusCode)
		}
		if resp.TLS.DidResume {
			t.Fatalf("GET %d resumed a session, skipping the SPIFFE check", i)
		}
	}
}
