package server

import (
	"context"
	"net/http"
	"net/http/pprof"
	"slices"
	"sync/atomic"
	"time"

	"github.com/go-json-experiment/json/jsontext"

	"github.com/trustchain/trustchain/adapters/httpapi/wire"
)

// ReadyCheck reports whether one dependency can serve; its error says why
// not, in words an operator can act on.
type ReadyCheck func(ctx context.Context) error

// AdminConfig configures the operator endpoints.
type AdminConfig struct {
	// Checks are the dependencies /readyz reports on, by name.
	Checks map[string]ReadyCheck
	// Metrics serves /metrics; nil answers 404.
	Metrics http.Handler
	// Pprof serves net/http/pprof under /debug/pprof/. The admin port is
	// never the API port, so profiles are never public.
	Pprof bool
}

// Admin serves the operator endpoints on their own port, so probes and
// scrapes never compete with, or get exposed alongside, the API.
type Admin struct {
	checks   map[string]ReadyCheck
	names    []string
	mux      *http.ServeMux
	draining atomic.Bool
}

// NewAdmin returns the admin handler.
func NewAdmin(cfg AdminConfig) *Admin {
	a := &Admin{checks: cfg.Checks, mux: http.NewServeMux()}
	for name := range cfg.Checks {
		a.names = append(a.names, name)
	}
	slices.Sort(a.names)
	a.mux.HandleFunc("GET "+wire.HealthzPath, func(w http.ResponseWriter, r *http.Request) {
		writeBody(w, http.StatusOK, []byte(`{"status":"ok"}`))
	})
	a.mux.HandleFunc("GET "+wire.ReadyzPath, a.ready)
	if cfg.Metrics != nil {
		a.mux.Handle("GET "+wire.MetricsPath, cfg.Metrics)
	}
	if cfg.Pprof {
		a.mux.HandleFunc(wire.PprofPath, pprof.Index)
		a.mux.HandleFunc(wire.PprofPath+"cmdline", pprof.Cmdline)
		a.mux.HandleFunc(wire.PprofPath+"profile", pprof.Profile)
		a.mux.HandleFunc(wire.PprofPath+"symbol", pprof.Symbol)
		a.mux.HandleFunc(wire.PprofPath+"trace", pprof.Trace)
	}
	a.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeBody(w, http.StatusNotFound, []byte(`{"error":"not_found","message":"no such resource"}`))
	})
	return a
}

// Drain marks the process as shutting down: /readyz fails from now on so the
// load balancer stops sending new requests while in-flight ones finish.
func (a *Admin) Drain() { a.draining.Store(true) }

func (a *Admin) ServeHTTP(w http.ResponseWriter, r *http.Request) { a.mux.ServeHTTP(w, r) }

// readyTimeout bounds one /readyz call; kubelet's default probe timeout is 1s.
const readyTimeout = 900 * time.Millisecond

// maxCauseLength bounds each failing check's cause in /readyz: the body
// must stay small and must not become a way to dump upstream answers.
const maxCauseLength = 300

// ready answers 200 {"status":"ready","checks":[…]} or 503
// {"status":"not ready","failed":{"mysql":"dial tcp …: connection refused"}}.
func (a *Admin) ready(w http.ResponseWriter, r *http.Request) {
	if a.draining.Load() {
		writeBody(w, http.StatusServiceUnavailable, []byte(`{"status":"draining"}`))
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), readyTimeout)
	defer cancel()
	var failed []string // name, cause, name, cause…
	for _, name := range a.names {
		if err := a.checks[name](ctx); err != nil {
			failed = append(failed, name, wire.Truncate(err.Error(), maxCauseLength))
		}
	}
	body := []byte(`{"status":`)
	if len(failed) == 0 {
		body = append(body, `"ready","checks":[`...)
		for i, name := range a.names {
			if i > 0 {
				body = append(body, ',')
			}
			body, _ = jsontext.AppendQuote(body, name)
		}
		writeBody(w, http.StatusOK, append(body, "]}"...))
		return
	}
	body = append(body, `"not ready","failed":{`...)
	for i := 0; i < len(failed); i += 2 {
		if i > 0 {
			body = append(body, ',')
		}
		body, _ = jsontext.AppendQuote(body, failed[i])
		body = append(body, ':')
		body, _ = jsontext.AppendQuote(body, failed[i+1])
	}
	writeBody(w, http.StatusServiceUnavailable, append(body, "}}"...))
}
