package server_test

import (
	"context"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/trustchain/trustchain/adapters/httpapi/server"
	"github.com/trustchain/trustchain/domain"
	"github.com/trustchain/trustchain/internal/testkit/logbuf"
)

// TestTheRouteTableDrivesTheAPI: every route Routes names is served on GET,
// answers a JSON 405 with Allow to any other method, and is the route label
// of both; RouteOther comes last and only once.
func TestTheRouteTableDrivesTheAPI(t *testing.T) {
	names := server.Routes()
	if len(names) < 2 || names[len(names)-1] != server.RouteOther || slices.Index(names, server.RouteOther) != len(names)-1 {
		t.Fatalf("Routes() = %q, want the routes then %q once", names, server.RouteOther)
	}
	var observed []string
	h := newAPI(t, io.Discard, func(c *server.APIConfig) {
		c.Observe = func(_ context.Context, o server.Outcome) { observed = append(observed, o.Route) }
	})
	for _, name := range names[:len(names)-1] {
		path := strings.ReplaceAll(name, "{id}", "1")
		for _, tc := range []struct {
			method string
			want   int
		}{{http.MethodGet, http.StatusOK}, {http.MethodPost, http.StatusMethodNotAllowed}, {http.MethodDelete, http.StatusMethodNotAllowed}} {
			observed = nil
			w := do(h, tc.method, path, "Bearer "+goodToken)
			if w.Code != tc.want {
				t.Errorf("%s %s = %d, want %d: %s", tc.method, path, w.Code, tc.want, w.Body)
			}
			if tc.want == http.StatusMethodNotAllowed && (w.Header().Get("Allow") != "GET, HEAD" || errorBody(t, w.Body.String()).Error != "method_not_allowed") {
				t.Errorf("%s %s: Allow %q, body %s", tc.method, path, w.Header().Get("Allow"), w.Body)
			}
			if len(observed) != 1 || observed[0] != name {
				t.Errorf("%s %s observed as %q, want [%q]", tc.method, path, observed, name)
			}
		}
	}
}

// TestThePeerIsNamedOnEveryAnswer: the peer check is asked about every
// request, so every log line names the caller, 404s and 405s included; its
// refusal is acted on only where a route checks peers, as before the token.
func TestThePeerIsNamedOnEveryAnswer(t *testing.T) {
	const caller = "spiffe://cluster.local/ns/default/sa/service-a"
	var logs logbuf.Buffer
	refused := 0
	verdict := error(nil)
	h := newAPI(t, &logs, func(c *server.APIConfig) {
		c.Peer = peerFunc(func(*http.Request) (string, error) { return caller, verdict })
		c.OnPeerRefused = func() { refused++ }
	})
	for _, tc := range []struct {
		method, path string
		refuse       bool
		want         int
	}{
		{http.MethodGet, "/products", false, http.StatusOK},
		{http.MethodGet, "/nope", false, http.StatusNotFound},
		{http.MethodPost, "/products", false, http.StatusMethodNotAllowed},
		{http.MethodGet, "/products", true, http.StatusForbidden},
		{http.MethodGet, "/products/1", true, http.StatusForbidden},
		{http.MethodGet, "/nope", true, http.StatusNotFound},
		{http.MethodPost, "/products", true, http.StatusMethodNotAllowed},
	} {
		logs.Reset()
		verdict = nil
		if tc.refuse {
			verdict = domain.ErrPeerForbidden
		}
		before := refused
		w := do(h, tc.method, tc.path, "Bearer "+goodToken)
		if w.Code != tc.want {
			t.Errorf("%s %s (refuse %t) = %d, want %d", tc.method, tc.path, tc.refuse, w.Code, tc.want)
		}
		if wantRefused := tc.want == http.StatusForbidden; (refused != before) != wantRefused {
			t.Errorf("%s %s (refuse %t): refusal counted %d times", tc.method, tc.path, tc.refuse, refused-before)
		}
		if lines := logLines(t, logs.String()); len(lines) != 1 || lines[0]["peer"] != caller {
			t.Errorf("%s %s (refuse %t): log lines %v, want one naming %s", tc.method, tc.path, tc.refuse, lines, caller)
		}
	}
}
