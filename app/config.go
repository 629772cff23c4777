package app

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/go-playground/validator/v10"
)

// Roles.
const (
	RoleA = "a" // the gateway, behind the ingress
	RoleB = "b" // reads the products from MySQL
	RoleC = "c" // the middle hop
)

// Peer-authentication modes.
const (
	PeerAuthMTLS = "mtls" // native SPIFFE mTLS, no mesh
	PeerAuthXFCC = "xfcc" // behind an Istio sidecar
	PeerAuthOff  = "off"
)

// Config is everything a role needs, filled from flags and env by main and
// checked by Validate before anything starts. The flag tag names the
// command-line flag each field comes from, so every problem can name it.
type Config struct {
	Role        string `flag:"role" validate:"required,oneof=a b c"`
	Listen      string `flag:"listen" validate:"required,listen_addr"`
	AdminListen string `flag:"admin-listen" validate:"required,listen_addr"`

	OIDCIssuer    string `flag:"oidc-issuer" validate:"required,issuer_url"`
	OIDCAudience  string `flag:"oidc-audience" validate:"required"`
	RequiredScope string `flag:"required-scope" validate:"omitempty,excludesall= "`

	Upstream        string        `flag:"upstream" validate:"required_if=Role a,required_if=Role c,omitempty,http_url"`
	UpstreamTimeout time.Duration `flag:"upstream-timeout" validate:"gte=0"`
	UpstreamConns   int           `flag:"upstream-max-idle-conns" validate:"gte=1,lte=10000"`

	MySQLDSN     string        `flag:"mysql-dsn"`
	MySQLMaxOpen int           `flag:"mysql-max-open-conns" validate:"gte=1,lte=1000"`
	MySQLMaxIdle int           `flag:"mysql-max-idle-conns" validate:"gte=0,ltefield=MySQLMaxOpen"`
	QueryTimeout time.Duration `flag:"query-timeout" validate:"gt=0"`

	PeerAuth       string   `flag:"peer-auth" validate:"required_if=Role b,required_if=Role c,omitempty,oneof=mtls xfcc off"`
	AllowedPeers   []string `flag:"allow-peer" validate:"dive,spiffe_id"`
	TrustDomain    string   `flag:"trust-domain" validate:"required,hostname_rfc1123"`
	Namespace      string   `flag:"namespace" validate:"required,dns_rfc1035_label"`
	ServiceAccount string   `flag:"service-account" validate:"omitempty,dns_rfc1035_label"`
	UpstreamPeer   string   `flag:"upstream-peer" validate:"omitempty,spiffe_id"`
	TLSCert        string   `flag:"tls-cert"`
	TLSKey         string   `flag:"tls-key"`
	TLSBundle      string   `flag:"tls-bundle"`
	SPIFFESocket   string   `flag:"spiffe-socket"`

	ShutdownTimeout time.Duration `flag:"shutdown-timeout" validate:"gt=0"`
	LogFormat       string        `flag:"log-format" validate:"oneof=json text"`
	LogLevel        string        `flag:"log-level" validate:"oneof=debug info warn error"`

	// OTLPEndpoint comes from the standard OTEL_EXPORTER_OTLP_ENDPOINT;
	// empty turns tracing export off.
	OTLPEndpoint string `flag:"otlp-endpoint"`
}

// Defaults returns the configuration every flag starts from.
func Defaults() Config {
	return Config{
		Listen:          DefaultListenAddr,
		AdminListen:     DefaultAdminListenAddr,
		UpstreamConns:   64,
		MySQLMaxOpen:    20,
		MySQLMaxIdle:    10,
		QueryTimeout:    3 * time.Second,
		TrustDomain:     "cluster.local",
		Namespace:       "default",
		ShutdownTimeout: 15 * time.Second,
		LogFormat:       "json",
		LogLevel:        "info",
	}
}

// Default per-hop budgets. Each hop's budget is shorter than the one above
// it, so a slow B surfaces as C's 504, passed up as A's 504, never a hang.
const (
	defaultUpstreamTimeoutA = 8 * time.Second
	defaultUpstreamTimeoutC = 6 * time.Second
)

