package dpop

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/url"
	"os"
	"strings"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// jtiBytes is the entropy of a proof's jti: 128 bits, above the 96 the
// RFC asks for (§11.1), so two clients never collide by chance.
const jtiBytes = 16

// keyFileMode is the only mode a key file may have: the owner reads and
// writes it, nobody else even reads it (as ssh insists for its keys).
const keyFileMode fs.FileMode = 0o600

// maxKeyFile bounds what LoadKey reads.
const maxKeyFile = 8 << 10

// Errors a caller can tell apart with errors.Is.
var (
	// ErrKeyType: the key is not one a proof can be signed with here.
	ErrKeyType = errors.New("unsupported DPoP key")
	// ErrKeyFile: the key file is unreadable, malformed, or open to others.
	ErrKeyFile = errors.New("bad DPoP key file")
)

// proofClaims are the claims of a proof (RFC 9449 §4.2); ath and nonce
// appear only when there is a token or a server nonce to bind.
type proofClaims struct {
	JTI   string `json:"jti"`
	HTM   string `json:"htm"`
	HTU   string `json:"htu"`
	IAT   int64  `json:"iat"`
	ATH   string `json:"ath,omitempty"`
	Nonce string `json:"nonce,omitempty"`
}

// NewProof returns a fresh proof, in compact form, for one request: method
// and target URL (its query and fragment are left out of htu, §4.2), the
// access token it presents (hashed into ath; "" at a token endpoint, §5)
// and the server's nonce ("" when none was asked for). The header carries
// only the public half of key.
func NewProof(key crypto.Signer, method, target, accessToken, nonce string, now time.Time) (string, error) {
	alg, err := Algorithm(key.Public())
	if err != nil {
		return "", err
	}
	if method == "" || strings.ContainsAny(method, " \t\r\n") {
		return "", fmt.Errorf("dpop proof: bad method %q", method)
	}
	htu, err := HTU(target)
	if err != nil {
		return "", fmt.Errorf("dpop proof: %w", err)
	}
	jti := make([]byte, jtiBytes)
	if _, err := rand.Read(jti); err != nil {
		return "", fmt.Errorf("dpop proof: jti: %w", err)
	}
	claims := proofClaims{
		JTI:   base64.RawURLEncoding.EncodeToString(jti),
		HTM:   method,
		HTU:   htu,
		IAT:   now.Unix(),
		Nonce: nonce,
	}
	if accessToken != "" {
		claims.ATH = AccessTokenHash(accessToken)
	}
	payload, err := json.Marshal(claims)
	if err != nil {
		return "", fmt.Errorf("dpop proof: %w", err)
	}
	opts := (&jose.SignerOptions{EmbedJWK: true}).WithType(ProofType)
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: key}, opts)
	if err != nil {
		return "", fmt.Errorf("dpop proof: %w", err)
	}
	jws, err := signer.Sign(payload)
	if err != nil {
		return "", fmt.Errorf("dpop proof: sign: %w", err)
	}
	return jws.CompactSerialize()
}

// Algorithm is the JWS algorithm a proof signed by the holder of pub uses:
// ES256 for P-256, EdDSA for Ed25519, PS256 for RSA of 2048 bits or more.
func Algorithm(pub crypto.PublicKey) (jose.SignatureAlgorithm, error) {
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		if k.Curve == elliptic.P256() {
			return jose.ES256, nil
		}
	case ed25519.PublicKey:
		return jose.EdDSA, nil
	case *rsa.PublicKey:
		if k.N.BitLen() >= 2048 {
			return jose.PS256, nil
		}
	}
	return "", fmt.Errorf("%w: %T (want ECDSA P-256, Ed25519 or RSA ≥ 2048 bits)", ErrKeyType, pub)
}

