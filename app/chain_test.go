package app_test

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/trustchain/trustchain/adapters/memory"
	"github.com/trustchain/trustchain/app"
	"github.com/trustchain/trustchain/domain"
	"github.com/trustchain/trustchain/internal/testkit/logbuf"
)

var seedResponse = regexp.MustCompile(`^\{"products":\[\{"id":1,"name":"Laptop","price":1000\}\],"serviceA_metadata":"request processed at (\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ)"\}\n$`)

func TestChainServesTheSeedResponse(t *testing.T) {
	for _, mode := range []string{app.PeerAuthMTLS, app.PeerAuthOff} {
		t.Run(mode, func(t *testing.T) {
			c := startChain(t, chainOptions{peerAuth: mode})
			before := time.Now().UTC().Truncate(time.Second)
			status, header, body := get(t, nil, c.url(roleA)+"/products", c.token(nil), nil)
			if status != 200 || header.Get("Content-Type") != "application/json" {
				t.Fatalf("status %d, body %s", status, body)
			}
			m := seedResponse.FindStringSubmatch(body)
			if m == nil {
				t.Fatalf("body is not the seed's shape:\n%s", body)
			}
			at, err := time.Parse(time.RFC3339, m[1])
			if err != nil || at.Before(before) || at.After(time.Now().UTC().Add(time.Second)) {
				t.Fatalf("serviceA_metadata time %s is not the processing time (%v)", m[1], err)
			}
		})
	}
}

// TestPagesAndProductsThroughTheChain follows the Link headers through A,
// C and B, and asks for single products, over mTLS.
func TestPagesAndProductsThroughTheChain(t *testing.T) {
	var catalogue []domain.Product
	for id := int64(1); id <= 25; id++ {
		p, err := domain.NewProduct(id*3, "Product", mustMoney(t, "1.5"))
		if err != nil {
			t.Fatal(err)
		}
		catalogue = append(catalogue, p)
	}
	c := startChain(t, chainOptions{source: memory.New(catalogue...)})
	tok := c.token(nil)

	var seen []int64
	next := "/products?limit=7"
	for pages := 0; next != ""; pages++ {
		if pages > 10 {
			t.Fatal("the links never end")
		}
		status, header, body := get(t, nil, c.url(roleA)+next, tok, nil)
		if status != 200 {
			t.Fatalf("GET %s: %d %s", next, status, body)
		}
		var env struct {
			Products []struct{ ID int64 } `json:"products"`
			Meta     string               `json:"serviceA_metadata"`
		}
		if err := json.Unmarshal([]byte(body), &env); err != nil || env.Meta == "" {
			t.Fatalf("page %s: %v", body, err)
		}
		for _, p := range env.Products {
			seen = append(seen, p.ID)
		}
		next = ""
		if link := header.Get("Link"); link != "" {
			m := regexp.MustCompile(`^<(/products\?after=\d+&limit=7)>; rel="next"$`).FindStringSubmatch(link)
			if m == nil {
				t.Fatalf("Link %q", link)
			}
			next = m[1]
		}
	}
	if len(seen) != len(catalogue) {
		t.Fatalf("walked %d products, want %d: %v", len(seen), len(catalogue), seen)
	}
	for i, id := range seen {
		if id != catalogue[i].ID() {
			t.Fatalf("product %d is id %d, want %d", i, id, catalogue[i].ID())
		}
	}

	status, _, body := get(t, nil, c.url(roleA)+"/products/21", tok, nil)
	if status != 200 || !regexp.MustCompile(`^\{"product":\{"id":21,"name":"Product","price":1.5\},"serviceA_metadata":"request processed at [^"]+"\}\n$`).MatchString(body) {
		t.Fatalf("one product: %d %s", status, body)
	}
	status, _, body = get(t, nil, c.url(roleA)+"/products/22", tok, nil)
	if status != 404 || !strings.Contains(body, `"error":"not_found"`) {
		t.Fatalf("an unknown product at A: %d %s, want B's 404 passed on", status, body)
	}
	status, _, body = get(t, nil, c.url(roleA)+"/products?limit=5000", tok, nil)
	if status != 400 || !strings.Contains(body, `"error":"invalid_request"`) {
		t.Fatalf("an oversized page: %d %s", status, body)
	}
	if n := strings.Count(c.logs[roleC].String(), `"status":400`); n != 0 {
		t.Error("a bad page request reached C: it must stop at the first hop")
	}
}

