package app

import (
	"fmt"
	"maps"
	"net"
	"net/url"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/go-playground/validator/v10"
	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/trustchain/trustchain/adapters/flagcheck"
	"github.com/trustchain/trustchain/adapters/oidc"
	"github.com/trustchain/trustchain/domain"
)

// Peer-authentication modes.
const (
	PeerAuthMTLS = "mtls" // native SPIFFE mTLS, no mesh
	PeerAuthXFCC = "xfcc" // behind an Istio proxy that writes XFCC
	PeerAuthOff  = "off"
)

// Config is everything a role needs. Each field's tags are its whole
// definition: `flag` and `env` name it on the command line and in the
// environment, `usage` explains it in --help, `validate` checks it, and
// `for` marks a setting only some roles use ("upstream": the roles that
// call another; "store": the role that reads the store; "edge": the role
// the ingress calls). main derives the
// command-line flags from these tags, and every problem names the flag.
type Config struct {
	Role        string `flag:"role" env:"ROLE" usage:"role to serve: a (gateway), c (middle hop) or b (reads MySQL)" validate:"required,role"`
	Listen      string `flag:"listen" env:"LISTEN_ADDR" usage:"API address" validate:"required,listen_addr"`
	AdminListen string `flag:"admin-listen" env:"ADMIN_LISTEN_ADDR" usage:"admin address for /healthz, /readyz, /metrics (and /debug/pprof/ with --pprof)" validate:"required,listen_addr"`

	OIDCIssuer     string `flag:"oidc-issuer" env:"OIDC_ISSUER" usage:"token issuer, exactly as in iss, e.g. https://TENANT.us.auth0.com/" validate:"required,no_userinfo,issuer_url"`
	OIDCAudience   string `flag:"oidc-audience" env:"OIDC_AUDIENCE" usage:"the Auth0 API identifier tokens must be issued for" validate:"required"`
	RequiredScope  string `flag:"required-scope" env:"REQUIRED_SCOPE" usage:"scope or permission every token must grant, e.g. read:products" validate:"omitempty,excludesall= "`
	TokenCacheSize int    `flag:"token-cache-size" env:"TOKEN_CACHE_SIZE" usage:"verified tokens remembered, so a token is checked in full once per hop; 0 turns the cache off" validate:"gte=0,lte=1000000"`

	ScopeClaims  []string      `flag:"scope-claims" env:"SCOPE_CLAIMS" usage:"claims that carry granted scopes, each a space-delimited string or an array of strings" validate:"min=1,dive,required"`
	RequireATJWT bool          `flag:"require-at-jwt" env:"REQUIRE_AT_JWT" usage:"refuse tokens whose typ is not at+jwt (RFC 9068)"`
	ClockSkew    time.Duration `flag:"clock-skew" env:"CLOCK_SKEW" usage:"leeway on a token's exp and nbf, the same for both" validate:"gte=0,lte=5m"`
	SigningAlgs  []string      `flag:"signing-algs" env:"SIGNING_ALGS" usage:"algorithms tokens may be signed with: RS256/384/512, PS256/384/512, ES256/384/512, EdDSA" validate:"min=1,dive,oneof=RS256 RS384 RS512 PS256 PS384 PS512 ES256 ES384 ES512 EdDSA"`
	JWKSRefresh  time.Duration `flag:"jwks-refresh" env:"JWKS_REFRESH" usage:"how often the issuer's keys are refetched, so a removed key stops being trusted" validate:"gte=10s,lte=24h"`
	DPoP         string        `flag:"dpop" env:"DPOP" for:"edge" usage:"DPoP (RFC 9449): off, allowed (a cnf-bound token needs its proof; others may come as Bearer) or required" validate:"oneof=off allowed required"`
	PublicURL    string        `flag:"public-url" env:"PUBLIC_URL" for:"edge" usage:"the edge's URL as clients reach it, which DPoP proofs name (default: each request's own scheme and Host)" validate:"omitempty,no_userinfo,http_url"`
	DPoPMaxAge   time.Duration `flag:"dpop-max-age" env:"DPOP_MAX_AGE" for:"edge" usage:"how old a DPoP proof may be" validate:"gt=0,lte=10m"`
	DPoPNonce    string        `flag:"dpop-nonce" env:"DPOP_NONCE" for:"edge" usage:"secret (32+ bytes) the edge's replicas share; set, every DPoP proof must carry a current server nonce" validate:"omitempty,secret"`

	Upstream        string        `flag:"upstream" env:"UPSTREAM_URL" for:"upstream" usage:"next hop's base URL" validate:"omitempty,no_userinfo,http_url"`
	UpstreamTimeout time.Duration `flag:"upstream-timeout" env:"UPSTREAM_TIMEOUT" for:"upstream" usage:"budget for one call to the next hop" validate:"gte=0,lte=10m"`
	UpstreamConns   int           `flag:"upstream-max-idle-conns" env:"UPSTREAM_MAX_IDLE_CONNS" for:"upstream" usage:"keep-alive connections kept to the next hop" validate:"gte=1,lte=10000"`

	MySQLDSN     string        `flag:"mysql-dsn" env:"MYSQL_DSN" for:"store" usage:"go-sql-driver DSN, e.g. user:pass@tcp(host:3306)/trustchain"`
	MySQLMaxOpen int           `flag:"mysql-max-open-conns" env:"MYSQL_MAX_OPEN_CONNS" for:"store" usage:"MySQL connection pool size" validate:"gte=1,lte=1000"`
	MySQLMaxIdle int           `flag:"mysql-max-idle-conns" env:"MYSQL_MAX_IDLE_CONNS" for:"store" usage:"idle MySQL connections kept" validate:"gte=0,ltefield=MySQLMaxOpen"`
	QueryTimeout time.Duration `flag:"query-timeout" env:"QUERY_TIMEOUT" for:"store" usage:"budget for one SQL query" validate:"gt=0,lte=10m"`

	PageSize    int `flag:"page-size" env:"PAGE_SIZE" usage:"products per page when a request names no limit" validate:"gte=1,ltefield=MaxPageSize"`
	MaxPageSize int `flag:"max-page-size" env:"MAX_PAGE_SIZE" usage:"largest limit a request may ask for" validate:"gte=1,max_page"`
	MaxConns    int `flag:"max-connections" env:"MAX_CONNECTIONS" usage:"open connections the API port accepts; 0 derives it from the open-file limit" validate:"gte=0,lte=1000000"`
	MaxInflight int `flag:"max-inflight" env:"MAX_INFLIGHT" usage:"requests for the largest page served at once before more are refused with 503; 0 derives it from the memory limit" validate:"gte=0,lte=100000"`

	PeerAuth           string   `flag:"peer-auth" env:"PEER_AUTH" usage:"workload identity check: mtls, xfcc or off (required for roles c and b)" validate:"omitempty,oneof=mtls xfcc off"`
	AllowedPeers       []string `flag:"allow-peer" env:"ALLOWED_PEERS" usage:"SPIFFE IDs allowed to call (default: the role's caller, from the chain)" validate:"dive,spiffe_id"`
	TrustDomain        string   `flag:"trust-domain" env:"TRUST_DOMAIN" usage:"SPIFFE trust domain" validate:"required,trust_domain"`
	Namespace          string   `flag:"namespace" env:"POD_NAMESPACE" usage:"Kubernetes namespace of the chain" validate:"required,dns_rfc1035_label"`
	ServiceAccount     string   `flag:"service-account" env:"SERVICE_ACCOUNT" usage:"this workload's service account (default: the role's, from the chain)" validate:"omitempty,dns_rfc1035_label"`
	UpstreamPeer       string   `flag:"upstream-peer" env:"UPSTREAM_PEER" for:"upstream" usage:"SPIFFE ID the next hop must present with mtls (default: from the chain)" validate:"omitempty,spiffe_id"`
	XFCCTrustedProxies []string `flag:"xfcc-trusted-proxy" env:"XFCC_TRUSTED_PROXIES" usage:"SPIFFE IDs allowed in XFCC By= (default: this workload; in ambient mode, its waypoint)" validate:"dive,spiffe_id"`
	TLSCert            string   `flag:"tls-cert" env:"TLS_CERT" usage:"X.509-SVID certificate chain (PEM) for mtls"`
	TLSKey             string   `flag:"tls-key" env:"TLS_KEY" usage:"X.509-SVID private key (PEM) for mtls"`
	TLSBundle          string   `flag:"tls-bundle" env:"TLS_BUNDLE" usage:"trust bundle (PEM) for mtls"`
	SPIFFESocket       string   `flag:"spiffe-socket" env:"SPIFFE_ENDPOINT_SOCKET" usage:"SPIFFE Workload API address for mtls, e.g. unix:///run/spire/agent.sock"`

	ShutdownTimeout time.Duration `flag:"shutdown-timeout" env:"SHUTDOWN_TIMEOUT" usage:"how long in-flight requests may finish after SIGTERM" validate:"gt=0,lte=10m"`
	LogFormat       string        `flag:"log-format" env:"LOG_FORMAT" usage:"json or text" validate:"oneof=json text"`
	LogLevel        string        `flag:"log-level" env:"LOG_LEVEL" usage:"debug, info, warn or error" validate:"log_level"`
	Pprof           bool          `flag:"pprof" env:"PPROF" usage:"serve net/http/pprof at /debug/pprof/ on the admin port (never the API port)"`

	OTLPEndpoint       string `flag:"otlp-endpoint" env:"OTEL_EXPORTER_OTLP_ENDPOINT" usage:"OTLP collector base URL for traces; unset (and no traces endpoint) turns export off" validate:"omitempty,http_url"`
	OTLPTracesEndpoint string `flag:"otlp-traces-endpoint" env:"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT" usage:"OTLP traces URL, used as it is" validate:"omitempty,http_url"`
	OTLPProtocol       string `flag:"otlp-protocol" env:"OTEL_EXPORTER_OTLP_PROTOCOL" usage:"http/protobuf or grpc" validate:"oneof=http/protobuf grpc"`
	TracesSampler      string `flag:"traces-sampler" env:"OTEL_TRACES_SAMPLER" usage:"always_on, always_off, traceidratio, parentbased_always_on, parentbased_always_off or parentbased_traceidratio" validate:"oneof=always_on always_off traceidratio parentbased_always_on parentbased_always_off parentbased_traceidratio"`
	TracesSamplerArg   string `flag:"traces-sampler-arg" env:"OTEL_TRACES_SAMPLER_ARG" usage:"sampling ratio for the traceidratio samplers, 0 to 1" validate:"omitempty,ratio"`
	OTelServiceName    string `flag:"otel-service-name" env:"OTEL_SERVICE_NAME" usage:"service.name of spans (default service-<role>)"`
	OTelResourceAttrs  string `flag:"otel-resource-attributes" env:"OTEL_RESOURCE_ATTRIBUTES" usage:"extra resource attributes of spans, key=value,…"`

	// CommandLine holds the flags given on the command line, as opposed to
	// the environment. A setting the role does not use is refused there,
	// and only warned about when it comes from an environment shared by
	// every role.
	CommandLine map[string]bool `flag:"-"`
}

