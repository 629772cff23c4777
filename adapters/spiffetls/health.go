package spiffetls

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"
)

// Why an SVID cannot serve; every cause Check returns wraps one of them.
var (
	ErrNoSVID          = errors.New("no SVID")
	ErrNotOwnSVID      = errors.New("SVID is another workload's")
	ErrSVIDExpired     = errors.New("SVID expired")
	ErrSVIDNotYetValid = errors.New("SVID not yet valid")
	ErrSVIDRenewalLate = errors.New("SVID renewal overdue")
)

// RenewalDeadline is the rule for an SVID that will expire before a
// rotation can come: SPIRE's agent renews at half the lifetime (as does
// cert-manager by default), so an SVID with less than a tenth of its
// lifetime left has missed its renewal by 40% of the lifetime. The
// workload then leaves the load balancer while its certificate still
// works, not when handshakes start failing: 12s before the end of a
// 2-minute SVID, 6 minutes before the end of a 1-hour one.
func RenewalDeadline(svid *x509svid.SVID) time.Time {
	leaf := svid.Certificates[0]
	return leaf.NotAfter.Add(-leaf.NotAfter.Sub(leaf.NotBefore) / 10)
}

// CheckSVID says why svid cannot serve as the identity want at now, or
// returns nil.
func CheckSVID(svid *x509svid.SVID, want spiffeid.ID, now time.Time) error {
	if svid == nil || len(svid.Certificates) == 0 {
		return fmt.Errorf("%w: waiting for %s", ErrNoSVID, want)
	}
	leaf := svid.Certificates[0]
	switch {
	case svid.ID != want:
		return fmt.Errorf("%w: holds %s, not its own %s", ErrNotOwnSVID, svid.ID, want)
	case now.Before(leaf.NotBefore):
		return fmt.Errorf("%w: %s is valid from %s", ErrSVIDNotYetValid, svid.ID, leaf.NotBefore.UTC().Format(time.RFC3339))
	case !now.Before(leaf.NotAfter):
		return fmt.Errorf("%w: %s expired at %s", ErrSVIDExpired, svid.ID, leaf.NotAfter.UTC().Format(time.RFC3339))
	case !now.Before(RenewalDeadline(svid)):
		return fmt.Errorf("%w: %s expires at %s with less than a tenth of its lifetime left, and no new one has come",
			ErrSVIDRenewalLate, svid.ID, leaf.NotAfter.UTC().Format(time.RFC3339))
	}
	return nil
}

// MonitorHooks learn what a Monitor sees; any may be nil.
type MonitorHooks struct {
	// SVID learns each SVID the workload starts to use, the first one
	// included.
	SVID func(spiffeID string, notBefore, notAfter time.Time)
	// Rotated learns each replacement of the SVID by another.
	Rotated func()
}

// Monitor watches the SVID a source serves: it is the readiness check of a
// workload with a native SPIFFE identity, notices rotations, and logs each
// change of state once.
type Monitor struct {
	src   x509svid.Source
	want  spiffeid.ID
	hooks MonitorHooks
	log   *slog.Logger
	now   func() time.Time

	mu      sync.Mutex
	leaf    []byte // the certificate last seen, to tell a rotation
	checked bool
	cause   string // the state last logged; "" when healthy
}

// monitorInterval is how often Run looks, so that a state change is
// logged and measured even when nothing probes.
const monitorInterval = time.Second

// NewMonitor watches src, which must serve want's SVID. log nil discards.
func NewMonitor(src x509svid.Source, want spiffeid.ID, hooks MonitorHooks, log *slog.Logger) *Monitor {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Monitor{src: src, want: want, hooks: hooks, log: log, now: time.Now}
}

// Check returns nil when the SVID can serve, else why not (see CheckSVID
// and RenewalDeadline). It is cheap enough for every readiness probe.
func (m *Monitor) Check(context.Context) error {
	svid, err := m.src.GetX509SVID()
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.now()
	if err == nil && svid != nil && len(svid.Certificates) > 0 {
		m.see(svid)
	}
	cause := CheckSVID(svid, m.want, now)
	if errors.Is(err, ErrNoSVID) {
		cause = err // the source knows more: what it was offered
	} else if err != nil {
		cause = fmt.Errorf("%w: %v", ErrNoSVID, err)
	}
	m.logChange(cause, svid)
	return cause
}

// Run checks every second until ctx ends.
func (m *Monitor) Run(ctx context.Context) {
	t := time.NewTicker(monitorInterval)
	defer t.Stop()
	for {
		_ = m.Check(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// see notes a new SVID. The caller holds m.mu.
func (m *Monitor) see(svid *x509svid.SVID) {
	leaf := svid.Certificates[0]
	if bytes.Equal(leaf.Raw, m.leaf) {
		return
	}
	rotated := m.leaf != nil
	m.leaf = leaf.Raw
	if m.hooks.SVID != nil {
		m.hooks.SVID(svid.ID.String(), leaf.NotBefore, leaf.NotAfter)
	}
	if !rotated {
		return
	}
	if m.hooks.Rotated != nil {
		m.hooks.Rotated()
	}
	m.log.Info("SVID rotated", slog.String("spiffe_id", svid.ID.String()),
		slog.String("serial", leaf.SerialNumber.String()), slog.Time("not_after", leaf.NotAfter))
}

// logChange logs the state when it differs from the one last logged. The
// caller holds m.mu.
func (m *Monitor) logChange(cause error, svid *x509svid.SVID) {
	text := ""
	if cause != nil {
		text = cause.Error()
	}
	if m.checked && text == m.cause {
		return
	}
	m.checked, m.cause = true, text
	if cause != nil {
		m.log.Warn("SVID cannot serve: not ready", slog.String("want", m.want.String()), slog.String("cause", text))
		return
	}
	leaf := svid.Certificates[0]
	m.log.Info("SVID good: ready", slog.String("spiffe_id", svid.ID.String()),
		slog.Time("not_after", leaf.NotAfter), slog.Time("renewal_deadline", RenewalDeadline(svid)))
}
