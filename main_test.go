package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

func TestConfigErrorsNameFlagAndEnv(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want []string // each must be one line of the error
	}{
		{"nothing set but the format", []string{"--log-format=json"}, []string{
			"  --role [ROLE]: is required",
			"  --oidc-issuer [OIDC_ISSUER]: is required",
			"  --oidc-audience [OIDC_AUDIENCE]: is required",
		}},
		{"unknown role", []string{"--role=d", "--oidc-issuer=https://t.auth0.com/", "--oidc-audience=x"}, []string{
			`  --role [ROLE]: "d" is not one of: a, b, c`,
		}},
		{"gateway without upstream", []string{"--role=a", "--oidc-issuer=https://t.auth0.com/", "--oidc-audience=x"}, []string{
			"  --upstream [UPSTREAM_URL]: is required for role a",
		}},
		{"b needs MySQL and an explicit peer auth", []string{"--role=b", "--oidc-issuer=https://t.auth0.com/", "--oidc-audience=x"}, []string{
			"  --mysql-dsn [MYSQL_DSN]: is required for role b",
			"  --peer-auth [PEER_AUTH]: is required for role b",
		}},
		{"c needs an explicit peer auth", []string{"--role=c", "--upstream=http://b:8080", "--oidc-issuer=https://t.auth0.com/", "--oidc-audience=x"}, []string{
			"  --peer-auth [PEER_AUTH]: is required for role c",
		}},
		{"issuer must be https off loopback", []string{"--role=a", "--upstream=http://c", "--oidc-issuer=http://t.auth0.com/", "--oidc-audience=x"}, []string{
			`  --oidc-issuer [OIDC_ISSUER]: "http://t.auth0.com/" is not an https issuer URL (plain http is allowed only on loopback)`,
		}},
		{"admin port is not the API port", []string{"--role=a", "--upstream=http://c", "--oidc-issuer=https://t/", "--oidc-audience=x", "--listen=:8080", "--admin-listen=:8080"}, []string{
			"  --admin-listen [ADMIN_LISTEN_ADDR]: must differ from --listen: the admin endpoints never share the API port",
		}},
		{"mtls without identity", []string{"--role=c", "--upstream=https://b", "--oidc-issuer=https://t/", "--oidc-audience=x", "--peer-auth=mtls"}, []string{
			"  --peer-auth [PEER_AUTH]: mtls needs an identity: --tls-cert, --tls-key and --tls-bundle, or --spiffe-socket",
		}},
		{"bad peer id and mode", []string{"--role=c", "--upstream=http://b", "--oidc-issuer=https://t/", "--oidc-audience=x", "--peer-auth=tls", "--allow-peer=service-a"}, []string{
			`  --peer-auth [PEER_AUTH]: "tls" is not one of: mtls, xfcc, off`,
			`  --allow-peer [ALLOWED_PEERS]: "service-a" is not a SPIFFE ID (spiffe://trust-domain/path)`,
		}},
		{"a sampling ratio over 1, and a bad OTLP endpoint", []string{"--role=a", "--upstream=http://c", "--oidc-issuer=https://t/", "--oidc-audience=x", "--traces-sampler-arg=2", "--otlp-endpoint=collector:4318"}, []string{
			`  --traces-sampler-arg [OTEL_TRACES_SAMPLER_ARG]: "2" is not a ratio from 0 to 1`,
			`  --otlp-endpoint [OTEL_EXPORTER_OTLP_ENDPOINT]: "collector:4318" is not an http(s) URL`,
		}},
		{"migrate without a DSN", []string{"migrate", "up"}, []string{
			"  --mysql-dsn [MYSQL_DSN]: is required",
		}},
		{"another role's setting on the command line", []string{"--role=c", "--peer-auth=off", "--upstream=http://b", "--oidc-issuer=https://t/", "--oidc-audience=x", "--mysql-dsn=u:p@tcp(db)/shop", "--query-timeout=1s"}, []string{
			"  --mysql-dsn [MYSQL_DSN]: used only by role b",
			"  --query-timeout [QUERY_TIMEOUT]: used only by role b",
		}},
		{"the store role with an upstream", []string{"--role=b", "--peer-auth=off", "--mysql-dsn=u:p@tcp(db)/shop", "--oidc-issuer=https://t/", "--oidc-audience=x", "--upstream=http://c", "--listen=:x"}, []string{
			"  --upstream [UPSTREAM_URL]: used only by roles a, c",
		}},
		{"a password in the issuer URL", []string{"--role=a", "--upstream=http://c", "--oidc-issuer=https://admin:hunter2@t.auth0.com/", "--oidc-audience=x"}, []string{
			"  --oidc-issuer [OIDC_ISSUER]: must not carry a user name or password: the URL would be logged and sent in clear",
		}},
		{"a drain shorter than the budget", []string{"--role=a", "--upstream=http://c", "--oidc-issuer=https://t/", "--oidc-audience=x", "--upstream-timeout=20s", "--shutdown-timeout=10s"}, []string{
			"  --shutdown-timeout [SHUTDOWN_TIMEOUT]: 10s is shorter than the role's budget (--upstream-timeout 20s): a request in flight at SIGTERM could not finish",
		}},
		{"a page larger than the most", []string{"--role=b", "--peer-auth=off", "--mysql-dsn=u:p@tcp(db)/shop", "--oidc-issuer=https://t/", "--oidc-audience=x", "--max-page-size=20000", "--page-size=0"}, []string{
			"  --max-page-size [MAX_PAGE_SIZE]: 20000 is more than the most any page may hold (10000)",
			"  --page-size [PAGE_SIZE]: 0 is out of range (gte 1)",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("ROLE", "") // the environment is config too
			var stdout, stderr bytes.Buffer
			err := run(context.Background(), append([]string{"trustchain"}, tt.args...), &stdout, &stderr)
			if err == nil {
				t.Fatal("bad config was accepted")
			}
			if strings.Contains(err.Error(), "hunter2") {
				t.Fatalf("the error shows the issuer's password:\n%s", err)
			}
			lines := strings.Split(err.Error(), "\n")
			for _, want := range tt.want {
				found := false
				for _, l := range lines {
					found = found || l == want
				}
				if !found {
					t.Errorf("missing line %q in:\n%s", want, err)
				}
			}
		})
	}
}