// EffectiveUpstreamTimeout is the configured budget or the role's default.
func (c Config) EffectiveUpstreamTimeout() time.Duration {
	switch {
	case c.UpstreamTimeout > 0:
		return c.UpstreamTimeout
	case c.Role == RoleA:
		return defaultUpstreamTimeoutA
	default:
		return defaultUpstreamTimeoutC
	}
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

// Validate checks c and returns a *ConfigError naming every bad flag.
func (c Config) Validate() error { return c.validate(needs{store: true, identity: true}) }

// needs says which external resources the config must point at; the demo
// and tests supply an in-memory store or identity instead.
type needs struct{ store, identity bool }

func (c Config) validate(n needs) error {
	var problems []Problem
	if err := configValidator.Struct(c); err != nil {
		var fieldErrs validator.ValidationErrors
		if !errors.As(err, &fieldErrs) {
			return fmt.Errorf("validate config: %w", err)
		}
		for _, fe := range fieldErrs {
			problems = append(problems, Problem{Flag: flagName(fe), Message: describe(fe)})
		}
	}
	problems = append(problems, c.crossFieldProblems(n)...)
	if len(problems) > 0 {
		return &ConfigError{Problems: problems}
	}
	return nil
}

// crossFieldProblems holds the rules that tags cannot say clearly.
func (c Config) crossFieldProblems(n needs) []Problem {
	var problems []Problem
	if c.Listen == c.AdminListen && !strings.HasSuffix(c.Listen, ":0") {
		problems = append(problems, Problem{"admin-listen", "must differ from --listen: the admin endpoints never share the API port"})
	}
	if c.Role == RoleB && c.MySQLDSN == "" && n.store {
		problems = append(problems, Problem{"mysql-dsn", "is required for role b"})
	}
	if c.Role == RoleB && c.Upstream != "" {
		problems = append(problems, Problem{"upstream", "role b reads MySQL and has no upstream"})
	}
	if c.Role != RoleB && c.MySQLDSN != "" && c.Role != "" {
		problems = append(problems, Problem{"mysql-dsn", "only role b reads MySQL"})
	}
	if c.PeerAuth == PeerAuthMTLS && n.identity {
		files := c.TLSCert != "" || c.TLSKey != "" || c.TLSBundle != ""
		switch {
		case files && c.SPIFFESocket != "":
			problems = append(problems, Problem{"spiffe-socket", "use either the Workload API socket or --tls-cert/--tls-key/--tls-bundle, not both"})
		case files:
			for flag, v := range map[string]string{"tls-cert": c.TLSCert, "tls-key": c.TLSKey, "tls-bundle": c.TLSBundle} {
				if v == "" {
					problems = append(problems, Problem{flag, "required with --peer-auth=mtls when identity comes from files"})
				}
			}
		case c.SPIFFESocket == "":
			problems = append(problems, Problem{"peer-auth", "mtls needs an identity: --tls-cert, --tls-key and --tls-bundle, or --spiffe-socket"})
		}
	}
	if c.PeerAuth == PeerAuthMTLS {
		if c.Upstream != "" && !strings.HasPrefix(c.Upstream, "https://") {
			problems = append(problems, Problem{"upstream", "must be an https:// URL with --peer-auth=mtls"})
		}
	}
	return problems
}

var configValidator = newValidator()

func newValidator() *validator.Validate {
	v := validator.New(validator.WithRequiredStructEnabled())
	v.RegisterTagNameFunc(func(f reflect.StructField) string { return f.Tag.Get("flag") })
	must(v.RegisterValidation("listen_addr", func(fl validator.FieldLevel) bool {
		_, port, err := net.SplitHostPort(fl.Field().String())
		if err != nil {
			return false
		}
		n, err := strconv.Atoi(port)
		return err == nil && n >= 0 && n <= 65535
	}))
	must(v.RegisterValidation("issuer_url", func(fl validator.FieldLevel) bool { return issuerURLOK(fl.Field().String()) }))
	must(v.RegisterValidation("spiffe_id", func(fl validator.FieldLevel) bool {
		u, err := url.Parse(fl.Field().String())
		return err == nil && u.Scheme == "spiffe" && u.Host != "" && u.RawQuery == "" && u.Fragment == ""
	}))
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
		host := u.Hostname()
		ip := net.ParseIP(host)
		return host == "localhost" || (ip != nil && ip.IsLoopback())
	}
	return false
}

func must(err error) {
	if err != nil {
		panic(err) // only for registering the validators above
	}
}

func flagName(fe validator.FieldError) string {
	name := fe.Field()
	if i := strings.IndexByte(name, '['); i >= 0 { // slice elements: allow-peer[0]
		name = name[:i]
	}
	return name
}

// describe turns a validator failure into a sentence about the value.
func describe(fe validator.FieldError) string {
	switch fe.Tag() {
	case "required":
		return "is required"
	case "required_if":
		return "is required for role " + strings.Fields(fe.Param())[1]
	case "oneof":
		return fmt.Sprintf("%q is not one of: %s", fe.Value(), strings.ReplaceAll(fe.Param(), " ", ", "))
	case "listen_addr":
		return fmt.Sprintf("%q is not a host:port listen address", fe.Value())
	case "issuer_url":
		return fmt.Sprintf("%q is not an https issuer URL (plain http is allowed only on loopback)", fe.Value())
	case "http_url":
		return fmt.Sprintf("%q is not an http(s) URL", fe.Value())
	case "spiffe_id":
		return fmt.Sprintf("%q is not a SPIFFE ID (spiffe://trust-domain/path)", fe.Value())
	case "hostname_rfc1123":
		return fmt.Sprintf("%q is not a trust domain name", fe.Value())
	case "dns_rfc1035_label":
		return fmt.Sprintf("%q is not a Kubernetes name (a DNS label)", fe.Value())
	case "excludesall":
		return "must be a single scope"
	case "ltefield":
		return "must not exceed --mysql-max-open-conns"
	case "gt", "gte", "lte":
		return fmt.Sprintf("%v is out of range (%s %s)", fe.Value(), fe.Tag(), fe.Param())
	}
	return fmt.Sprintf("%v is invalid (%s)", fe.Value(), fe.Tag())
}
