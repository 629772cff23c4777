package app_test

import (
	"io"
	"net/http"
	"testing"

	"github.com/trustchain/trustchain/app"
)

// BenchmarkChain is a load run over loopback: parallel clients call A, and
// each request is verified three times and crosses two hops to the
// in-memory store. Compare modes within one run (the machine is shared):
//
//	go test -run '^$' -bench Chain -benchtime 2000x ./app
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
					req, _ := http.NewRequest(http.MethodGet, url, nil)
					req.Header.Set("Authorization", "Bearer "+token)
					resp, err := client.Do(req)
					if err != nil {
						b.Error(err)
						return
					}
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode != 200 {
						b.Errorf("status %d", resp.StatusCode)
						return
					}
				}
			})
		})
	}
}
