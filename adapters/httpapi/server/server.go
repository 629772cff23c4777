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
	"time"

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
	// MaxConns caps open connections; 0 means no cap. At the cap,
	// connections that never sent a request header and idle keep-alive
	// ones are closed so that a new client is served rather than queued
	// behind sockets that send nothing (conns.go).
	MaxConns int
	// OnSilentClosed, when set, learns each connection closed at the cap
	// for never having sent a complete request header.
	OnSilentClosed func()
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
	conns    *connLimiter // nil without a connection cap
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
		// Under TLS, so that the slot is held from accept, handshake
		// included, and a silent connection is one that never finished
		// a request header, whether it shook hands or not.
		s.conns = newConnLimiter(ln, limits.MaxConns, limits.OnSilentClosed)
		ln = s.conns
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
	accepted, open = s.conns.stats()
	return accepted, open, true
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