func mustMoney(tb testing.TB, s string) domain.Money {
	tb.Helper()
	m, err := domain.ParseMoney(s)
	if err != nil {
		tb.Fatal(err)
	}
	return m
}

func TestBadTokenStopsAtA(t *testing.T) {
	c := startChain(t, chainOptions{})
	bad := map[string]string{
		"expired":      c.token(func(m map[string]any) { m["exp"] = time.Now().Add(-time.Hour).Unix() }),
		"wrong aud":    c.token(func(m map[string]any) { m["aud"] = "https://other.api" }),
		"wrong iss":    c.token(func(m map[string]any) { m["iss"] = "https://evil.example/" }),
		"not a token":  "abc.def.ghi",
		"tampered sig": c.token(nil)[:40] + "x" + c.token(nil)[41:],
	}
	for name, tok := range bad {
		t.Run(name, func(t *testing.T) {
			status, header, body := get(t, nil, c.url(roleA)+"/products", tok, nil)
			if status != 401 || header.Get("WWW-Authenticate") != `Bearer error="invalid_token"` {
				t.Fatalf("%d %q %s", status, header.Get("WWW-Authenticate"), body)
			}
		})
	}
	if n := strings.Count(c.logs[roleC].String(), `"msg":"request"`); n != 0 {
		t.Fatalf("C saw %d requests; a bad token must stop at A", n)
	}
	status, header, _ := get(t, nil, c.url(roleA)+"/products", "", nil)
	if status != 401 || header.Get("WWW-Authenticate") != "Bearer" {
		t.Fatalf("missing token: %d %q", status, header.Get("WWW-Authenticate"))
	}
}

// TestEveryHopChecksTheToken calls C and B directly as the right workload,
// so only the token layer can refuse. Each call is made twice: the second
// meets the verified-token cache, which must not change a verdict.
func TestEveryHopChecksTheToken(t *testing.T) {
	c := startChain(t, chainOptions{})
	expired := c.token(func(m map[string]any) { m["exp"] = time.Now().Add(-time.Minute).Unix() })
	noScope := c.token(func(m map[string]any) { m["scope"] = "openid"; m["permissions"] = []string{} })
	good := c.token(nil)
	for callee, caller := range map[domain.Role]domain.Role{roleC: roleA, roleB: roleC} {
		client := c.clientAs(caller, callee)
		for range 2 {
			if status, h, _ := get(t, client, c.url(callee)+"/products", expired, nil); status != 401 || h.Get("WWW-Authenticate") != `Bearer error="invalid_token"` {
				t.Errorf("%s with an expired token: %d %q", callee, status, h.Get("WWW-Authenticate"))
			}
			if status, h, _ := get(t, client, c.url(callee)+"/products", noScope, nil); status != 403 || !strings.HasPrefix(h.Get("WWW-Authenticate"), `Bearer error="insufficient_scope"`) {
				t.Errorf("%s without the scope: %d %q", callee, status, h.Get("WWW-Authenticate"))
			}
			if status, _, body := get(t, client, c.url(callee)+"/products/1", noScope, nil); status != 403 {
				t.Errorf("%s one product without the scope: %d %s", callee, status, body)
			}
			if status, _, body := get(t, client, c.url(callee)+"/products", good, nil); status != 200 || !strings.HasPrefix(body, `[{"id":1`) {
				t.Errorf("%s with a good token from the right caller: %d %s", callee, status, body)
			}
		}
	}
}

