package dpop_test

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"io/fs"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/trustchain/trustchain/adapters/dpop"
	"github.com/trustchain/trustchain/internal/testkit/dpoptest"
)

// decodeProof splits a compact proof and checks its ES256 signature with
// crypto/ecdsa against the jwk in its own header: no JOSE library, so
// the proof is read the way any other implementation would read it.
func decodeProof(tb testing.TB, proof string) (header, claims map[string]any) {
	tb.Helper()
	parts := strings.Split(proof, ".")
	if len(parts) != 3 {
		tb.Fatalf("proof has %d parts, want 3", len(parts))
	}
	part := func(i int) []byte {
		b, err := base64.RawURLEncoding.Strict().DecodeString(parts[i])
		if err != nil {
			tb.Fatalf("part %d: %v", i, err)
		}
		return b
	}
	if err := json.Unmarshal(part(0), &header); err != nil {
		tb.Fatal(err)
	}
	if err := json.Unmarshal(part(1), &claims); err != nil {
		tb.Fatal(err)
	}
	jwk, _ := header["jwk"].(map[string]any)
	if jwk["kty"] != "EC" || jwk["crv"] != "P-256" {
		tb.Fatalf("jwk = %v, want an EC P-256 key", jwk)
	}
	coord := func(name string) []byte {
		s, _ := jwk[name].(string)
		b, err := base64.RawURLEncoding.Strict().DecodeString(s)
		if err != nil || len(b) != 32 {
			tb.Fatalf("jwk %s = %q: %v", name, s, err)
		}
		return b
	}
	pub := ecPublic(tb, coord("x"), coord("y"))
	sig := part(2)
	if len(sig) != 64 {
		tb.Fatalf("ES256 signature is %d bytes, want 64", len(sig))
	}
	digest := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	r, s := new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:])
	if !ecdsa.Verify(pub, digest[:], r, s) {
		tb.Fatal("the proof's signature does not verify with its own jwk")
	}
	return header, claims
}

// ecPublic is the P-256 public key at (x, y).
func ecPublic(tb testing.TB, x, y []byte) *ecdsa.PublicKey {
	tb.Helper()
	pub, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), append(append([]byte{4}, x...), y...))
	if err != nil {
		tb.Fatal(err)
	}
	return pub
}

func TestNewProofBindsTheRequest(t *testing.T) {
	key := dpoptest.NewKey(t)
	now := time.Unix(1_800_000_000, 0)
	proof, err := dpop.NewProof(key, "GET", "https://a.example/products?after=7&limit=2#x", "tok.en", "n0nce", now)
	if err != nil {
		t.Fatal(err)
	}
	header, claims := decodeProof(t, proof)

	if header["typ"] != "dpop+jwt" || header["alg"] != "ES256" {
		t.Errorf("header typ/alg = %v/%v, want dpop+jwt/ES256", header["typ"], header["alg"])
	}
	jwk := header["jwk"].(map[string]any)
	if _, private := jwk["d"]; private {
		t.Error("the header's jwk carries the private key")
	}
	want := map[string]any{
		"htm":   "GET",
		"htu":   "https://a.example/products",
		"iat":   float64(now.Unix()),
		"ath":   sha256B64("tok.en"),
		"nonce": "n0nce",
	}
	for name, v := range want {
		if claims[name] != v {
			t.Errorf("claim %s = %v, want %v", name, claims[name], v)
		}
	}
	jti, err := base64.RawURLEncoding.Strict().DecodeString(claims["jti"].(string))
	if err != nil || len(jti)*8 < 96 {
		t.Errorf("jti = %v (%d bits, %v), want ≥ 96 random bits", claims["jti"], len(jti)*8, err)
	}
	if len(claims) != len(want)+1 {
		t.Errorf("claims = %v, want exactly jti and %v", claims, want)
	}
	again, err := dpop.NewProof(key, "GET", "https://a.example/products", "tok.en", "n0nce", now)
	if err != nil {
		t.Fatal(err)
	}
	if _, c := decodeProof(t, again); c["jti"] == claims["jti"] {
		t.Error("two proofs share a jti")
	}
}

