package xfcc_test

import (
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/trustchain/trustchain/adapters/xfcc"
	"github.com/trustchain/trustchain/domain"
)

var (
	serviceA = spiffeid.RequireFromString("spiffe://cluster.local/ns/default/sa/service-a")
	serviceB = spiffeid.RequireFromString("spiffe://cluster.local/ns/default/sa/service-b")
	serviceC = spiffeid.RequireFromString("spiffe://cluster.local/ns/default/sa/service-c")
	// Istio's waypoint runs as the service account named like its Gateway.
	waypoint = spiffeid.RequireFromString("spiffe://cluster.local/ns/default/sa/waypoint")
)

// sidecarElement is the element C's sidecar appends for a caller with uri.
func sidecarElement(by spiffeid.ID, uri string) string {
	return "By=" + by.String() + ";Hash=4f6e;Subject=\"\";URI=" + uri
}

// waypointElement is the one element an ambient waypoint annotated
// ambient.istio.io/xfcc-include-client-identity writes in place of any XFCC
// it received: its own SPIFFE ID and the caller's, nothing else (Istio
// pilot/pkg/xds/filters/filters.go, WaypointXFCCClientIdentityFilter).
func waypointElement(by spiffeid.ID, uri string) string {
	return "By=" + by.String() + ";URI=" + uri
}

func requestWith(tb testing.TB, headers ...string) *http.Request {
	tb.Helper()
	r := httptest.NewRequest(http.MethodGet, "/products", nil)
	for _, h := range headers {
		r.Header.Add(xfcc.HeaderName, h)
	}
	return r
}

