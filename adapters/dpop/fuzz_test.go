package dpop_test

import (
	"errors"
	"slices"
	"testing"

	"github.com/trustchain/trustchain/adapters/dpop"
	"github.com/trustchain/trustchain/domain"
	"github.com/trustchain/trustchain/internal/testkit/dpoptest"
)

// FuzzVerify: whatever a client sends as a proof, Verify answers without
// panicking, and a refusal is a proof refusal with one of the bounded
// reasons. Seeds: a good proof, the RFC's, and pieces of them.
func FuzzVerify(f *testing.F) {
	good := dpoptest.Good(f, dpoptest.NewKey(f), "GET", testURL, testToken, testNow).Make(f)
	for _, seed := range []string{good, rfcProof, good[:len(good)/2], "e30.e30.", "..", ""} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, proof string) {
		v, err := dpop.New(dpop.Config{ReplaySize: 4})
		if err != nil {
			t.Fatal(err)
		}
		p, err := v.Verify(proof, "GET", testURL, testToken, testNow)
		switch {
		case err == nil:
			if p.JKT == "" {
				t.Fatalf("accepted %q without a thumbprint", proof)
			}
		case !errors.Is(err, domain.ErrProofInvalid) || !slices.Contains(domain.ProofReasons(), domain.TokenReason(err)):
			t.Fatalf("%q: unexpected refusal %v", proof, err)
		}
	})
}