func sha256B64(s string) string {
	sum := sha256.Sum256([]byte(s))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// At a token endpoint there is no access token yet and often no nonce: the
// proof then has no ath and no nonce claim at all (RFC 9449 §5).
func TestNewProofWithoutTokenOrNonce(t *testing.T) {
	proof, err := dpop.NewProof(dpoptest.NewKey(t), "POST", "http://127.0.0.1:9000/oauth/token", "", "", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	_, claims := decodeProof(t, proof)
	for _, name := range []string{"ath", "nonce"} {
		if _, ok := claims[name]; ok {
			t.Errorf("claim %s present: %v", name, claims)
		}
	}
	if claims["htm"] != "POST" || claims["htu"] != "http://127.0.0.1:9000/oauth/token" {
		t.Errorf("htm/htu = %v %v", claims["htm"], claims["htu"])
	}
}

func TestNewProofRefuses(t *testing.T) {
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	rsa1024, _ := rsa.GenerateKey(rand.Reader, 1024)
	for name, c := range map[string]struct {
		key            crypto.Signer
		method, target string
	}{
		"P-384 key":       {p384, "GET", "https://a.example/"},
		"short RSA key":   {rsa1024, "GET", "https://a.example/"},
		"no method":       {dpoptest.NewKey(t), "", "https://a.example/"},
		"method w/ space": {dpoptest.NewKey(t), "GET X", "https://a.example/"},
		"relative URL":    {dpoptest.NewKey(t), "GET", "/products"},
		"ftp URL":         {dpoptest.NewKey(t), "GET", "ftp://a.example/"},
		"userinfo":        {dpoptest.NewKey(t), "GET", "https://u:p@a.example/"},
	} {
		t.Run(name, func(t *testing.T) {
			if proof, err := dpop.NewProof(c.key, c.method, c.target, "", "", time.Now()); err == nil {
				t.Fatalf("NewProof = %q, want an error", proof)
			}
		})
	}
}

func TestAlgorithm(t *testing.T) {
	_, ed, _ := ed25519.GenerateKey(rand.Reader)
	rsa2048, _ := rsa.GenerateKey(rand.Reader, 2048)
	for _, c := range []struct {
		key  crypto.Signer
		want string
	}{{dpoptest.NewKey(t), "ES256"}, {ed, "EdDSA"}, {rsa2048, "PS256"}} {
		alg, err := dpop.Algorithm(c.key.Public())
		if err != nil || string(alg) != c.want {
			t.Errorf("Algorithm(%T) = %q, %v; want %s", c.key, alg, err, c.want)
		}
		proof, err := dpop.NewProof(c.key, "GET", "https://a.example/", "t", "", time.Now())
		if err != nil {
			t.Errorf("NewProof with %T: %v", c.key, err)
			continue
		}
		var header struct{ Alg string }
		raw, _ := base64.RawURLEncoding.DecodeString(strings.Split(proof, ".")[0])
		if err := json.Unmarshal(raw, &header); err != nil || header.Alg != c.want {
			t.Errorf("proof alg = %q (%v), want %s", header.Alg, err, c.want)
		}
	}
	if _, err := dpop.Algorithm(p384Public(t)); !errors.Is(err, dpop.ErrKeyType) {
		t.Errorf("Algorithm(P-384) = %v, want ErrKeyType", err)
	}
}

// The examples of RFC 9449 (§4.1, §7.1), and RFC 7638's own thumbprint.
func TestRFCExamples(t *testing.T) {
	if got, want := dpop.AccessTokenHash("Kz~8mXK1EalYznwH-LC-1fBAo.4Ljp~zsPE_NeO.gxU"), "fUHyO2r2Z3DZ53EsNrWBb0xWXoaNy59IiKCAqksmQEo"; got != want {
		t.Errorf("ath = %s, want %s (RFC 9449 §7.1)", got, want)
	}
	raw := func(s string) []byte {
		b, err := base64.RawURLEncoding.DecodeString(s)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	b := func(s string) *big.Int { return new(big.Int).SetBytes(raw(s)) }
	ec := ecPublic(t, raw("l8tFrhx-34tV3hRICRDY9zCkDlpBhF42UQUfWVAWBFs"), raw("9VE4jf_Ok_o64zbTTlcuNJajHmt6v9TDVrU0CdvGRDA"))
	if got, err := dpop.Thumbprint(ec); err != nil || got != "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I" {
		t.Errorf("jkt = %s, %v; want RFC 9449 §6.1's 0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I", got, err)
	}
	rsaKey := &rsa.PublicKey{E: 65537, N: b("0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw")}
	if got, err := dpop.Thumbprint(rsaKey); err != nil || got != "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs" {
		t.Errorf("RSA thumbprint = %s, %v; want RFC 7638 §3.1's NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs", got, err)
	}
}

func TestHTU(t *testing.T) {
	for in, want := range map[string]string{
		"https://A.example/products?after=3":  "https://A.example/products",
		"https://a.example:8443/p#frag":       "https://a.example:8443/p",
		"http://127.0.0.1:8080/products?":     "http://127.0.0.1:8080/products",
		"https://a.example/path%2Fwith/slash": "https://a.example/path%2Fwith/slash",
	} {
		if got, err := dpop.HTU(in); err != nil || got != want {
			t.Errorf("HTU(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
}

func TestCreateKey(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "dpop.pem")
	key, err := dpop.CreateKey(path)
	if err != nil {
		t.Fatal(err)
	}
	info, err := os.Stat(path)
	if err != nil || info.Mode() != 0o600 {
		t.Fatalf("key file mode = %v (%v), want -rw-------", info.Mode(), err)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Errorf("directory holds %d entries, want the key file alone", len(entries))
	}
	loaded, err := dpop.LoadKey(path)
	if err != nil || !loaded.Equal(key) {
		t.Fatalf("LoadKey = %v; want the key CreateKey made", err)
	}
	before, _ := os.ReadFile(path)
	if _, err := dpop.CreateKey(path); !errors.Is(err, fs.ErrExist) || !errors.Is(err, dpop.ErrKeyFile) {
		t.Errorf("CreateKey over an existing file = %v, want ErrKeyFile and fs.ErrExist", err)
	}
	if after, _ := os.ReadFile(path); string(after) != string(before) {
		t.Error("CreateKey replaced an existing key")
	}
	if _, err := dpop.CreateKey(filepath.Join(dir, "missing", "k.pem")); !errors.Is(err, dpop.ErrKeyFile) {
		t.Errorf("CreateKey in a missing directory = %v, want ErrKeyFile", err)
	}
}

func TestLoadOrCreateKey(t *testing.T) {
	path := filepath.Join(t.TempDir(), "k.pem")
	first, created, err := dpop.LoadOrCreateKey(path)
	if err != nil || !created {
		t.Fatalf("first LoadOrCreateKey: created=%v, %v", created, err)
	}
	second, created, err := dpop.LoadOrCreateKey(path)
	if err != nil || created || !second.Equal(first) {
		t.Fatalf("second LoadOrCreateKey: created=%v, same=%v, %v", created, second.Equal(first), err)
	}
}

func TestLoadKeyRefuses(t *testing.T) {
	pemOf := func(typ string, der []byte) []byte { return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}) }
	p256 := dpoptest.NewKey(t)
	sec1, _ := x509.MarshalECPrivateKey(p256)
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	p384der, _ := x509.MarshalPKCS8PrivateKey(p384)
	_, ed, _ := ed25519.GenerateKey(rand.Reader)
	edDer, _ := x509.MarshalPKCS8PrivateKey(ed)
	pubDer, _ := x509.MarshalPKIXPublicKey(p256.Public())

	dir := t.TempDir()
	write := func(name string, data []byte, mode fs.FileMode) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, data, mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(path, mode); err != nil {
			t.Fatal(err)
		}
		return path
	}
	if key, err := dpop.LoadKey(write("sec1.pem", pemOf("EC PRIVATE KEY", sec1), 0o600)); err != nil || !key.Equal(p256) {
		t.Errorf("LoadKey(SEC 1) = %v, want the key", err)
	}
	if _, err := dpop.LoadKey(write("ro.pem", pemOf("EC PRIVATE KEY", sec1), 0o400)); err != nil {
		t.Errorf("LoadKey(mode 0400) = %v, want the key", err)
	}
	for name, c := range map[string]struct {
		data []byte
		mode fs.FileMode
	}{
		"group-readable": {pemOf("EC PRIVATE KEY", sec1), 0o640},
		"world-readable": {pemOf("EC PRIVATE KEY", sec1), 0o644},
		"P-384":          {pemOf("PRIVATE KEY", p384der), 0o600},
		"Ed25519":        {pemOf("PRIVATE KEY", edDer), 0o600},
		"public key":     {pemOf("PUBLIC KEY", pubDer), 0o600},
		"not PEM":        {[]byte("hello"), 0o600},
		"too large":      {append(pemOf("EC PRIVATE KEY", sec1), make([]byte, 9<<10)...), 0o600},
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := dpop.LoadKey(write(strings.ReplaceAll(name, " ", "_"), c.data, c.mode)); !errors.Is(err, dpop.ErrKeyFile) {
				t.Errorf("LoadKey = %v, want ErrKeyFile", err)
			}
		})
	}
	if _, err := dpop.LoadKey(filepath.Join(dir, "absent")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("LoadKey(absent) = %v, want fs.ErrNotExist", err)
	}
}

func p384Public(tb testing.TB) crypto.PublicKey {
	tb.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	return k.Public()
}

// A proof NewProof makes passes the Verifier, and names the key's
// thumbprint: the two halves agree on the wire format.
func TestNewProofPassesVerify(t *testing.T) {
	v, err := dpop.New(dpop.Config{})
	if err != nil {
		t.Fatal(err)
	}
	key := dpoptest.NewKey(t)
	now := time.Now()
	for _, token := range []string{"", "tok.en"} {
		proof, err := dpop.NewProof(key, "POST", "https://a.example/oauth/token?x=1", token, "", now)
		if err != nil {
			t.Fatal(err)
		}
		got, err := v.Verify(proof, "POST", "https://a.example/oauth/token", token, now)
		want, _ := dpop.Thumbprint(key.Public())
		if err != nil || got.JKT != want {
			t.Errorf("Verify(token %q) = %+v, %v; want jkt %s", token, got, err, want)
		}
	}
}
