package spiffetls

import (
	"context"
	"fmt"

	"github.com/spiffe/go-spiffe/v2/workloadapi"
)

// NewWorkloadSource connects to the SPIFFE Workload API at addr (for example
// unix:///run/spire/sockets/agent.sock) and keeps the SVID and bundles it
// streams. It blocks until the first SVID arrives, so give ctx a deadline: an
// agent that never answers would otherwise hang startup. Close the source to
// drop the connection.
func NewWorkloadSource(ctx context.Context, addr string) (*workloadapi.X509Source, error) {
	// Checked here because the client would otherwise retry a hopeless
	// address until ctx ends, hiding the real mistake behind a timeout.
	if err := workloadapi.ValidateAddress(addr); err != nil {
		return nil, fmt.Errorf("workload API address %q: %w", addr, err)
	}
	src, err := workloadapi.NewX509Source(ctx, workloadapi.WithClientOptions(workloadapi.WithAddr(addr)))
	if err != nil {
		return nil, fmt.Errorf("workload API at %q: %w", addr, err)
	}
	return src, nil
}
