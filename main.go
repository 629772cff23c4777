// Command trustchain serves a product catalogue through a zero-trust chain:
// one binary, three roles (A, the gateway; C; B, on MySQL), each verifying
// the caller's Auth0 token and workload identity itself. main only turns
// flags and environment into a config and hands it to package app.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/trustchain/trustchain/app"
)

// Stamped at build time with -ldflags "-X main.version=... -X main.commit=...".
var (
	version = ""
	commit  = ""
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args, os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "trustchain: "+err.Error())
		os.Exit(1)
	}
}

// run is the whole program, testable in-process: it parses args, runs the
// chosen command until ctx ends, and returns its error.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cfg := app.Defaults()
	var showVersion bool
	var demo app.DemoConfig
	var certs app.CertsConfig
	build := buildInfo()

	serveFlags := []cli.Flag{
		&cli.StringFlag{Name: "role", EnvVars: []string{"ROLE"}, Destination: &cfg.Role, Usage: "role to serve: a (gateway), b (MySQL) or c (middle hop)"},
		&cli.StringFlag{Name: "listen", EnvVars: []string{"LISTEN_ADDR"}, Value: cfg.Listen, Destination: &cfg.Listen, Usage: "API address"},
		&cli.StringFlag{Name: "admin-listen", EnvVars: []string{"ADMIN_LISTEN_ADDR"}, Value: cfg.AdminListen, Destination: &cfg.AdminListen, Usage: "admin address for /healthz, /readyz and /metrics"},
		oidcIssuerFlag(&cfg.OIDCIssuer),
		oidcAudienceFlag(&cfg.OIDCAudience),
		&cli.StringFlag{Name: "required-scope", EnvVars: []string{"REQUIRED_SCOPE"}, Destination: &cfg.RequiredScope, Usage: "scope or permission every token must grant, e.g. read:products"},
		&cli.StringFlag{Name: "upstream", EnvVars: []string{"UPSTREAM_URL"}, Destination: &cfg.Upstream, Usage: "next hop's base URL (roles a and c)"},
		&cli.DurationFlag{Name: "upstream-timeout", EnvVars: []string{"UPSTREAM_TIMEOUT"}, Destination: &cfg.UpstreamTimeout, Usage: "budget for one call to the next hop (default 8s on a, 6s on c)"},
		&cli.IntFlag{Name: "upstream-max-idle-conns", EnvVars: []string{"UPSTREAM_MAX_IDLE_CONNS"}, Value: cfg.UpstreamConns, Destination: &cfg.UpstreamConns, Usage: "keep-alive connections kept to the next hop"},
		mysqlDSNFlag(&cfg.MySQLDSN),
		&cli.IntFlag{Name: "mysql-max-open-conns", EnvVars: []string{"MYSQL_MAX_OPEN_CONNS"}, Value: cfg.MySQLMaxOpen, Destination: &cfg.MySQLMaxOpen, Usage: "MySQL connection pool size"},
		&cli.IntFlag{Name: "mysql-max-idle-conns", EnvVars: []string{"MYSQL_MAX_IDLE_CONNS"}, Value: cfg.MySQLMaxIdle, Destination: &cfg.MySQLMaxIdle, Usage: "idle MySQL connections kept"},
		&cli.DurationFlag{Name: "query-timeout", EnvVars: []string{"QUERY_TIMEOUT"}, Value: cfg.QueryTimeout, Destination: &cfg.QueryTimeout, Usage: "budget for one SQL query (role b)"},
		&cli.StringFlag{Name: "peer-auth", EnvVars: []string{"PEER_AUTH"}, Destination: &cfg.PeerAuth, Usage: "workload identity check: mtls, xfcc or off (required for roles b and c)"},
		&cli.StringSliceFlag{Name: "allow-peer", EnvVars: []string{"ALLOWED_PEERS"}, Usage: "SPIFFE IDs allowed to call (default from role, trust domain and namespace)"},
		&cli.StringFlag{Name: "trust-domain", EnvVars: []string{"TRUST_DOMAIN"}, Value: cfg.TrustDomain, Destination: &cfg.TrustDomain, Usage: "SPIFFE trust domain"},
		&cli.StringFlag{Name: "namespace", EnvVars: []string{"POD_NAMESPACE"}, Value: cfg.Namespace, Destination: &cfg.Namespace, Usage: "Kubernetes namespace of the chain"},
		&cli.StringFlag{Name: "service-account", EnvVars: []string{"SERVICE_ACCOUNT"}, Destination: &cfg.ServiceAccount, Usage: "this workload's service account (default service-<role>)"},
		&cli.StringFlag{Name: "upstream-peer", EnvVars: []string{"UPSTREAM_PEER"}, Destination: &cfg.UpstreamPeer, Usage: "SPIFFE ID the next hop must present with mtls (default from role)"},
		&cli.StringFlag{Name: "tls-cert", EnvVars: []string{"TLS_CERT"}, Destination: &cfg.TLSCert, Usage: "X.509-SVID certificate chain (PEM) for mtls"},
		&cli.StringFlag{Name: "tls-key", EnvVars: []string{"TLS_KEY"}, Destination: &cfg.TLSKey, Usage: "X.509-SVID private key (PEM) for mtls"},
		&cli.StringFlag{Name: "tls-bundle", EnvVars: []string{"TLS_BUNDLE"}, Destination: &cfg.TLSBundle, Usage: "trust bundle (PEM) for mtls"},
		&cli.StringFlag{Name: "spiffe-socket", EnvVars: []string{"SPIFFE_ENDPOINT_SOCKET"}, Destination: &cfg.SPIFFESocket, Usage: "SPIFFE Workload API address for mtls, e.g. unix:///run/spire/agent.sock"},
		&cli.DurationFlag{Name: "shutdown-timeout", EnvVars: []string{"SHUTDOWN_TIMEOUT"}, Value: cfg.ShutdownTimeout, Destination: &cfg.ShutdownTimeout, Usage: "how long in-flight requests may finish after SIGTERM"},
		&cli.StringFlag{Name: "otlp-endpoint", EnvVars: []string{"OTEL_EXPORTER_OTLP_ENDPOINT"}, Destination: &cfg.OTLPEndpoint, Usage: "OTLP/HTTP endpoint for traces; unset turns export off"},
	}
	logFlags := []cli.Flag{
		&cli.StringFlag{Name: "log-format", EnvVars: []string{"LOG_FORMAT"}, Value: cfg.LogFormat, Destination: &cfg.LogFormat, Usage: "json or text"},
		&cli.StringFlag{Name: "log-level", EnvVars: []string{"LOG_LEVEL"}, Value: cfg.LogLevel, Destination: &cfg.LogLevel, Usage: "debug, info, warn or error"},
	}
	dbFlags := []cli.Flag{mysqlDSNFlag(&cfg.MySQLDSN)}
	envOf := envIndex(serveFlags, logFlags)

	cliApp := &cli.App{
		Name:            "trustchain",
		Usage:           "serve a product catalogue through a zero-trust chain (A -> C -> B -> MySQL)",
		Writer:          stdout,
		ErrWriter:       stderr,
		HideVersion:     true,
		ExitErrHandler:  func(*cli.Context, error) {}, // run returns; main exits once
		Flags:           append(append(serveFlags, logFlags...), &cli.BoolFlag{Name: "version", Destination: &showVersion, Usage: "print version, commit and Go version"}),
		CommandNotFound: func(c *cli.Context, name string) { fmt.Fprintf(stderr, "unknown command %q\n", name) },
		Action: func(c *cli.Context) error {
			if showVersion {
				fmt.Fprintln(stdout, build.String())
				return nil
			}
			if c.Args().Present() {
				return fmt.Errorf("unknown command %q (see --help)", c.Args().First())
			}
			cfg.AllowedPeers = c.StringSlice("allow-peer")
			return app.Serve(c.Context, cfg, app.Options{Stdout: stdout, Stderr: stderr, Build: build})
		},
		Commands: []*cli.Command{
			{
				Name:  "migrate",
				Usage: "apply (up), roll back (down) or list (status) the embedded MySQL migrations",
				Flags: dbFlags,
				Subcommands: []*cli.Command{
					{Name: "up", Usage: "apply pending migrations", Flags: dbFlags, Action: func(c *cli.Context) error {
						return app.Migrate(c.Context, cfg.MySQLDSN, app.MigrateUp, stdout)
					}},
					{Name: "down", Usage: "roll back the last migration group", Flags: dbFlags, Action: func(c *cli.Context) error {
						return app.Migrate(c.Context, cfg.MySQLDSN, app.MigrateDown, stdout)
					}},
					{Name: "status", Usage: "list applied and pending migrations", Flags: dbFlags, Action: func(c *cli.Context) error {
						return app.Migrate(c.Context, cfg.MySQLDSN, app.MigrateStatus, stdout)
					}},
				},
			},
			{
				Name:  "seed",
				Usage: "load the sample catalogue into MySQL (safe to run twice)",
				Flags: dbFlags,
				Action: func(c *cli.Context) error {
					return app.Seed(c.Context, cfg.MySQLDSN, stdout)
				},
			},
			{
				Name:  "demo",
				Usage: "run the whole chain locally: a local Auth0-like issuer, A, C and B",
				Flags: []cli.Flag{
					&cli.StringFlag{Name: "listen", Value: "127.0.0.1:8080", Destination: &demo.Listen, Usage: "A's address (the one you curl)"},
					&cli.StringFlag{Name: "mysql-dsn", EnvVars: []string{"MYSQL_DSN"}, Destination: &demo.MySQLDSN, Usage: "serve B from this MySQL (migrated and seeded first) instead of memory"},
					&cli.StringFlag{Name: "peer-auth", Value: app.PeerAuthMTLS, Destination: &demo.PeerAuth, Usage: "workload identity between the hops: mtls or off"},
					&cli.BoolFlag{Name: "trace", Destination: &demo.Trace, Usage: "print each request's finished spans"},
					&cli.StringFlag{Name: "log-level", Value: "warn", Destination: &demo.LogLevel, Usage: "log level of the services"},
				},
				Action: func(c *cli.Context) error {
					return app.RunDemo(c.Context, demo, app.Options{Stdout: stdout, Stderr: stderr, Build: build})
				},
			},
			{
				Name:  "certs",
				Usage: "write a development trust bundle and one SPIFFE SVID per role",
				Flags: []cli.Flag{
					&cli.StringFlag{Name: "out", Required: true, Destination: &certs.Dir, Usage: "directory to write into (created 0700)"},
					&cli.StringFlag{Name: "trust-domain", Value: "cluster.local", Destination: &certs.TrustDomain},
					&cli.StringFlag{Name: "namespace", Value: "default", Destination: &certs.Namespace},
					&cli.DurationFlag{Name: "ttl", Value: 24 * time.Hour, Destination: &certs.TTL, Usage: "lifetime of the SVIDs"},
				},
				Action: func(c *cli.Context) error {
					return app.WriteCerts(certs, stdout)
				},
			},
		},
	}
	return explain(cliApp.RunContext(ctx, args), envOf)
}

