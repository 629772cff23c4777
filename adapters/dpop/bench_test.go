package dpop_test

import (
	"testing"

	"github.com/trustchain/trustchain/adapters/dpop"
	"github.com/trustchain/trustchain/internal/testkit/dpoptest"
)

// BenchmarkVerify is the edge's cost of one DPoP request beyond a Bearer
// one: one proof, parsed, signature-checked (ES256), and remembered.
//
//	go test -run '^$' -bench Verify -benchmem ./adapters/dpop
func BenchmarkVerify(b *testing.B) {
	key := dpoptest.NewKey(b)
	proofs := make([]string, b.N)
	for i := range proofs {
		proofs[i] = dpoptest.Good(b, key, "GET", testURL, testToken, testNow).Make(b)
	}
	v := newVerifier(b, dpop.Config{ReplaySize: b.N + 1})
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		if _, err := v.Verify(proofs[i], "GET", testURL, testToken, testNow); err != nil {
			b.Fatal(err)
		}
	}
}
