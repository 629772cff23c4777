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
// warn. Read the ratios between the two; absolute figures depend on the
// machine and whatever else it is doing:
//
//	go test -run '^$' -bench SideBySide -benchtime 20000x -count 3 ./app
func BenchmarkSideBySide(b *testing.B) {
	store := memory.New(domain.SampleCatalogue()...)
	chains := []struct {
		name  string
		start func(b *testing.B) (url, token string)
	}{
		{"trustchain", func(b *testing.B) (string, string) {
			c := startChain(b, chainOptions{peerAuth: app.PeerAuthOff, source: store, quiet: true, logLevel: slog.LevelWarn})
			return c.url(roleA) + "/products", c.token(nil)
		}},
		{"bare", func(b *testing.B) (string, string) {
			// Any token: nothing in the bare chain reads it.
			return startBareChain(b, store) + "/products", "not-checked"
		}},
	}
	for _, ch := range chains {
		b.Run("chain="+ch.name, func(b *testing.B) {
			url, token := ch.start(b)
			load(b, url, token, 32)
		})
	}
}

// load sends b.N requests from clients goroutines, each on its own
// keep-alive connection, and reports throughput, latency percentiles and
// CPU per request.
func load(b *testing.B, url, token string, clients int) {
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: clients}}
	for range clients { // warm every connection and every hop's pools
		if err := getOK(client, url, token); err != nil {
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
				if err := getOK(client, url, token); err != nil {
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
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+token)
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
