package xfcc_test

import (
	"errors"
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
)

// sidecarElement is the element C's sidecar appends for a caller with uri.
func sidecarElement(by spiffeid.ID, uri string) string {
	return "By=" + by.String() + ";Hash=4f6e;Subject=\"\";URI=" + uri
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
	c := xfcc.Authorizer{Allowed: []spiffeid.ID{serviceA}, Self: serviceC}
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
			name:    "Self unknown skips the By check",
			auth:    xfcc.Authorizer{Allowed: []spiffeid.ID{serviceA}},
			headers: []string{sidecarElement(serviceB, serviceA.String())},
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
			name:    "B calls C",
			auth:    c,
			headers: []string{sidecarElement(serviceC, serviceB.String())},
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
			name:    "element written for another workload",
			auth:    c,
			headers: []string{sidecarElement(serviceB, serviceA.String())},
			wantMsg: "not for this workload",
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
			wantMsg: "service-a",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.auth.Authorize(requestWith(t, tt.headers...))
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
// C's sidecar appends (and that element's Subject, quoted as Envoy does).
// Whatever it sends, access is granted only for the sidecar's URI and only
// when that URI is allowed.
func FuzzAuthorize(f *testing.F) {
	f.Add("", "", uint8(0))
	f.Add(sidecarElement(serviceC, serviceA.String()), "", uint8(1))
	f.Add(`Subject="open`, `CN=x";URI=`+serviceA.String(), uint8(1))
	f.Add(`Subject="open\`, `,URI=`+serviceA.String()+`,x=`, uint8(2))
	f.Add("URI="+serviceA.String()+";By="+serviceC.String(), "", uint8(2))
	uris := []string{serviceA.String(), serviceB.String(), "spiffe://evil.example/ns/default/sa/service-a", ""}
	auth := xfcc.Authorizer{Allowed: []spiffeid.ID{serviceA}, Self: serviceC}

	f.Fuzz(func(t *testing.T, prefix, subject string, pick uint8) {
		uri := uris[int(pick)%len(uris)]
		quoted := strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(subject)
		last := "By=" + serviceC.String() + ";Hash=4f6e;Subject=\"" + quoted + "\";URI=" + uri
		header := last
		if prefix != "" {
			header = prefix + "," + last
		}

		got, err := auth.Authorize(requestWith(t, header))
		if err != nil {
			if prefix == "" && uri == serviceA.String() {
				t.Fatalf("the sidecar's own element %q was refused: %v", header, err)
			}
			if !errors.Is(err, domain.ErrPeerForbidden) {
				t.Fatalf("refusal %v does not wrap ErrPeerForbidden", err)
			}
			return
		}
		if got.String() != uri || got != serviceA {
			t.Fatalf("header %q granted %s; the sidecar saw %q", header, got, uri)
		}
	})
}
