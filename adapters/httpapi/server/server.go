package server

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"golang.org/x/net/netutil"

	"github.com/trustchain/trustchain/domain"
)

// Limits keep a slow or hostile client from holding a server's resources.
type Limits struct {
	ReadHeaderTimeout time.Duration
	ReadTimeout       time.Duration
	// WriteTimeout must cover the longest answer: the hop's budget and
	// the time to write the body.
	WriteTimeout time.Duration
	IdleTimeout  time.Duration
	// MaxHeaderBytes caps a request's head: the request line, the header
	// lines and the blank line after them. Over it the answer is 431.
	MaxHeaderBytes int
	// MaxConns caps open connections; 0 means no cap. At the cap, idle
	// keep-alive connections are closed so that a new client is served
	// rather than queued behind sockets that send nothing.
	MaxConns int
}

// MaxRequestHead is the default cap on a request's head, 16 KiB.
const MaxRequestHead = 16 << 10

// netHTTPReadSlack is what net/http adds to Server.MaxHeaderBytes before it
// stops reading a request's head (room for bufio's read-ahead); it is
// taken off again so the cap is exactly Limits.MaxHeaderBytes.
const netHTTPReadSlack = 4096

// netHTTPMaxHeaderBytes is the Server.MaxHeaderBytes that makes net/http
// stop at a head of limit bytes. A limit within the slack cannot be
// honoured exactly and gets net/http's smallest; 0 keeps its default.
func netHTTPMaxHeaderBytes(limit int) int {
	if limit <= 0 {
		return 0
	}
	return max(limit-netHTTPReadSlack, 1)
}

// writeSlack is what a server's write timeout adds to its budget: time to
// encode and send a full page after the last byte of work.
const writeSlack = 5 * time.Second

// DefaultLimits suits a JSON API whose requests carry no body and whose
// work takes at most budget.
func DefaultLimits(budget time.Duration) Limits {
	return Limits{
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      budget + writeSlack,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    MaxRequestHead,
	}
}

// Server is one listening HTTP server with graceful shutdown.
type Server struct {
	name     string
	listener net.Listener
	srv      *http.Server
	log      *slog.Logger
	conns    *connTracker // nil without a connection cap
}

// NewServer binds addr now, so a port clash fails at startup and tests can
// read the chosen port before serving. With tlsConfig set it serves TLS.
func NewServer(name, addr string, h http.Handler, limits Limits, tlsConfig *tls.Config, log *slog.Logger) (*Server, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen %s on %s: %w", name, addr, err)
	}
	s := &Server{name: name, log: log}
	s.srv = &http.Server{
		Handler:           h,
		ReadHeaderTimeout: limits.ReadHeaderTimeout,
		ReadTimeout:       limits.ReadTimeout,
		WriteTimeout:      limits.WriteTimeout,
		IdleTimeout:       limits.IdleTimeout,
		MaxHeaderBytes:    netHTTPMaxHeaderBytes(limits.MaxHeaderBytes),
		TLSConfig:         tlsConfig,
		// OPTIONS * reaches the handler, which answers it with a request
		// id and a log line like any other request.
		DisableGeneralOptionsHandler: true,
		ErrorLog:                     slog.NewLogLogger(quietPeerRefusals{log.Handler()}, slog.LevelWarn),
	}
	if limits.MaxConns > 0 {
		ln = netutil.LimitListener(ln, limits.MaxConns)
		s.conns = &connTracker{max: limits.MaxConns, idle: map[net.Conn]struct{}{}}
		s.srv.ConnState = s.conns.track
	}
	if tlsConfig != nil {
		ln = tls.NewListener(ln, tlsConfig)
	} else {
		ln = refusalListener{Listener: ln, server: name, log: log, maxHead: limits.MaxHeaderBytes}
	}
	s.listener = ln
	return s, nil
}

// Connections reports the connections this server has accepted since it
// started and how many are open now; ok is false for a server without a
// connection cap, which does not count them. A count of accepted ones that
// grows with the requests means the callers are not keeping connections
// alive.
func (s *Server) Connections() (accepted uint64, open int, ok bool) {
	if s.conns == nil {
		return 0, 0, false
	}
	s.conns.mu.Lock()
	defer s.conns.mu.Unlock()
	return s.conns.opened, s.conns.open, true
}

// Addr is the bound address, e.g. 127.0.0.1:41234.
func (s *Server) Addr() string { return s.listener.Addr().String() }

// Run serves until ctx is done, then stops accepting and gives in-flight
// requests up to drain to finish.
func (s *Server) Run(ctx context.Context, drain time.Duration) error {
	errc := make(chan error, 1)
	go func() { errc <- s.srv.Serve(s.listener) }()
	s.log.Info("listening", slog.String("server", s.name), slog.String("addr", s.Addr()))

	select {
	case err := <-errc:
		return fmt.Errorf("serve %s: %w", s.name, err)
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), drain)
	defer cancel()
	if err := s.srv.Shutdown(shutdownCtx); err != nil {
		_ = s.srv.Close()
		return fmt.Errorf("shut down %s: %w", s.name, err)
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve %s: %w", s.name, err)
	}
	return nil
}

// Close stops the server at once; Run's graceful path makes it a no-op.
func (s *Server) Close() error {
	err := s.srv.Close()
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// SetHandler sets the handler before Run, for a server whose handler needs
// the bound address (the demo's issuer).
func (s *Server) SetHandler(h http.Handler) { s.srv.Handler = h }

// connTracker counts a capped server's connections and sheds idle
// keep-alive ones when the cap is reached. netutil's LimitListener makes
// Accept wait for a free slot; without shedding, a crowd of idle sockets
// would hold every slot until the idle timeout while real clients queue.
type connTracker struct {
	max int

	mu     sync.Mutex
	open   int
	opened uint64
	idle   map[net.Conn]struct{}
}

func (t *connTracker) track(c net.Conn, state http.ConnState) {
	t.mu.Lock()
	switch state {
	case http.StateNew:
		t.open++
		t.opened++
	case http.StateIdle:
		t.idle[c] = struct{}{}
	case http.StateActive:
		delete(t.idle, c)
	case http.StateClosed, http.StateHijacked:
		t.open--
		delete(t.idle, c)
	}
	var shed []net.Conn
	if t.open >= t.max {
		// Full: idle connections go, so the clients waiting in Accept get
		// their slots; while the server stays full, a connection that
		// turns idle goes at once. A client whose idle connection is
		// closed dials again; Go and curl retry an idempotent request on
		// a reused connection the server closed.
		for ic := range t.idle {
			shed = append(shed, ic)
			delete(t.idle, ic)
		}
	}
	t.mu.Unlock()
	for _, ic := range shed {
		_ = ic.Close()
	}
}

// quietPeerRefusals drops net/http's free-text "TLS handshake error" line
// for a caller the workload allow-list refused: the TLS verification hook
// has already counted it and logged it once, structured, with the caller's
// SPIFFE ID.
type quietPeerRefusals struct{ slog.Handler }

func (h quietPeerRefusals) Handle(ctx context.Context, r slog.Record) error {
	if strings.Contains(r.Message, domain.ErrPeerForbidden.Error()) {
		return nil
	}
	return h.Handler.Handle(ctx, r)
}

func (h quietPeerRefusals) WithAttrs(attrs []slog.Attr) slog.Handler {
	return quietPeerRefusals{h.Handler.WithAttrs(attrs)}
}

func (h quietPeerRefusals) WithGroup(name string) slog.Handler {
	return quietPeerRefusals{h.Handler.WithGroup(name)}
}