func TestConfigFromEnvironment(t *testing.T) {
	t.Setenv("ROLE", "b")
	t.Setenv("PEER_AUTH", "off")
	t.Setenv("OIDC_ISSUER", "https://t.auth0.com/")
	t.Setenv("OIDC_AUDIENCE", "x")
	var stdout, stderr bytes.Buffer
	err := run(context.Background(), []string{"trustchain"}, &stdout, &stderr)
	if err == nil || !strings.Contains(err.Error(), "--mysql-dsn [MYSQL_DSN]: is required for role b") || strings.Contains(err.Error(), "--role") {
		t.Fatalf("env was not read as config: %v", err)
	}
}

func TestVersion(t *testing.T) {
	var stdout bytes.Buffer
	if err := run(context.Background(), []string{"trustchain", "--version"}, &stdout, &bytes.Buffer{}); err != nil {
		t.Fatal(err)
	}
	out := stdout.String()
	if !strings.HasPrefix(out, "trustchain ") || !strings.Contains(out, "commit ") || !strings.Contains(out, "go1.") {
		t.Fatalf("version = %q", out)
	}
}

// TestSharedEnvironment: one environment file for every role, as a
// ConfigMap would be. A setting another role uses is warned about and
// ignored, not refused.
func TestSharedEnvironment(t *testing.T) {
	t.Setenv("ROLE", "c")
	t.Setenv("MYSQL_DSN", "u:p@tcp(db:3306)/shop")
	t.Setenv("QUERY_TIMEOUT", "2s")
	t.Setenv("OIDC_ISSUER", "https://t.auth0.com/")
	t.Setenv("OIDC_AUDIENCE", "x")
	// Left out on purpose, so the run stops at validation: peer auth and
	// the upstream.
	err := run(context.Background(), []string{"trustchain"}, &bytes.Buffer{}, &bytes.Buffer{})
	if err == nil {
		t.Fatal("an incomplete config was accepted")
	}
	if strings.Contains(err.Error(), "mysql-dsn") || strings.Contains(err.Error(), "query-timeout") {
		t.Fatalf("role c refused b's settings from a shared environment:\n%s", err)
	}
	for _, want := range []string{"--peer-auth [PEER_AUTH]: is required for role c", "--upstream [UPSTREAM_URL]: is required for role c"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("missing %q in:\n%s", want, err)
		}
	}
}

// TestHelpShowsOneDefaultPerFlag reads every command's --help.
func TestHelpShowsOneDefaultPerFlag(t *testing.T) {
	for _, cmd := range append([][]string{{"--help"}, {"login", "--help"}, {"migrate", "up", "--help"}, {"seed", "--help"}}, devHelp...) {
		t.Run(strings.Join(cmd, " "), func(t *testing.T) {
			var stdout bytes.Buffer
			if err := run(context.Background(), append([]string{"trustchain"}, cmd...), &stdout, &bytes.Buffer{}); err != nil {
				t.Fatal(err)
			}
			flags := 0
			for _, line := range strings.Split(stdout.String(), "\n") {
				line = strings.TrimSpace(line)
				if !strings.HasPrefix(line, "--") || strings.HasPrefix(line, "--help") {
					continue
				}
				flags++
				if n := strings.Count(line, "(default"); n > 1 {
					t.Errorf("two defaults: %s", line)
				}
				name, usage, _ := strings.Cut(line, "  ")
				if strings.TrimSpace(usage) == "" || strings.HasPrefix(strings.TrimSpace(usage), "(default") {
					t.Errorf("%s has no usage text", name)
				}
			}
			if flags == 0 {
				t.Fatalf("no flags in:\n%s", stdout.String())
			}
		})
	}
}