// Defaults returns the configuration every flag starts from.
func Defaults() Config {
	b, _ := domain.HopOf(domain.RoleB)
	return Config{
		Listen:          DefaultListenAddr,
		AdminListen:     DefaultAdminListenAddr,
		TokenCacheSize:  10_000,
		ScopeClaims:     oidc.DefaultScopeClaims(),
		SigningAlgs:     []string{"RS256"},
		JWKSRefresh:     10 * time.Minute,
		DPoP:            "allowed",
		DPoPMaxAge:      time.Minute,
		UpstreamConns:   64,
		MySQLMaxOpen:    20,
		MySQLMaxIdle:    20, // as many as open: a burst must not close and reopen connections
		QueryTimeout:    b.Budget,
		PageSize:        100,
		MaxPageSize:     1000,
		TrustDomain:     "cluster.local",
		Namespace:       "default",
		ShutdownTimeout: 15 * time.Second,
		LogFormat:       "json",
		LogLevel:        "info",
		OTLPProtocol:    "http/protobuf",
		TracesSampler:   "parentbased_always_on",
	}
}

// DefaultText is --help's default for a flag whose default depends on the
// role, or "" for the others.
func DefaultText(flag string) string {
	if flag != "upstream-timeout" {
		return ""
	}
	var parts []string
	for _, h := range domain.Chain() {
		if !h.ReadsStore() {
			parts = append(parts, fmt.Sprintf("%s on %s", h.Budget, h.Role))
		}
	}
	return strings.Join(parts, ", ")
}

