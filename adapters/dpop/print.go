package dpop

import (
	"fmt"
	"io"
	"time"
)

// WriteProof writes a fresh proof for one request to out, signed with the
// key in keyFile (see LoadKey): what `trustchain proof` prints.
func WriteProof(out io.Writer, keyFile, method, target, accessToken, nonce string, now time.Time) error {
	key, err := LoadKey(keyFile)
	if err != nil {
		return err
	}
	proof, err := NewProof(key, method, target, accessToken, nonce, now)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(out, proof)
	return err
}
