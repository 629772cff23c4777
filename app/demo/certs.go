package demo

import (
	"fmt"
	"io"
	"time"

	"github.com/trustchain/trustchain/adapters/dev/spiffeca"
	"github.com/trustchain/trustchain/app"
	"github.com/trustchain/trustchain/domain"
)

// CertsConfig configures `trustchain certs`; main derives its flags from the
// tags.
type CertsConfig struct {
	Dir         string        `flag:"out" env:"CERTS_OUT" usage:"directory to write into (created 0700)"`
	TrustDomain string        `flag:"trust-domain" env:"TRUST_DOMAIN" usage:"SPIFFE trust domain of the SVIDs"`
	Namespace   string        `flag:"namespace" env:"POD_NAMESPACE" usage:"Kubernetes namespace in the SVIDs' SPIFFE IDs"`
	TTL         time.Duration `flag:"ttl" env:"CERTS_TTL" usage:"lifetime of the CA and the SVIDs"`
}

// CertsDefaults returns the defaults of the certs command's flags.
func CertsDefaults() CertsConfig {
	d := app.Defaults()
	return CertsConfig{TrustDomain: d.TrustDomain, Namespace: d.Namespace, TTL: 24 * time.Hour}
}

// WriteCerts writes a development trust bundle and one SVID per role of
// the chain.
func WriteCerts(cc CertsConfig, out io.Writer) error {
	if cc.Dir == "" {
		return &app.ConfigError{Problems: []app.Problem{{Flag: "out", Message: "is required"}}}
	}
	var accounts []string
	for _, h := range domain.Chain() {
		accounts = append(accounts, h.ServiceAccount)
	}
	paths, err := spiffeca.WriteDevCerts(cc.Dir, cc.TrustDomain, cc.Namespace, accounts, cc.TTL)
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