// hop is the configured role's row of the chain.
func (c Config) hop() domain.Hop {
	h, _ := domain.HopOf(domain.Role(c.Role))
	return h
}

// EffectiveUpstreamTimeout is the configured budget or the role's own.
func (c Config) EffectiveUpstreamTimeout() time.Duration {
	if c.UpstreamTimeout > 0 {
		return c.UpstreamTimeout
	}
	return c.hop().Budget
}

// budget is the longest the role's own work may take: the call to the next
// hop, or the query on the store.
func (c Config) budget() time.Duration {
	if c.hop().ReadsStore() {
		return c.QueryTimeout
	}
	return c.EffectiveUpstreamTimeout()
}

// Problem is one invalid setting.
type Problem struct {
	Flag    string // the flag's name, without dashes
	Message string
}

// ConfigError lists every invalid setting at once.
type ConfigError struct{ Problems []Problem }

func (e *ConfigError) Error() string {
	lines := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		lines[i] = "--" + p.Flag + ": " + p.Message
	}
	return "invalid configuration:\n" + strings.Join(lines, "\n")
}

// configFlags maps each Config field to its flag tag, once.
var configFlags = func() map[string]reflect.StructField {
	out := map[string]reflect.StructField{}
	t := reflect.TypeFor[Config]()
	for i := range t.NumField() {
		f := t.Field(i)
		if name := f.Tag.Get("flag"); name != "" && name != "-" {
			out[name] = f
		}
	}
	return out
}()

