package httpin

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"
)

// Limits that keep a slow or hostile client from holding a server's
// resources. WriteTimeout must exceed the longest request budget.
type Limits struct {
	ReadHeaderTimeout time.Duration
	ReadTimeout       time.Duration
	WriteTimeout      time.Duration
	IdleTimeout       time.Duration
	MaxHeaderBytes    int
}

// DefaultLimits suits a JSON API whose requests carry no body.
func DefaultLimits() Limits {
	return Limits{
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    16 << 10, // over it, net/http answers 431
	}
}

// Server is one listening HTTP server with graceful shutdown.
type Server struct {
	name     string
	listener net.Listener
	srv      *http.Server
	log      *slog.Logger
}

// NewServer binds addr now, so a port clash fails at startup and tests can
// read the chosen port before serving. With tlsConfig set it serves TLS.
func NewServer(name, addr string, h http.Handler, limits Limits, tlsConfig *tls.Config, log *slog.Logger) (*Server, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen %s on %s: %w", name, addr, err)
	}
	if tlsConfig != nil {
		ln = tls.NewListener(ln, tlsConfig)
	}
	return &Server{
		name:     name,
		listener: ln,
		log:      log,
		srv: &http.Server{
			Handler:           h,
			ReadHeaderTimeout: limits.ReadHeaderTimeout,
			ReadTimeout:       limits.ReadTimeout,
			WriteTimeout:      limits.WriteTimeout,
			IdleTimeout:       limits.IdleTimeout,
			MaxHeaderBytes:    limits.MaxHeaderBytes,
			TLSConfig:         tlsConfig,
			ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		},
	}, nil
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
