package dpop_test

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jwk"
	"github.com/lestrrat-go/jwx/v3/jws"

	"github.com/trustchain/trustchain/adapters/dpop"
)

// TestProofsByAnotherImplementation: proofs that lestrrat-go/jwx, a JOSE
// implementation not ours, signs with each allowed algorithm pass, and the
// thumbprint agrees with jwx's own RFC 7638 thumbprint.
func TestProofsByAnotherImplementation(t *testing.T) {
	ecKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	rsaKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	_, edKey, _ := ed25519.GenerateKey(rand.Reader)
	for _, tc := range []struct {
		alg jwa.SignatureAlgorithm
		key crypto.Signer
	}{
		{jwa.ES256(), ecKey},
		{jwa.PS256(), rsaKey},
		{jwa.RS256(), rsaKey},
		{jwa.EdDSA(), edKey},
	} {
		t.Run(tc.alg.String(), func(t *testing.T) {
			priv, err := jwk.Import(tc.key)
			if err != nil {
				t.Fatal(err)
			}
			pub, err := jwk.PublicKeyOf(priv)
			if err != nil {
				t.Fatal(err)
			}
			headers := jws.NewHeaders()
			for k, v := range map[string]any{jws.TypeKey: "dpop+jwt", jws.JWKKey: pub} {
				if err := headers.Set(k, v); err != nil {
					t.Fatal(err)
				}
			}
			payload, _ := json.Marshal(map[string]any{
				"jti": rand.Text(), "htm": "GET", "htu": testURL,
				"iat": testNow.Unix(), "ath": dpop.AccessTokenHash(testToken),
			})
			proof, err := jws.Sign(payload, jws.WithKey(tc.alg, priv, jws.WithProtectedHeaders(headers)))
			if err != nil {
				t.Fatal(err)
			}
			p, err := newVerifier(t, dpop.Config{}).Verify(string(proof), "GET", testURL+"?limit=2", testToken, testNow.Add(time.Second))
			if err != nil {
				t.Fatalf("jwx's proof refused: %v", err)
			}
			thumb, err := pub.Thumbprint(crypto.SHA256)
			if err != nil {
				t.Fatal(err)
			}
			if want := base64.RawURLEncoding.EncodeToString(thumb); p.JKT != want {
				t.Errorf("JKT %q, jwx's thumbprint %q", p.JKT, want)
			}
		})
	}
}
