package httpin

import (
	"context"
	"net/http"
	"sort"
	"sync/atomic"
	"time"
)

// ReadyCheck reports whether one dependency can serve.
type ReadyCheck func(ctx context.Context) error

// Admin serves the operator endpoints on their own port, so probes and
// scrapes never compete with, or get exposed alongside, the API.
type Admin struct {
	checks   map[string]ReadyCheck
	metrics  http.Handler
	draining atomic.Bool
}

// NewAdmin returns the admin handler. metrics may be nil.
func NewAdmin(checks map[string]ReadyCheck, metrics http.Handler) *Admin {
	return &Admin{checks: checks, metrics: metrics}
}

// Drain marks the process as shutting down: /readyz fails from now on so the
// load balancer stops sending new requests while in-flight ones finish.
func (a *Admin) Drain() { a.draining.Store(true) }

// readyTimeout bounds one /readyz call; kubelet's default probe timeout is 1s.
const readyTimeout = 900 * time.Millisecond

func (a *Admin) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case HealthzPath:
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	case ReadyzPath:
		a.ready(w, r)
	case MetricsPath:
		if a.metrics == nil {
			notFound(w, r)
			return
		}
		a.metrics.ServeHTTP(w, r)
	default:
		notFound(w, r)
	}
}

func (a *Admin) ready(w http.ResponseWriter, r *http.Request) {
	if a.draining.Load() {
		writeJSON(w, http.StatusServiceUnavailable, map[string]any{"status": "draining"})
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), readyTimeout)
	defer cancel()
	failed := map[string]string{}
	names := make([]string, 0, len(a.checks))
	for name := range a.checks {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		if err := a.checks[name](ctx); err != nil {
			failed[name] = err.Error()
		}
	}
	if len(failed) > 0 {
		writeJSON(w, http.StatusServiceUnavailable, map[string]any{"status": "not ready", "failed": failed})
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"status": "ready", "checks": names})
}
