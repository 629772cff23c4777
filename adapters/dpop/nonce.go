package dpop

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"time"
)

// nonces are stateless server nonces (RFC 9449 §8): the nonce of a time
// step is the step number and an HMAC-SHA256 of it under a secret the
// replicas share. A nonce is good during its step and the next one, so a
// proof made with it is at most two steps older than any replica's clock
// allows, whatever the client's clock says.
type nonces struct {
	key  []byte
	step time.Duration
}

// nonceMACBytes keeps 128 bits of the MAC: forging one is 2^128 work.
const nonceMACBytes = 16

func newNonces(secret []byte, step time.Duration) *nonces {
	// Derive a key for this use, so the secret itself is never an HMAC
	// key that other uses of it could share.
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte("trustchain dpop nonce v1"))
	return &nonces{key: mac.Sum(nil), step: step}
}

func (n *nonces) stepOf(now time.Time) uint64 {
	return uint64(now.UnixNano() / int64(n.step))
}

func (n *nonces) of(step uint64) string {
	var b [8 + nonceMACBytes]byte
	binary.BigEndian.PutUint64(b[:8], step)
	mac := hmac.New(sha256.New, n.key)
	mac.Write(b[:8])
	copy(b[8:], mac.Sum(nil))
	return base64.RawURLEncoding.EncodeToString(b[:])
}

func (n *nonces) at(now time.Time) string { return n.of(n.stepOf(now)) }

// valid reports whether nonce is the current step's or the previous one's.
func (n *nonces) valid(nonce string, now time.Time) bool {
	cur := n.stepOf(now)
	return hmac.Equal([]byte(nonce), []byte(n.of(cur))) || cur > 0 && hmac.Equal([]byte(nonce), []byte(n.of(cur-1)))
}
