package dpop

import "time"

// TokenRequestKey checks a proof sent with a token request to htu, where
// there is no access token yet and so no ath (RFC 9449 §5), and returns
// the thumbprint the issued token's cnf.jkt is to name.
func (v *Verifier) TokenRequestKey(proof, method, htu string, now time.Time) (string, error) {
	p, err := v.Verify(proof, method, htu, "", now)
	return p.JKT, err
}

// AlgorithmNames is Algorithms as discovery's
// dpop_signing_alg_values_supported lists them.
func AlgorithmNames() []string {
	names := make([]string, len(Algorithms))
	for i, a := range Algorithms {
		names[i] = string(a)
	}
	return names
}
