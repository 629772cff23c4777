package server_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/trustchain/trustchain/adapters/httpapi/server"
	"github.com/trustchain/trustchain/adapters/httpapi/wire"
)

// flood opens n TCP connections to addr that never send a byte.
func flood(tb testing.TB, addr string, n int) {
	tb.Helper()
	var wg sync.WaitGroup
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := net.DialTimeout("tcp", addr, 5*time.Second)
			if err != nil {
				return // the kernel's queue may refuse some; the rest still flood
			}
			tb.Cleanup(func() { c.Close() })
		}()
	}
	wg.Wait()
}

// answeredWithin counts the GETs of url, each on a new connection, that
// get a 200 within limit.
func answeredWithin(url, auth string, n int, limit time.Duration) int {
	n, _ = answeredWithinErr(url, auth, n, limit)
	return n
}

// answeredWithinErr is answeredWithin with the last error a request met.
func answeredWithinErr(url, auth string, n int, limit time.Duration) (int, error) {
	var lastErr error
	client := &http.Client{Timeout: limit, Transport: &http.Transport{DisableKeepAlives: true}}
	ok := 0
	for range n {
		req, _ := http.NewRequest(http.MethodGet, url, nil)
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		resp, err := client.Do(req)
		if err != nil {
			lastErr = err
			continue
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			ok++
		} else {
			lastErr = fmt.Errorf("status %d", resp.StatusCode)
		}
	}
	return ok, lastErr
}

// TestSilentConnectionsGoFirstOnTheAPIPort: a capped API port full of
// connections that never speak still serves new clients within a second,
// closes the silent ones, and never closes one that is serving a request.
func TestSilentConnectionsGoFirstOnTheAPIPort(t *testing.T) {
	var silentClosed atomic.Int64
	src := newBlockingSource(7)
	limits := server.DefaultLimits(time.Second)
	limits.MaxConns = 32
	limits.OnSilentClosed = func() { silentClosed.Add(1) }
	srv := startServer(t, newAPI(t, io.Discard, withSource(src)), limits)
	url := "http://" + srv.Addr()

	active := make(chan error, 1)
	go func() {
		_, err := answeredWithinErr(url+"/products?limit=7", "Bearer "+goodToken, 1, 30*time.Second)
		active <- err
	}()
	<-src.arrived

	flood(t, srv.Addr(), 200)
	if got := answeredWithin(url+"/products", "Bearer "+goodToken, 10, time.Second); got < 10 {
		t.Errorf("%d of 10 new clients were served within 1s behind 200 silent connections", got)
	}
	if silentClosed.Load() == 0 {
		t.Error("no connection was counted as closed for silence")
	}
	close(src.release)
	if err := <-active; err != nil {
		t.Errorf("the request in flight was cut off to make room: %v", err)
	}
}

// TestProbesGetThroughASilentFlood: the admin port, capped at 64, answers
// /healthz within a second behind a flood of connections that never speak.
func TestProbesGetThroughASilentFlood(t *testing.T) {
	admin := server.NewAdmin(server.AdminConfig{})
	limits := server.DefaultLimits(0)
	limits.MaxConns = 64
	srv, err := server.NewServer("admin", "127.0.0.1:0", admin, limits, nil, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = srv.Run(ctx, time.Second); close(done) }()
	t.Cleanup(func() { cancel(); <-done })

	flood(t, srv.Addr(), 1000)
	if got := answeredWithin("http://"+srv.Addr()+wire.HealthzPath, "", 10, time.Second); got < 9 {
		t.Errorf("%d of 10 probes answered within 1s behind 1000 silent connections", got)
	}
	if _, open, _ := srv.Connections(); open > limits.MaxConns {
		t.Errorf("%d connections open, over the cap of %d", open, limits.MaxConns)
	}
}