// recordingSource remembers the credentials that reached B's store.
type recordingSource struct {
	*memory.Store
	mu    sync.Mutex
	creds []domain.Credentials
}

func (r *recordingSource) ListProducts(ctx context.Context, req domain.PageRequest) (domain.Page, error) {
	c, _ := domain.CredentialsFrom(ctx)
	r.mu.Lock()
	r.creds = append(r.creds, c)
	r.mu.Unlock()
	return r.Store.ListProducts(ctx, req)
}

func TestBSeesTheClientsTokenAndRequestID(t *testing.T) {
	src := &recordingSource{Store: memory.New(domain.SampleCatalogue()...)}
	c := startChain(t, chainOptions{source: src})
	tok := c.token(nil)
	status, header, body := get(t, nil, c.url(roleA)+"/products", tok, http.Header{"X-Request-Id": {"req-7f3a"}})
	if status != 200 || header.Get("X-Request-Id") != "req-7f3a" {
		t.Fatalf("%d %q %s", status, header.Get("X-Request-Id"), body)
	}
	if len(src.creds) != 1 || src.creds[0].Token() != tok || src.creds[0].RequestID() != "req-7f3a" {
		t.Fatalf("B received %d credentials; want exactly the client's token and request id", len(src.creds))
	}
	for _, h := range domain.Chain() {
		if !strings.Contains(c.logs[h.Role].String(), `"request_id":"req-7f3a"`) {
			t.Errorf("%s's log does not carry the request id", h.Role)
		}
	}
}

func TestUpstreamRejectionKeepsStatusAndScope(t *testing.T) {
	// B requires a scope that A and C do not: B's 403 reaches the client
	// with its status, code and challenge, in A's own words and with the
	// request id A gave it.
	c := startChain(t, chainOptions{configure: func(role domain.Role, cfg *app.Config) {
		if role == roleB {
			cfg.RequiredScope = "admin:products"
		}
	}})
	status, h, body := get(t, nil, c.url(roleA)+"/products", c.token(nil), nil)
	if status != 403 || h.Get("WWW-Authenticate") != `Bearer error="insufficient_scope", scope="admin:products"` {
		t.Fatalf("%d %q %s", status, h.Get("WWW-Authenticate"), body)
	}
	if !strings.Contains(body, `"error":"insufficient_scope","message":"the access token lacks the required scope"`) || !strings.Contains(body, `"request_id":"`+h.Get("X-Request-Id")+`"`) {
		t.Fatalf("body = %s", body)
	}
}

func TestUnreachableBGives502AtA(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := "http://" + ln.Addr().String()
	ln.Close()
	c := startChain(t, chainOptions{peerAuth: app.PeerAuthOff, configure: func(role domain.Role, cfg *app.Config) {
		switch role {
		case roleC:
			cfg.Upstream, cfg.UpstreamTimeout = closed, 2*time.Second
		case roleA:
			cfg.UpstreamTimeout = 3 * time.Second
		}
	}})
	start := time.Now()
	status, _, body := get(t, nil, c.url(roleA)+"/products", c.token(nil), nil)
	if status != 502 {
		t.Fatalf("status %d, want 502: %s", status, body)
	}
	if took := time.Since(start); took > 3*time.Second {
		t.Fatalf("took %s, beyond A's 3s budget", took)
	}
}

// blockingSource never answers until its caller gives up.
type blockingSource struct {
	*memory.Store
	entered   chan struct{}
	cancelled chan struct{}
	once      sync.Once
}

func newBlockingSource() *blockingSource {
	return &blockingSource{Store: memory.New(), entered: make(chan struct{}, 16), cancelled: make(chan struct{})}
}