// HTU is a request URL as a proof's htu names it: absolute, without its
// query and fragment (RFC 9449 §4.2).
func HTU(target string) (string, error) {
	u, err := url.Parse(target)
	if err != nil {
		return "", fmt.Errorf("htu: %w", err)
	}
	if (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.User != nil {
		return "", fmt.Errorf("htu: %q is not an absolute http(s) URL", target)
	}
	u.RawQuery, u.ForceQuery, u.Fragment, u.RawFragment = "", false, "", ""
	return u.String(), nil
}

// Thumbprint is the RFC 7638 SHA-256 thumbprint of a public key, over its
// required members only, base64url: the value of a bound token's cnf.jkt.
func Thumbprint(pub crypto.PublicKey) (string, error) {
	sum, err := (&jose.JSONWebKey{Key: pub}).Thumbprint(crypto.SHA256)
	if err != nil {
		return "", fmt.Errorf("%w: thumbprint: %v", ErrKeyType, err)
	}
	return base64.RawURLEncoding.EncodeToString(sum), nil
}

// LoadKey reads an ECDSA P-256 private key from a PEM file (PKCS #8 or
// SEC 1) that only its owner can read.
func LoadKey(path string) (*ecdsa.PrivateKey, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrKeyFile, err)
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrKeyFile, err)
	}
	if !info.Mode().IsRegular() || info.Mode().Perm()&^keyFileMode != 0 {
		return nil, fmt.Errorf("%w: %s has mode %v; want a regular file with mode %v", ErrKeyFile, path, info.Mode(), keyFileMode)
	}
	// A PEM P-256 key is a few hundred bytes; a wrong path never loads a
	// huge file into memory.
	data, err := io.ReadAll(io.LimitReader(f, maxKeyFile+1))
	if err == nil && len(data) > maxKeyFile {
		err = fmt.Errorf("larger than %d bytes", maxKeyFile)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrKeyFile, path, err)
	}
	key, err := parseKeyPEM(data)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrKeyFile, path, err)
	}
	return key, nil
}

func parseKeyPEM(data []byte) (*ecdsa.PrivateKey, error) {
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, errors.New("no PEM block")
	}
	var key any
	var err error
	switch block.Type {
	case "PRIVATE KEY":
		key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
	case "EC PRIVATE KEY":
		key, err = x509.ParseECPrivateKey(block.Bytes)
	default:
		return nil, fmt.Errorf("PEM block %q is not a private key", block.Type)
	}
	if err != nil {
		return nil, err
	}
	ec, ok := key.(*ecdsa.PrivateKey)
	if !ok || ec.Curve != elliptic.P256() {
		return nil, fmt.Errorf("want an ECDSA P-256 (ES256) key, got %T", key)
	}
	return ec, nil
}

// CreateKey makes a new ECDSA P-256 key and writes it, PKCS #8 PEM, to a
// new file with mode 0600. It never replaces a file (O_EXCL) and leaves
// nothing behind when it fails.
func CreateKey(path string) (*ecdsa.PrivateKey, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("dpop key: %w", err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("dpop key: %w", err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, keyFileMode)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrKeyFile, err)
	}
	// The mode given to OpenFile passes through the umask, which can only
	// take bits away; Chmod makes the result exact all the same.
	err = errors.Join(f.Chmod(keyFileMode), pem.Encode(f, &pem.Block{Type: "PRIVATE KEY", Bytes: der}), f.Sync())
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		_ = os.Remove(path)
		return nil, fmt.Errorf("%w: write %s: %w", ErrKeyFile, path, err)
	}
	return key, nil
}

// LoadOrCreateKey loads the key at path, or creates it there when no file
// exists; created says which.
func LoadOrCreateKey(path string) (key *ecdsa.PrivateKey, created bool, err error) {
	key, err = CreateKey(path)
	if err == nil {
		return key, true, nil
	}
	if !errors.Is(err, fs.ErrExist) {
		return nil, false, err
	}
	key, err = LoadKey(path)
	return key, false, err
}

// Prover is a client's key, making the proofs of its token requests.
type Prover struct {
	key crypto.Signer
	now func() time.Time
}

// NewProver returns a prover for key.
func NewProver(key crypto.Signer) *Prover { return &Prover{key: key, now: time.Now} }

// Algorithm is the JWS algorithm of the prover's proofs, or "" when the
// key is not one proofs can be signed with.
func (p *Prover) Algorithm() string {
	alg, _ := Algorithm(p.key.Public())
	return string(alg)
}

// Proof returns a fresh proof for a request with method to target,
// bound to accessToken and carrying the server's nonce when they are not
// "".
func (p *Prover) Proof(method, target, accessToken, nonce string) (string, error) {
	return NewProof(p.key, method, target, accessToken, nonce, p.now())
}