func oidcIssuerFlag(dst *string) cli.Flag {
	return &cli.StringFlag{Name: "oidc-issuer", EnvVars: []string{"OIDC_ISSUER"}, Destination: dst, Usage: "token issuer, exactly as in iss, e.g. https://TENANT.us.auth0.com/"}
}

func oidcAudienceFlag(dst *string) cli.Flag {
	return &cli.StringFlag{Name: "oidc-audience", EnvVars: []string{"OIDC_AUDIENCE"}, Destination: dst, Usage: "the Auth0 API identifier tokens must be issued for"}
}

func mysqlDSNFlag(dst *string) cli.Flag {
	return &cli.StringFlag{Name: "mysql-dsn", EnvVars: []string{"MYSQL_DSN"}, Destination: dst, Usage: "go-sql-driver DSN, e.g. user:pass@tcp(host:3306)/trustchain (role b)"}
}

// envIndex maps each flag name to its environment variable for messages.
func envIndex(groups ...[]cli.Flag) map[string]string {
	index := map[string]string{}
	for _, flags := range groups {
		for _, f := range flags {
			if ev, ok := f.(interface{ GetEnvVars() []string }); ok && len(ev.GetEnvVars()) > 0 {
				index[f.Names()[0]] = ev.GetEnvVars()[0]
			}
		}
	}
	return index
}