// TestBadCommandLineIsOneLine: a flag that does not exist, or a value that
// does not parse, is one line naming it, not the whole help.
func TestBadCommandLineIsOneLine(t *testing.T) {
	type badLine struct {
		args []string
		flag string
	}
	lines := []badLine{
		{[]string{"--bogus"}, "bogus"},
		{[]string{"migrate", "up", "--timeout", "soon"}, "timeout"},
		{[]string{"--role", "a", "--upstream-timeout", "abc"}, "upstream-timeout"},
	}
	if devBadFlag != nil {
		lines = append(lines, badLine{devBadFlag, "bogus"})
	}
	for _, tt := range lines {
		var stdout, stderr bytes.Buffer
		err := run(context.Background(), append([]string{"trustchain"}, tt.args...), &stdout, &stderr)
		if err == nil {
			t.Fatalf("%v was accepted", tt.args)
		}
		if msg := err.Error(); strings.Contains(msg, "\n") || !strings.Contains(msg, tt.flag) {
			t.Errorf("%v: %q is not one line naming %s", tt.args, msg, tt.flag)
		}
		if out := stdout.String() + stderr.String(); strings.Contains(out, "USAGE") || strings.Contains(out, "OPTIONS") {
			t.Errorf("%v printed the help:\n%s", tt.args, out)
		}
	}
}

// TestUsageErrorsExitNonZero: a command line naming nothing that exists
// exits 2 wherever the mistake is, with the closest name when one is close.
func TestUsageErrorsExitNonZero(t *testing.T) {
	tests := []struct {
		args []string
		want string // in the message
	}{
		{[]string{"migrate", "sideways"}, `unknown command "sideways" (see --help)`},
		{[]string{"migrate", "stauts"}, `unknown command "stauts"; did you mean status?`},
		{[]string{"migrate"}, "migrate needs a command: one of up, down, status"},
		{[]string{"mgirate", "up"}, `unknown command "mgirate"; did you mean migrate?`},
		{[]string{"frobnicate"}, `unknown command "frobnicate" (see --help)`},
		{[]string{"--rol", "a"}, "-rol; did you mean --role?"},
		{[]string{"seed", "--mysql-dns", "x"}, "-mysql-dns; did you mean --mysql-dsn?"},
		{[]string{"migrate", "up", "--zzz"}, "flag provided but not defined: -zzz (see --help)"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			err := run(context.Background(), append([]string{"trustchain"}, tt.args...), &bytes.Buffer{}, &bytes.Buffer{})
			if err == nil || exitCode(err) != 2 {
				t.Fatalf("exit code %d, err %v; want 2", exitCode(err), err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("%q does not say %q", err, tt.want)
			}
		})
	}
}

// TestNoArgumentsPointsTheWay: `trustchain` alone, with no role in the
// environment either, prints where to start, not three missing settings.
func TestNoArgumentsPointsTheWay(t *testing.T) {
	t.Setenv("ROLE", "")
	var stdout, stderr bytes.Buffer
	err := run(context.Background(), []string{"trustchain"}, &stdout, &stderr)
	if exitCode(err) != 2 || err.Error() != "" {
		t.Fatalf("err = %v (exit %d), want a silent usage error", err, exitCode(err))
	}
	for _, want := range []string{"trustchain demo", "trustchain --role a|b|c", "trustchain --help"} {
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("usage does not mention %q:\n%s", want, stderr.String())
		}
	}
	if stdout.Len() != 0 || strings.Contains(stderr.String(), "is required") {
		t.Errorf("stdout %q, stderr %q", stdout.String(), stderr.String())
	}
}

// TestErrorsSayWhatCameFromTheEnvironment: a bad value from the
// environment is named as such; the same value given as a flag is not.
func TestErrorsSayWhatCameFromTheEnvironment(t *testing.T) {
	t.Setenv("PEER_AUTH", "tls")
	base := []string{"trustchain", "--role=c", "--upstream=http://b", "--oidc-issuer=https://t/", "--oidc-audience=x"}
	err := run(context.Background(), base, &bytes.Buffer{}, &bytes.Buffer{})
	if want := `  --peer-auth [PEER_AUTH (from the environment)]: "tls" is not one of`; err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("missing %q in:\n%v", want, err)
	}
	err = run(context.Background(), append(base, "--peer-auth=tls"), &bytes.Buffer{}, &bytes.Buffer{})
	if err == nil || !strings.Contains(err.Error(), `  --peer-auth [PEER_AUTH]: "tls"`) {
		t.Fatalf("a flag's value was put down to the environment:\n%v", err)
	}
}