// ListProducts waits for its caller to give up, then answers as the port
// says a store must.
func (b *blockingSource) ListProducts(ctx context.Context, _ domain.PageRequest) (domain.Page, error) {
	b.entered <- struct{}{}
	<-ctx.Done()
	b.once.Do(func() { close(b.cancelled) })
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return domain.Page{}, fmt.Errorf("%w: %w", domain.ErrSourceTimeout, ctx.Err())
	}
	return domain.Page{}, ctx.Err()
}

func TestSlowHopGives504AtA(t *testing.T) {
	tests := []struct {
		name               string
		timeoutA, timeoutC time.Duration
	}{
		{"C's budget runs out first", 2 * time.Second, 300 * time.Millisecond},
		{"A's budget covers a misconfigured C", 300 * time.Millisecond, 9 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := newBlockingSource()
			c := startChain(t, chainOptions{source: src, configure: func(role domain.Role, cfg *app.Config) {
				switch role {
				case roleA:
					cfg.UpstreamTimeout = tt.timeoutA
				case roleC:
					cfg.UpstreamTimeout = tt.timeoutC
				}
			}})
			status, _, body := get(t, nil, c.url(roleA)+"/products", c.token(nil), nil)
			if status != 504 {
				t.Fatalf("status %d, want 504: %s", status, body)
			}
			select {
			case <-src.cancelled:
			case <-time.After(5 * time.Second):
				t.Fatal("B's store call was not cancelled after the timeout")
			}
		})
	}
}

// TestSlowStoreIs504AtA: B's query budget runs out first; B answers 504,
// and C and A pass the timeout on as a 504, within A's budget.
func TestSlowStoreIs504AtA(t *testing.T) {
	src := newBlockingSource()
	c := startChain(t, chainOptions{source: src, configure: func(role domain.Role, cfg *app.Config) {
		if role == roleB {
			cfg.QueryTimeout = 200 * time.Millisecond
		}
	}})
	start := time.Now()
	status, _, body := get(t, nil, c.url(roleA)+"/products", c.token(nil), nil)
	if status != 504 || !strings.Contains(body, `"error":"upstream_timeout"`) {
		t.Fatalf("status %d, want 504: %s", status, body)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Fatalf("took %s", took)
	}
	if !strings.Contains(c.logs[roleB].String(), `"status":504`) || !strings.Contains(c.logs[roleB].String(), `"reason":"timeout"`) {
		t.Errorf("B did not answer 504 for its own timeout:\n%s", c.logs[roleB])
	}
}

// TestUnavailableStoreIs503WithRetryAfterAtA: B's store is down; the 503
// and its advice reach the client unchanged.
func TestUnavailableStoreIs503WithRetryAfterAtA(t *testing.T) {
	down := failingStore{fmt.Errorf("list: %w", domain.ErrSourceUnavailable)}
	c := startChain(t, chainOptions{source: down})
	status, header, body := get(t, nil, c.url(roleA)+"/products", c.token(nil), nil)
	if status != 503 || header.Get("Retry-After") == "" {
		t.Fatalf("status %d, Retry-After %q: %s", status, header.Get("Retry-After"), body)
	}
}

type failingStore struct{ err error }

func (f failingStore) ListProducts(context.Context, domain.PageRequest) (domain.Page, error) {
	return domain.Page{}, f.err
}

func (f failingStore) GetProduct(context.Context, int64) (domain.Product, error) {
	return domain.Product{}, f.err
}

func TestClientGoneCancelsTheChainDownToTheStore(t *testing.T) {
	src := newBlockingSource()
	c := startChain(t, chainOptions{source: src})
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, c.url(roleA)+"/products", nil)
	req.Header.Set("Authorization", "Bearer "+c.token(nil))
	go func() {
		<-src.entered
		cancel()
	}()
	if _, err := http.DefaultClient.Do(req); !errors.Is(err, context.Canceled) {
		t.Fatalf("client error = %v", err)
	}
	select {
	case <-src.cancelled:
	case <-time.After(5 * time.Second):
		t.Fatal("the store call at B outlived the client")
	}
}