// explain rewrites a config error with one line per problem, each naming
// the flag and its environment variable.
func explain(err error, envOf map[string]string) error {
	var cfgErr *app.ConfigError
	if !errors.As(err, &cfgErr) {
		return err
	}
	lines := make([]string, 0, len(cfgErr.Problems))
	for _, p := range cfgErr.Problems {
		name := "--" + p.Flag
		if env := envOf[p.Flag]; env != "" {
			name += " [" + env + "]"
		}
		lines = append(lines, "  "+name+": "+p.Message)
	}
	return fmt.Errorf("invalid configuration:\n%s", strings.Join(lines, "\n"))
}

// buildInfo reads the version stamped by -ldflags or, for `go install`/`go
// run`, the module and VCS data the Go toolchain records.
func buildInfo() app.BuildInfo {
	b := app.BuildInfo{Version: version, Commit: commit}
	if info, ok := debug.ReadBuildInfo(); ok {
		b.GoVersion = info.GoVersion
		if b.Version == "" {
			b.Version = info.Main.Version
		}
		for _, s := range info.Settings {
			if s.Key == "vcs.revision" && b.Commit == "" {
				b.Commit = s.Value
			}
		}
	}
	if b.Version == "" || b.Version == "(devel)" {
		b.Version = "dev"
	}
	if b.Commit == "" {
		b.Commit = "unknown"
	}
	return b
}