func TestAuthorizerAuthorize(t *testing.T) {
	c := xfcc.Authorizer{Allowed: []spiffeid.ID{serviceA}, TrustedProxies: []spiffeid.ID{serviceC}}
	cBehindWaypoint := xfcc.Authorizer{Allowed: []spiffeid.ID{serviceA}, TrustedProxies: []spiffeid.ID{waypoint}}
	tests := []struct {
		name    string
		auth    xfcc.Authorizer
		headers []string
		want    spiffeid.ID
		// wantMsg is part of the refusal, so logs name what was presented.
		wantMsg string
	}{
		{
			name:    "A calls C",
			auth:    c,
			headers: []string{sidecarElement(serviceC, serviceA.String())},
			want:    serviceA,
		},
		{
			name:    "A calls C through the waypoint",
			auth:    cBehindWaypoint,
			headers: []string{waypointElement(waypoint, serviceA.String())},
			want:    serviceA,
		},
		{
			name:    "either trusted proxy, sidecar form",
			auth:    xfcc.Authorizer{Allowed: []spiffeid.ID{serviceA}, TrustedProxies: []spiffeid.ID{waypoint, serviceC}},
			headers: []string{sidecarElement(serviceC, serviceA.String())},
			want:    serviceA,
		},
		{
			name:    "either trusted proxy, waypoint form",
			auth:    xfcc.Authorizer{Allowed: []spiffeid.ID{serviceA}, TrustedProxies: []spiffeid.ID{waypoint, serviceC}},
			headers: []string{waypointElement(waypoint, serviceA.String())},
			want:    serviceA,
		},
		{
			name: "client-sent elements before the sidecar's are ignored",
			auth: c,
			headers: []string{
				sidecarElement(serviceC, "spiffe://evil.example/x") + "," + sidecarElement(serviceC, serviceA.String()),
			},
			want: serviceA,
		},
		{
			name: "a forged element before the waypoint's is ignored",
			auth: cBehindWaypoint,
			headers: []string{
				waypointElement(waypoint, serviceB.String()) + "," + waypointElement(waypoint, serviceA.String()),
			},
			want: serviceA,
		},
		{
			name:    "B calls C",
			auth:    c,
			headers: []string{sidecarElement(serviceC, serviceB.String())},
			wantMsg: `caller "spiffe://cluster.local/ns/default/sa/service-b"`,
		},
		{
			name:    "B calls C through the waypoint",
			auth:    cBehindWaypoint,
			headers: []string{waypointElement(waypoint, serviceB.String())},
			wantMsg: `caller "spiffe://cluster.local/ns/default/sa/service-b"`,
		},
		{
			name: "spoofed first element naming A does not help B",
			auth: c,
			headers: []string{
				sidecarElement(serviceC, serviceA.String()) + "," + sidecarElement(serviceC, serviceB.String()),
			},
			wantMsg: `caller "spiffe://cluster.local/ns/default/sa/service-b"`,
		},
		{
			name: "spoofed first element naming A does not help B behind the waypoint",
			auth: cBehindWaypoint,
			headers: []string{
				waypointElement(waypoint, serviceA.String()) + "," + waypointElement(waypoint, serviceB.String()),
			},
			wantMsg: `caller "spiffe://cluster.local/ns/default/sa/service-b"`,
		},
		{
			name: "spoofed first header line naming A does not help B",
			auth: c,
			headers: []string{
				sidecarElement(serviceC, serviceA.String()),
				sidecarElement(serviceC, serviceB.String()),
			},
			wantMsg: `service-b`,
		},
		{
			name:    "no header",
			auth:    c,
			wantMsg: "no XFCC header",
		},
		{
			name:    "no client certificate URI",
			auth:    c,
			headers: []string{"By=" + serviceC.String() + ";Hash=4f6e;URI="},
			wantMsg: "no client certificate",
		},
		{
			name:    "element written by the sidecar of another workload",
			auth:    c,
			headers: []string{sidecarElement(serviceB, serviceA.String())},
			wantMsg: `written by "spiffe://cluster.local/ns/default/sa/service-b", not by a trusted proxy`,
		},
		{
			name:    "sidecar element where only the waypoint is trusted",
			auth:    cBehindWaypoint,
			headers: []string{sidecarElement(serviceC, serviceA.String())},
			wantMsg: `written by "spiffe://cluster.local/ns/default/sa/service-c", not by a trusted proxy`,
		},
		{
			name:    "waypoint element where only the sidecar is trusted",
			auth:    c,
			headers: []string{waypointElement(waypoint, serviceA.String())},
			wantMsg: `written by "spiffe://cluster.local/ns/default/sa/waypoint", not by a trusted proxy`,
		},
		{
			name:    "another namespace's waypoint",
			auth:    cBehindWaypoint,
			headers: []string{waypointElement(spiffeid.RequireFromString("spiffe://cluster.local/ns/other/sa/waypoint"), serviceA.String())},
			wantMsg: "not by a trusted proxy",
		},
		{
			name:    "the trusted proxy's path in another trust domain",
			auth:    cBehindWaypoint,
			headers: []string{waypointElement(spiffeid.RequireFromString("spiffe://evil.example/ns/default/sa/waypoint"), serviceA.String())},
			wantMsg: "evil.example",
		},
		{
			name:    "no By",
			auth:    cBehindWaypoint,
			headers: []string{"URI=" + serviceA.String()},
			wantMsg: "proxy (By=) has 0 URIs",
		},
		{
			name:    "two By",
			auth:    cBehindWaypoint,
			headers: []string{"By=" + waypoint.String() + ";By=" + serviceC.String() + ";URI=" + serviceA.String()},
			wantMsg: "proxy (By=) has 2 URIs",
		},
		{
			name:    "By is not a SPIFFE ID",
			auth:    cBehindWaypoint,
			headers: []string{"By=https://cluster.local/ns/default/sa/waypoint;URI=" + serviceA.String()},
			wantMsg: "not a SPIFFE ID",
		},
		{
			name:    "no trusted proxy refuses everything",
			auth:    xfcc.Authorizer{Allowed: []spiffeid.ID{serviceA}},
			headers: []string{sidecarElement(serviceC, serviceA.String())},
			wantMsg: "not by a trusted proxy",
		},
		{
			name:    "no allowed caller refuses everything",
			auth:    xfcc.Authorizer{TrustedProxies: []spiffeid.ID{serviceC}},
			headers: []string{sidecarElement(serviceC, serviceA.String())},
			wantMsg: `caller "spiffe://cluster.local/ns/default/sa/service-a"`,
		},
		{
			name:    "URI is not a SPIFFE ID",
			auth:    c,
			headers: []string{sidecarElement(serviceC, "https://cluster.local/ns/default/sa/service-a")},
			wantMsg: "not a SPIFFE ID",
		},
		{
			name:    "allowed path in another trust domain",
			auth:    c,
			headers: []string{sidecarElement(serviceC, "spiffe://evil.example/ns/default/sa/service-a")},
			wantMsg: "evil.example",
		},
		{
			name:    "two URIs is not an SVID",
			auth:    c,
			headers: []string{sidecarElement(serviceC, serviceA.String()) + ";URI=spiffe://cluster.local/x"},
			wantMsg: "2 URIs",
		},
		{
			name:    "malformed header",
			auth:    c,
			headers: []string{`By=` + serviceC.String() + `;Subject="open;URI=` + serviceA.String()},
			wantMsg: "malformed",
		},
		{
			name:    "zero authorizer admits nobody",
			headers: []string{sidecarElement(serviceC, serviceA.String())},
			wantMsg: "not by a trusted proxy",
		},
		{
			name:    "zero authorizer admits nobody through a waypoint",
			headers: []string{waypointElement(waypoint, serviceA.String())},
			wantMsg: "not by a trusted proxy",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.auth.Authorize(requestWith(t, tt.headers...))
			// The API's peer check says the same, as text.
			if peer, checkErr := tt.auth.CheckPeer(requestWith(t, tt.headers...)); peer != got.String() || fmt.Sprint(checkErr) != fmt.Sprint(err) {
				t.Errorf("CheckPeer = %q, %v; Authorize = %s, %v", peer, checkErr, got, err)
			}
			if tt.wantMsg == "" {
				if err != nil {
					t.Fatalf("Authorize: %v", err)
				}
				if got != tt.want {
					t.Fatalf("Authorize = %s, want %s", got, tt.want)
				}
				return
			}
			if !errors.Is(err, domain.ErrPeerForbidden) {
				t.Fatalf("Authorize = %s, %v; want ErrPeerForbidden", got, err)
			}
			if !strings.Contains(err.Error(), tt.wantMsg) {
				t.Errorf("error %q does not mention %q", err, tt.wantMsg)
			}
			if !got.IsZero() {
				t.Errorf("refusal returned ID %s", got)
			}
		})
	}
}

