package server_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/trustchain/trustchain/adapters/httpapi/server"
	"github.com/trustchain/trustchain/adapters/httpapi/wire"
	"github.com/trustchain/trustchain/domain"
)

func TestHeaderTooLargeIs431(t *testing.T) {
	srv := startServer(t, newAPI(t, io.Discard), server.DefaultLimits(time.Second))
	req, _ := http.NewRequest(http.MethodGet, "http://"+srv.Addr()+"/products", nil)
	req.Header.Set("X-Big", strings.Repeat("a", 64<<10))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
		t.Fatalf("status = %d, want 431", resp.StatusCode)
	}
}

func TestWriteTimeoutFollowsTheBudget(t *testing.T) {
	for _, budget := range []time.Duration{time.Second, 8 * time.Second} {
		if got := server.DefaultLimits(budget).WriteTimeout; got <= budget {
			t.Errorf("budget %s: write timeout %s does not leave room to answer", budget, got)
		}
	}
}

func TestGracefulShutdownFinishesInFlight(t *testing.T) {
	entered := make(chan struct{})
	release := make(chan struct{})
	slow := sourceFuncs{list: func(ctx context.Context, req domain.PageRequest) (domain.Page, error) {
		close(entered)
		<-release
		return seedStore.ListProducts(ctx, req)
	}}
	srv, err := server.NewServer("api", "127.0.0.1:0", newAPI(t, io.Discard, withSource(slow)), server.DefaultLimits(time.Second), nil, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx, 10*time.Second) }()

	respc := make(chan int, 1)
	go func() {
		req, _ := http.NewRequest(http.MethodGet, "http://"+srv.Addr()+"/products", nil)
		req.Header.Set("Authorization", "Bearer "+goodToken)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			respc <- 0
			return
		}
		resp.Body.Close()
		respc <- resp.StatusCode
	}()
	<-entered
	stop() // SIGTERM arrives while the request is in flight
	time.Sleep(50 * time.Millisecond)
	if _, err := http.Get("http://" + srv.Addr() + "/products"); err == nil {
		t.Error("new connections are still accepted after shutdown began")
	}
	close(release)
	if code := <-respc; code != 200 {
		t.Fatalf("in-flight request got %d, want 200", code)
	}
	if err := <-done; err != nil {
		t.Fatalf("Run = %v, want clean exit", err)
	}
}

// TestIdleSocketsCannotStarveNewClients fills a capped server with idle
// keep-alive connections, each having sent one request, and checks that a
// new client is still served promptly.
func TestIdleSocketsCannotStarveNewClients(t *testing.T) {
	const maxConns = 20
	limits := server.DefaultLimits(time.Second)
	limits.MaxConns = maxConns
	srv := startServer(t, newAPI(t, io.Discard), limits)

	for i := range maxConns {
		c, err := net.Dial("tcp", srv.Addr())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		// One request each, answered, and then silence: an idle keep-alive.
		fmt.Fprintf(c, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatalf("idle connection %d: %v", i, err)
		}
		resp.Body.Close()
	}
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	start := time.Now()
	resp, err := client.Get("http://" + srv.Addr() + "/products")
	if err != nil {
		t.Fatalf("a new client was not served with %d idle connections open: %v", maxConns, err)
	}
	resp.Body.Close()
	if took := time.Since(start); took > 2*time.Second {
		t.Fatalf("the new client waited %v", took)
	}
}

func TestAdmin(t *testing.T) {
	mysqlDown := errors.New(`dial tcp 127.0.0.1:3306: connect: connection refused`)
	oidcWrong := errors.New(`issuer mismatch: discovery says "https://x/", configured "https://x"`)
	admin := server.NewAdmin(server.AdminConfig{
		Checks: map[string]server.ReadyCheck{
			"oidc":  func(context.Context) error { return oidcWrong },
			"mysql": func(context.Context) error { return mysqlDown },
		},
		Metrics: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte("metrics")) }),
	})
	if w := do(admin, http.MethodGet, wire.HealthzPath, ""); w.Code != 200 {
		t.Fatalf("healthz = %d", w.Code)
	}
	w := do(admin, http.MethodGet, wire.ReadyzPath, "")
	want := `{"status":"not ready","failed":{"mysql":"dial tcp 127.0.0.1:3306: connect: connection refused","oidc":"issuer mismatch: discovery says \"https://x/\", configured \"https://x\""}}`
	if w.Code != 503 || w.Body.String() != want+"\n" {
		t.Fatalf("readyz = %d %s\nwant 503 %s", w.Code, w.Body, want)
	}
	oidcWrong, mysqlDown = nil, nil
	if w := do(admin, http.MethodGet, wire.ReadyzPath, ""); w.Code != 200 || w.Body.String() != `{"status":"ready","checks":["mysql","oidc"]}`+"\n" {
		t.Fatalf("readyz = %d %s", w.Code, w.Body)
	}
	if w := do(admin, http.MethodGet, wire.MetricsPath, ""); w.Body.String() != "metrics" {
		t.Fatalf("metrics = %s", w.Body)
	}
	if w := do(admin, http.MethodGet, wire.PprofPath, ""); w.Code != 404 {
		t.Fatalf("pprof without --pprof = %d, want 404", w.Code)
	}
	admin.Drain()
	if w := do(admin, http.MethodGet, wire.ReadyzPath, ""); w.Code != 503 {
		t.Fatalf("readyz while draining = %d", w.Code)
	}
	if w := do(admin, http.MethodGet, wire.HealthzPath, ""); w.Code != 200 {
		t.Fatalf("healthz while draining = %d: the process is still alive", w.Code)
	}
}

func TestReadinessCausesAreBounded(t *testing.T) {
	admin := server.NewAdmin(server.AdminConfig{Checks: map[string]server.ReadyCheck{
		"mysql": func(context.Context) error { return errors.New(strings.Repeat("x", 10_000)) },
	}})
	if w := do(admin, http.MethodGet, wire.ReadyzPath, ""); w.Code != 503 || w.Body.Len() > 400 {
		t.Fatalf("readyz = %d with %d bytes", w.Code, w.Body.Len())
	}
}

func TestPprofOnlyWhenAsked(t *testing.T) {
	admin := server.NewAdmin(server.AdminConfig{Pprof: true})
	if w := do(admin, http.MethodGet, wire.PprofPath, ""); w.Code != 200 || !strings.Contains(w.Body.String(), "goroutine") {
		t.Fatalf("pprof index = %d", w.Code)
	}
	if w := do(newAPI(t, io.Discard), http.MethodGet, wire.PprofPath, ""); w.Code != 404 {
		t.Fatalf("the API port serves pprof: %d", w.Code)
	}
}