// validate checks c for a role whose parts deps supplies, and returns the
// warnings to log once the logger exists, or a *ConfigError naming every bad
// flag. A setting the role does not use is cleared: refused when it was
// given on the command line, a warning when it came from the environment.
func (c *Config) validate(deps Deps) (warnings []string, err error) {
	problems, err := flagcheck.Check[Problem](configValidator, c)
	if err != nil {
		return nil, err
	}
	if _, ok := domain.HopOf(domain.Role(c.Role)); ok {
		p, w := c.unusedSettings()
		problems, warnings = append(problems, p...), w
		problems = append(problems, c.roleProblems(deps)...)
	}
	problems = append(problems, c.crossFieldProblems(deps)...)
	if len(problems) > 0 {
		return nil, &ConfigError{Problems: problems}
	}
	return warnings, nil
}

// unusedSettings clears the settings of other roles (`for` tags).
func (c *Config) unusedSettings() (problems []Problem, warnings []string) {
	h := c.hop()
	v, def := reflect.ValueOf(c).Elem(), reflect.ValueOf(Defaults())
	for _, name := range slices.Sorted(maps.Keys(configFlags)) {
		f := configFlags[name]
		group := f.Tag.Get("for")
		if group == "" || groupUses(h, group) {
			continue
		}
		field := v.FieldByIndex(f.Index)
		if reflect.DeepEqual(field.Interface(), def.FieldByIndex(f.Index).Interface()) {
			continue
		}
		message := "used only by " + rolesUsing(group)
		if c.CommandLine[name] {
			problems = append(problems, Problem{name, message})
			continue
		}
		warnings = append(warnings, fmt.Sprintf("%s is set in the environment but role %s does not use it (%s); ignored", f.Tag.Get("env"), c.Role, message))
		field.Set(def.FieldByIndex(f.Index))
	}
	return problems, warnings
}

// groupUses reports whether hop h uses the settings of a `for` group.
func groupUses(h domain.Hop, group string) bool {
	return map[string]bool{"upstream": !h.ReadsStore(), "store": h.ReadsStore(), "edge": h.IsEdge()}[group]
}

// rolesUsing names the roles a `for` group applies to, from the chain.
func rolesUsing(group string) string {
	var roles []string
	for _, h := range domain.Chain() {
		if groupUses(h, group) {
			roles = append(roles, string(h.Role))
		}
	}
	if len(roles) == 1 {
		return "role " + roles[0]
	}
	return "roles " + strings.Join(roles, ", ")
}

// roleProblems holds the rules that follow from the role's row.
func (c Config) roleProblems(deps Deps) []Problem {
	var problems []Problem
	h := c.hop()
	if !h.ReadsStore() && c.Upstream == "" {
		problems = append(problems, Problem{"upstream", "is required for role " + c.Role})
	}
	if h.ReadsStore() && c.MySQLDSN == "" && deps.Source == nil {
		problems = append(problems, Problem{"mysql-dsn", "is required for role " + c.Role})
	}
	if !h.IsEdge() && c.PeerAuth == "" {
		problems = append(problems, Problem{"peer-auth", "is required for role " + c.Role})
	}
	if c.ShutdownTimeout > 0 && c.ShutdownTimeout < c.budget() {
		flag := "upstream-timeout"
		if h.ReadsStore() {
			flag = "query-timeout"
		}
		problems = append(problems, Problem{"shutdown-timeout", fmt.Sprintf("%s is shorter than the role's budget (--%s %s): a request in flight at SIGTERM could not finish", c.ShutdownTimeout, flag, c.budget())})
	}
	return problems
}

