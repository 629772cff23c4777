package app_test

import (
	"io"
	"log/slog"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/trustchain/trustchain/adapters/memory"
	"github.com/trustchain/trustchain/app"
	"github.com/trustchain/trustchain/domain"
	"github.com/trustchain/trustchain/internal/testkit/dpoptest"
)

// BenchmarkChain is a load run over loopback: parallel clients call A, and
// each request is verified three times and crosses two hops to the
// in-memory store. Its allocations per request are the number to watch:
//
//	go test -run '^$' -bench 'Chain$' -benchtime 2000x ./app
func BenchmarkChain(b *testing.B) {
	for _, mode := range []string{app.PeerAuthOff, app.PeerAuthMTLS} {
		b.Run("peer-auth="+mode, func(b *testing.B) {
			c := startChain(b, chainOptions{peerAuth: mode})
			token := c.token(nil)
			url := c.url(roleA) + "/products"
			client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if err := getOK(client, url, token); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}

// BenchmarkSideBySide puts the same load through trustchain and through a
// bare chain of the same shape (bare_test.go: three hops, the same store,
// no checks at all) in one run, and reports each as requests per second,
// p50 and p99 latency, and CPU per request. Both run in this process with
// their clients, so the CPU figure covers client and three hops alike.
// trustchain runs as the shared bench runs it: peer auth off, logs at
// warn. DPoP on against off is trustchain-mtls-dpop against
// trustchain-mtls: an inner hop takes a bound token only from a caller
// proved by workload identity, so both run with native mTLS; with DPoP,
// the token is bound and each request carries a fresh proof (made before
// the clock starts, as a client would have made it: the figures are the
// chain's). Read the ratios between the runs; absolute figures depend on
// the machine and whatever else it is doing:
//
//	go test -run '^$' -bench SideBySide -benchtime 20000x -count 3 ./app
func BenchmarkSideBySide(b *testing.B) {
	store := memory.New(domain.SampleCatalogue()...)
	quiet := chainOptions{peerAuth: app.PeerAuthOff, source: store, quiet: true, logLevel: slog.LevelWarn}
	withMTLS := quiet
	withMTLS.peerAuth = app.PeerAuthMTLS
	chains := []struct {
		name  string
		start func(b *testing.B) (url, token string, proofs func(n int) []string)
	}{
		{"trustchain", func(b *testing.B) (string, string, func(int) []string) {
			c := startChain(b, quiet)
			return c.url(roleA) + "/products", c.token(nil), nil
		}},
		{"trustchain-mtls", func(b *testing.B) (string, string, func(int) []string) {
			c := startChain(b, withMTLS)
			return c.url(roleA) + "/products", c.token(nil), nil
		}},
		{"trustchain-mtls-dpop", func(b *testing.B) (string, string, func(int) []string) {
			c := startChain(b, withMTLS)
			key := dpoptest.NewKey(b)
			url, token := c.url(roleA)+"/products", c.boundToken(b, dpoptest.Thumbprint(b, key))
			return url, token, func(n int) []string {
				proofs := make([]string, n)
				for i := range proofs {
					proofs[i] = dpoptest.Good(b, key, http.MethodGet, url, token, time.Now()).Make(b)
				}
				return proofs
			}
		}},
		{"bare", func(b *testing.B) (string, string, func(int) []string) {
			// Any token: nothing in the bare chain reads it.
			return startBareChain(b, store) + "/products", "not-checked", nil
		}},
	}
	for _, ch := range chains {
		b.Run("chain="+ch.name, func(b *testing.B) {
			url, token, proofs := ch.start(b)
			load(b, url, token, proofs, 32)
		})
	}
}

// load sends b.N requests from clients goroutines, each on its own
// keep-alive connection, and reports throughput, latency percentiles and
// CPU per request. With makeProofs, each request carries its own DPoP
// proof.
func load(b *testing.B, url, token string, makeProofs func(n int) []string, clients int) {
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: clients}}
	proof := func(int64) string { return "" }
	if makeProofs != nil {
		proofs := makeProofs(b.N + clients)
		proof = func(i int64) string { return proofs[i] }
	}
	for i := range clients { // warm every connection and every hop's pools
		if err := getOKWith(client, url, token, proof(int64(b.N+i))); err != nil {
			b.Fatal(err)
		}
	}
	latencies := make([]time.Duration, b.N)
	var next atomic.Int64
	var wg sync.WaitGroup
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := processCPU()
	start := time.Now()
	for range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1) - 1
				if i >= int64(b.N) {
					return
				}
				t0 := time.Now()
				if err := getOKWith(client, url, token, proof(i)); err != nil {
					b.Error(err)
					return
				}
				latencies[i] = time.Since(t0)
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	cpu := processCPU() - cpu0
	b.StopTimer()
	slices.Sort(latencies)
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "req/s")
	b.ReportMetric(ms(latencies[b.N/2]), "p50-ms")
	b.ReportMetric(ms(latencies[b.N*99/100]), "p99-ms")
	if cpu > 0 {
		b.ReportMetric(float64(cpu.Microseconds())/float64(b.N), "cpu-µs/req")
	}
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// getOK makes one call and insists on a 200, reading the whole body.
func getOK(client *http.Client, url, token string) error {
	return getOKWith(client, url, token, "")
}

// getOKWith is getOK with a DPoP proof, when proof is not "".
func getOKWith(client *http.Client, url, token, proof string) error {
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	if proof == "" {
		req.Header.Set("Authorization", "Bearer "+token)
	} else {
		req.Header["Authorization"] = []string{"DPoP " + token}
		req.Header["Dpop"] = []string{proof}
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if _, err := io.Copy(io.Discard, resp.Body); err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return &statusError{resp.StatusCode}
	}
	return nil
}

type statusError struct{ status int }

func (e *statusError) Error() string { return "status " + http.StatusText(e.status) }