func TestWorkloadIdentityMTLS(t *testing.T) {
	c := startChain(t, chainOptions{})
	tok := c.token(nil)
	tests := []struct {
		name           string
		caller, callee domain.Role
		allowed        bool
	}{
		{"A may call C", roleA, roleC, true},
		{"C may call B", roleC, roleB, true},
		{"B may not call C", roleB, roleC, false},
		{"A may not call B", roleA, roleB, false},
		{"C may not call C", roleC, roleC, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodGet, c.url(tt.callee)+"/products", nil)
			req.Header.Set("Authorization", "Bearer "+tok)
			resp, err := c.clientAs(tt.caller, tt.callee).Do(req)
			if tt.allowed {
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				if resp.StatusCode != 200 {
					t.Fatalf("status %d", resp.StatusCode)
				}
				return
			}
			if err == nil {
				resp.Body.Close()
				t.Fatalf("a valid token from the wrong workload got %d", resp.StatusCode)
			}
		})
	}
	t.Run("no client certificate", func(t *testing.T) {
		insecure := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
		for _, role := range []domain.Role{roleB, roleC} {
			req, _ := http.NewRequest(http.MethodGet, c.url(role)+"/products", nil)
			req.Header.Set("Authorization", "Bearer "+tok)
			if resp, err := insecure.Do(req); err == nil {
				resp.Body.Close()
				t.Fatalf("%s answered %d to a caller without a certificate", role, resp.StatusCode)
			}
		}
	})
	t.Run("plaintext", func(t *testing.T) {
		if resp, err := http.Get("http://" + c.svc(roleC).APIAddr() + "/products"); err == nil {
			defer resp.Body.Close()
			if resp.StatusCode == 200 {
				t.Fatal("C served plaintext HTTP")
			}
		}
	})
}

func TestWorkloadIdentityXFCC(t *testing.T) {
	// Only C sits behind a (simulated) proxy; A and B check no workload.
	c := startChain(t, chainOptions{peerAuth: app.PeerAuthOff, configure: func(role domain.Role, cfg *app.Config) {
		if role == roleC {
			cfg.PeerAuth = app.PeerAuthXFCC
		}
	}})
	tok := c.token(nil)
	xfcc := func(by, uri string) http.Header {
		return http.Header{"X-Forwarded-Client-Cert": {`By=spiffe://cluster.local/ns/default/sa/` + by + `;Hash=abc;URI=spiffe://cluster.local/ns/default/sa/` + uri}}
	}
	tests := []struct {
		name       string
		header     http.Header
		token      string
		wantStatus int
	}{
		{"A's identity, good token", xfcc("service-c", "service-a"), tok, 200},
		{"A's identity, bad token", xfcc("service-c", "service-a"), "bad.token.x", 401},
		{"B's identity, good token", xfcc("service-c", "service-b"), tok, 403},
		{"no header", nil, tok, 403},
		{"element written for another workload", xfcc("service-b", "service-a"), tok, 403},
		{"spoofed first element", http.Header{"X-Forwarded-Client-Cert": {
			`By=spiffe://cluster.local/ns/default/sa/service-c;URI=spiffe://cluster.local/ns/default/sa/service-a,` +
				`By=spiffe://cluster.local/ns/default/sa/service-c;URI=spiffe://cluster.local/ns/default/sa/service-b`}}, tok, 403},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, _, body := get(t, nil, c.url(roleC)+"/products", tt.token, tt.header)
			if status != tt.wantStatus {
				t.Fatalf("status %d, want %d: %s", status, tt.wantStatus, body)
			}
		})
	}
	if !strings.Contains(c.logs[roleC].String(), `caller \"spiffe://cluster.local/ns/default/sa/service-b\"`) {
		t.Error("the refusal log does not name the presented identity")
	}
}