// FuzzAuthorize plays a client that controls everything before the element
// the trusted proxy writes (and, in the sidecar's form, that element's
// Subject, quoted as Envoy does). pick chooses the URI the proxy saw and who
// wrote the last element: C's sidecar, the waypoint (both trusted), or B's
// sidecar (not trusted). Whatever the client sends, access is granted only
// for the trusted proxy's URI and only when that URI is allowed.
func FuzzAuthorize(f *testing.F) {
	f.Add("", "", uint8(0))
	f.Add(sidecarElement(serviceC, serviceA.String()), "", uint8(1))
	f.Add(`Subject="open`, `CN=x";URI=`+serviceA.String(), uint8(1))
	f.Add(`Subject="open\`, `,URI=`+serviceA.String()+`,x=`, uint8(2))
	f.Add("URI="+serviceA.String()+";By="+serviceC.String(), "", uint8(2))
	f.Add("", "", uint8(4))
	f.Add(waypointElement(waypoint, serviceA.String()), "", uint8(5))
	f.Add("", "", uint8(8))
	uris := []string{serviceA.String(), serviceB.String(), "spiffe://evil.example/ns/default/sa/service-a", ""}
	const (
		bySidecar = iota
		byWaypoint
		byUntrusted
		writers
	)
	auth := xfcc.Authorizer{Allowed: []spiffeid.ID{serviceA}, TrustedProxies: []spiffeid.ID{serviceC, waypoint}}

	f.Fuzz(func(t *testing.T, prefix, subject string, pick uint8) {
		uri := uris[int(pick)%len(uris)]
		writer := int(pick) / len(uris) % writers
		var last string
		switch writer {
		case bySidecar, byUntrusted:
			by := serviceC
			if writer == byUntrusted {
				by = serviceB
			}
			quoted := strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(subject)
			last = "By=" + by.String() + ";Hash=4f6e;Subject=\"" + quoted + "\";URI=" + uri
		case byWaypoint:
			last = waypointElement(waypoint, uri)
		}
		header := last
		if prefix != "" {
			header = prefix + "," + last
		}

		got, err := auth.Authorize(requestWith(t, header))
		if err != nil {
			if prefix == "" && uri == serviceA.String() && writer != byUntrusted {
				t.Fatalf("the trusted proxy's own element %q was refused: %v", header, err)
			}
			if !errors.Is(err, domain.ErrPeerForbidden) {
				t.Fatalf("refusal %v does not wrap ErrPeerForbidden", err)
			}
			return
		}
		if writer == byUntrusted {
			t.Fatalf("header %q granted %s, but its last element was written by an untrusted proxy", header, got)
		}
		if got.String() != uri || got != serviceA {
			t.Fatalf("header %q granted %s; the proxy saw %q", header, got, uri)
		}
	})
}