// mtlsIdentityProblems: with mtls, the identity comes from the three files
// or from the Workload API, never both and never neither.
func (c Config) mtlsIdentityProblems() []Problem {
	files := c.TLSCert != "" || c.TLSKey != "" || c.TLSBundle != ""
	switch {
	case files && c.SPIFFESocket != "":
		return []Problem{{"spiffe-socket", "use either the Workload API socket or --tls-cert/--tls-key/--tls-bundle, not both"}}
	case files:
		var problems []Problem
		for _, flag := range []string{"tls-cert", "tls-key", "tls-bundle"} {
			if reflect.ValueOf(c).FieldByIndex(configFlags[flag].Index).String() == "" {
				problems = append(problems, Problem{flag, "required with --peer-auth=mtls when identity comes from files"})
			}
		}
		return problems
	case c.SPIFFESocket == "":
		return []Problem{{"peer-auth", "mtls needs an identity: --tls-cert, --tls-key and --tls-bundle, or --spiffe-socket"}}
	}
	return nil
}

// crossFieldProblems holds the rules that tags cannot say clearly.
func (c Config) crossFieldProblems(deps Deps) []Problem {
	var problems []Problem
	if c.Listen == c.AdminListen && !strings.HasSuffix(c.Listen, ":0") {
		problems = append(problems, Problem{"admin-listen", "must differ from --listen: the admin endpoints never share the API port"})
	}
	if c.PeerAuth == PeerAuthMTLS && deps.Identity == nil {
		problems = append(problems, c.mtlsIdentityProblems()...)
	}
	if c.DPoPNonce != "" && c.DPoP == "off" {
		problems = append(problems, Problem{"dpop-nonce", "needs --dpop allowed or required"})
	}
	if c.PeerAuth == PeerAuthMTLS && c.Upstream != "" && !strings.HasPrefix(c.Upstream, "https://") {
		problems = append(problems, Problem{"upstream", "must be an https:// URL with --peer-auth=mtls"})
	}
	return problems
}

var configValidator = newValidator()

func newValidator() *validator.Validate {
	v := validator.New(validator.WithRequiredStructEnabled())
	v.RegisterTagNameFunc(func(f reflect.StructField) string { return f.Tag.Get("flag") })
	rules := map[string]func(string) bool{
		"role": func(s string) bool {
			_, ok := domain.HopOf(domain.Role(s))
			return ok
		},
		"listen_addr": func(s string) bool {
			_, port, err := net.SplitHostPort(s)
			n, perr := strconv.Atoi(port)
			return err == nil && perr == nil && n >= 0 && n <= 65535
		},
		"issuer_url":  issuerURLOK,
		"no_userinfo": func(s string) bool { u, err := url.Parse(s); return err != nil || u.User == nil },
		"spiffe_id": func(s string) bool {
			_, err := spiffeid.FromString(s)
			return err == nil
		},
		"trust_domain": func(s string) bool {
			_, err := spiffeid.TrustDomainFromString(s)
			return err == nil
		},
		"log_level": func(s string) bool { return parseLevel(s) == nil },
		"secret":    func(s string) bool { return len(s) >= 32 },
		// The SDK would read a bad OTEL_TRACES_SAMPLER_ARG as 1 and only
		// log it: refuse it here instead.
		"ratio":    func(s string) bool { r, err := strconv.ParseFloat(s, 64); return err == nil && r >= 0 && r <= 1 },
		"max_page": func(s string) bool { n, err := strconv.Atoi(s); return err == nil && n <= domain.MaxPageLimit },
	}
	for tag, ok := range rules {
		must(v.RegisterValidation(tag, func(fl validator.FieldLevel) bool {
			return ok(fmt.Sprint(fl.Field().Interface()))
		}))
	}
	return v
}

// issuerURLOK accepts https issuers, and plain http only on loopback (the
// demo's and the tests' local issuer): tokens' keys must not travel in clear.
func issuerURLOK(s string) bool {
	u, err := url.Parse(s)
	if err != nil || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		return false
	}
	switch u.Scheme {
	case "https":
		return true
	case "http":
		return domain.IsLoopbackHost(u.Hostname())
	}
	return false
}

func must(err error) {
	if err != nil {
		panic(err) // only for registering the validators above
	}
}
