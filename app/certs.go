package app

import (
	"fmt"
	"io"
	"time"

	"github.com/trustchain/trustchain/adapters/devca"
)

// CertsConfig configures `trustchain certs`.
type CertsConfig struct {
	Dir         string
	TrustDomain string
	Namespace   string
	TTL         time.Duration
}

// WriteCerts writes a development trust bundle and one SVID per role.
func WriteCerts(cc CertsConfig, out io.Writer) error {
	paths, err := devca.WriteDevCerts(cc.Dir, cc.TrustDomain, cc.Namespace, cc.TTL)
	if err != nil {
		return fmt.Errorf("write development certificates: %w", err)
	}
	for _, p := range paths {
		if _, err := fmt.Fprintln(out, p); err != nil {
			return err
		}
	}
	return nil
}
