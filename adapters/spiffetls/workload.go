package spiffetls

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"
	"github.com/spiffe/go-spiffe/v2/workloadapi"
	"google.golang.org/grpc"
	grpcbackoff "google.golang.org/grpc/backoff"
)

var _ Source = (*WorkloadSource)(nil)

// Workload is the workload a source serves and where its troubles go.
type Workload struct {
	// ID is the workload's own SPIFFE ID, the only one it may present.
	ID spiffeid.ID
	// Log receives reloads and failures; nil discards.
	Log *slog.Logger
	// RotationFailed, when set, learns each failed attempt at a new SVID:
	// files that did not load, a Workload API stream that broke.
	RotationFailed func(at time.Time)
}

func (w Workload) logger() *slog.Logger {
	if w.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return w.Log
}

func (w Workload) failed() {
	if w.RotationFailed != nil {
		w.RotationFailed(time.Now())
	}
}

// WorkloadSource serves the SVID the SPIFFE Workload API streams for this
// workload's own ID. An agent may offer several (overlapping registration
// entries by path, uid or node); go-spiffe's picker takes the one whose ID
// is the workload's, never merely the first.
type WorkloadSource struct {
	*workloadapi.X509Source
	want spiffeid.ID
	log  *slog.Logger

	mu      sync.Mutex
	offered []string // the IDs of the last update, to say what was on offer
}

// Reconnect timing towards the agent. The agent is local (a unix socket),
// so retrying every second costs nothing, while the defaults (go-spiffe's
// linear backoff to 30s, and beneath it gRPC's reconnect backoff to 120s)
// kept a workload on an expired SVID for minutes after the agent returned.
const (
	retryStep = 250 * time.Millisecond
	retryMax  = time.Second
)

// startTimeout bounds the wait for the agent's first update: an agent that
// never answers should fail the pod, not hang its start.
const startTimeout = 30 * time.Second

// NewWorkloadSource connects to the SPIFFE Workload API at addr (for example
// unix:///run/spire/sockets/agent.sock) and keeps w.ID's SVID and the
// bundles it streams. It blocks until the first update arrives, or ctx
// ends, or 30s have passed. An update without w.ID's SVID leaves the source
// without one (GetX509SVID says what was offered) until an update brings
// it. Close the source to drop the connection.
func NewWorkloadSource(ctx context.Context, addr string, w Workload) (*WorkloadSource, error) {
	ctx, cancel := context.WithTimeout(ctx, startTimeout)
	defer cancel()
	// Checked here because the client would otherwise retry a hopeless
	// address until ctx ends, hiding the real mistake behind a timeout.
	if err := workloadapi.ValidateAddress(addr); err != nil {
		return nil, fmt.Errorf("workload API address %q: %w", addr, err)
	}
	s := &WorkloadSource{want: w.ID, log: w.logger()}
	src, err := workloadapi.NewX509Source(ctx,
		workloadapi.WithDefaultX509SVIDPicker(s.pick),
		workloadapi.WithClientOptions(
			workloadapi.WithAddr(addr),
			workloadapi.WithLogger(&apiLogger{w: w, log: w.logger()}),
			workloadapi.WithBackoffStrategy(retryStrategy{}),
			workloadapi.WithDialOptions(grpc.WithConnectParams(grpc.ConnectParams{
				Backoff:           grpcbackoff.Config{BaseDelay: retryStep, Multiplier: 1.6, Jitter: 0.2, MaxDelay: retryMax},
				MinConnectTimeout: 5 * time.Second,
			})),
		))
	if err != nil {
		return nil, fmt.Errorf("workload API at %q: %w", addr, err)
	}
	s.X509Source = src
	return s, nil
}

// pick is go-spiffe's SVID picker: the workload's own SVID, or none.
func (s *WorkloadSource) pick(svids []*x509svid.SVID) *x509svid.SVID {
	offered := make([]string, 0, len(svids))
	var own *x509svid.SVID
	for _, svid := range svids {
		offered = append(offered, svid.ID.String())
		if own == nil && svid.ID == s.want {
			own = svid
		}
	}
	s.mu.Lock()
	s.offered = offered
	s.mu.Unlock()
	s.log.Debug("workload API update", slog.Any("offered", offered), slog.Bool("own_offered", own != nil), slog.String("want", s.want.String()))
	return own
}

// GetX509SVID returns the workload's own SVID. It implements
// x509svid.Source.
func (s *WorkloadSource) GetX509SVID() (*x509svid.SVID, error) {
	svid, err := s.X509Source.GetX509SVID()
	if err == nil {
		return svid, nil
	}
	s.mu.Lock()
	offered := strings.Join(s.offered, ", ")
	s.mu.Unlock()
	if offered == "" {
		offered = "none"
	}
	return nil, fmt.Errorf("%w: waiting for %s from the Workload API, which offers: %s", ErrNoSVID, s.want, offered)
}

// retryStrategy retries a broken Workload API stream after 250ms, 500ms,
// 750ms, then every second.
type retryStrategy struct{}

func (retryStrategy) NewBackoff() workloadapi.Backoff { return &retryBackoff{} }

type retryBackoff struct{ n int }

func (b *retryBackoff) Next() time.Duration {
	b.n++
	return min(time.Duration(b.n)*retryStep, retryMax)
}

func (b *retryBackoff) Reset() { b.n = 0 }

// apiLogger hands go-spiffe's log to slog. go-spiffe reports a broken
// stream or an update it could not parse only here, as an error, so each
// error is also a failed rotation. While the agent is away the same error
// comes every second: it is logged as a warning once a minute, and at
// debug level in between.
type apiLogger struct {
	w   Workload
	log *slog.Logger

	mu     sync.Mutex
	last   string
	warned time.Time
}

func (l *apiLogger) Debugf(format string, args ...any) { l.log.Debug(fmt.Sprintf(format, args...)) }
func (l *apiLogger) Infof(format string, args ...any)  { l.log.Info(fmt.Sprintf(format, args...)) }
func (l *apiLogger) Warnf(format string, args ...any)  { l.log.Warn(fmt.Sprintf(format, args...)) }

func (l *apiLogger) Errorf(format string, args ...any) {
	l.w.failed()
	msg := "workload API: " + fmt.Sprintf(format, args...)
	now := time.Now()
	l.mu.Lock()
	repeated := msg == l.last && now.Sub(l.warned) < time.Minute
	if !repeated {
		l.last, l.warned = msg, now
	}
	l.mu.Unlock()
	level := slog.LevelWarn
	if repeated {
		level = slog.LevelDebug
	}
	l.log.Log(context.Background(), level, msg, slog.String("want", l.w.ID.String()))
}