func TestNoTokenInAnyLog(t *testing.T) {
	c := startChain(t, chainOptions{})
	good := c.token(nil)
	bad := c.token(func(m map[string]any) { m["aud"] = "x" })
	get(t, nil, c.url(roleA)+"/products", good, nil)
	get(t, nil, c.url(roleA)+"/products", bad, nil)
	for role, logs := range c.logs {
		out := logs.String()
		for _, tok := range []string{good, bad} {
			sig := tok[strings.LastIndexByte(tok, '.')+1:]
			if strings.Contains(out, sig) {
				t.Errorf("role %s logged a token", role)
			}
		}
	}
	var rejected int
	for _, line := range strings.Split(c.logs[roleA].String(), "\n") {
		if strings.Contains(line, `"status":401`) && strings.Contains(line, `"reason":"wrong_audience"`) {
			rejected++
		}
	}
	if rejected != 1 {
		t.Errorf("want one rejection line with its reason at A, got %d:\n%s", rejected, c.logs[roleA])
	}
}

func TestGatewayRefusesAnUpstreamWithTheWrongIdentity(t *testing.T) {
	c := startChain(t, chainOptions{})
	// A second A whose upstream is really B: B presents service-b where A
	// expects service-c, so A must not send it the user's token.
	cfg := app.Defaults()
	cfg.Role, cfg.PeerAuth = string(roleA), app.PeerAuthMTLS
	cfg.Listen, cfg.AdminListen = "127.0.0.1:0", "127.0.0.1:0"
	cfg.OIDCIssuer, cfg.OIDCAudience = c.issuer.Issuer(), audience
	cfg.Upstream = c.url(roleB)
	logs := &logbuf.Buffer{}
	svc, err := app.New(context.Background(), cfg, app.Deps{Identity: c.identity(roleA), Logger: slog.New(slog.NewJSONHandler(logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	runService(t, svc)
	if err := svc.WaitReady(context.Background(), 10*time.Second); err != nil {
		t.Fatal(err)
	}
	status, _, body := get(t, nil, "http://"+svc.APIAddr()+"/products", c.token(nil), nil)
	if status != 502 {
		t.Fatalf("status %d, want 502: %s", status, body)
	}
	if !strings.Contains(logs.String(), "service-b") {
		t.Errorf("the refusal does not name the identity B presented:\n%s", logs)
	}
}

// TestWorkloadIdentityXFCCBehindAWaypoint is ambient mode: the waypoint
// writes one element, By= itself, and only its By= counts.
func TestWorkloadIdentityXFCCBehindAWaypoint(t *testing.T) {
	const waypoint = "spiffe://cluster.local/ns/default/sa/waypoint"
	c := startChain(t, chainOptions{peerAuth: app.PeerAuthOff, configure: func(role domain.Role, cfg *app.Config) {
		if role == roleC {
			cfg.PeerAuth = app.PeerAuthXFCC
			cfg.XFCCTrustedProxies = []string{waypoint}
		}
	}})
	tok := c.token(nil)
	element := func(by, uri string) http.Header {
		return http.Header{"X-Forwarded-Client-Cert": {"By=" + by + ";URI=spiffe://cluster.local/ns/default/sa/" + uri}}
	}
	for _, tt := range []struct {
		name       string
		header     http.Header
		wantStatus int
	}{
		{"the waypoint vouches for A", element(waypoint, "service-a"), 200},
		{"the waypoint vouches for B", element(waypoint, "service-b"), 403},
		{"C's own sidecar is not trusted here", element("spiffe://cluster.local/ns/default/sa/service-c", "service-a"), 403},
		{"another proxy", element("spiffe://cluster.local/ns/default/sa/service-a", "service-a"), 403},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if status, _, body := get(t, nil, c.url(roleC)+"/products", tok, tt.header); status != tt.wantStatus {
				t.Fatalf("status %d, want %d: %s", status, tt.wantStatus, body)
			}
		})
	}
}
