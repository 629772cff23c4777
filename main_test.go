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
		{"nothing set", nil, []string{
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
		{"migrate without a DSN", []string{"migrate", "up"}, []string{
			"  --mysql-dsn [MYSQL_DSN]: is required",
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
