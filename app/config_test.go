package app_test

import (
	"context"
	"log/slog"
	"strings"
	"testing"

	"github.com/trustchain/trustchain/app"
	"github.com/trustchain/trustchain/internal/testkit/logbuf"
)

// TestUnusedSettingsFromTheEnvironmentAreWarnedAbout: a setting of another
// role, from an environment shared by every role, is logged once and
// ignored; the same setting given on the command line is an error.
func TestUnusedSettingsFromTheEnvironmentAreWarnedAbout(t *testing.T) {
	cfg := app.Defaults()
	cfg.Role, cfg.PeerAuth, cfg.Upstream = "c", app.PeerAuthOff, "http://127.0.0.1:1"
	cfg.Listen, cfg.AdminListen = "127.0.0.1:0", "127.0.0.1:0"
	cfg.OIDCIssuer, cfg.OIDCAudience = "https://t.auth0.com/", audience
	cfg.MySQLDSN = "u:p@tcp(db:3306)/shop"

	logs := &logbuf.Buffer{}
	svc, err := app.New(context.Background(), cfg, app.Deps{Logger: slog.New(slog.NewJSONHandler(logs, nil))})
	if err != nil {
		t.Fatalf("role c refused b's setting from the environment: %v", err)
	}
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	if err := svc.Run(cancelled); err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(logs.String(), "MYSQL_DSN is set in the environment but role c does not use it"); n != 1 {
		t.Fatalf("the warning appears %d times:\n%s", n, logs)
	}
	if strings.Contains(logs.String(), "u:p@tcp") {
		t.Fatal("the warning shows the DSN")
	}

	cfg.CommandLine = map[string]bool{"mysql-dsn": true}
	if _, err := app.New(context.Background(), cfg, app.Deps{Logger: slog.New(slog.DiscardHandler)}); err == nil || !strings.Contains(err.Error(), "--mysql-dsn: used only by role b") {
		t.Fatalf("the command line's --mysql-dsn for role c: %v", err)
	}
}

// TestDPoPSettings: DPoP's settings are the edge's; a short nonce secret
// is refused without being shown, and a nonce with DPoP off is a mistake.
func TestDPoPSettings(t *testing.T) {
	base := func() app.Config {
		cfg := app.Defaults()
		cfg.Role, cfg.Upstream = "a", "http://127.0.0.1:1"
		cfg.Listen, cfg.AdminListen = "127.0.0.1:0", "127.0.0.1:0"
		cfg.OIDCIssuer, cfg.OIDCAudience = "https://t.auth0.com/", audience
		return cfg
	}
	for _, tc := range []struct {
		name string
		edit func(*app.Config)
		want string
	}{
		{"short secret", func(c *app.Config) { c.DPoPNonce = "short-but-secret" }, "--dpop-nonce: must be at least 32 bytes"},
		{"nonce with dpop off", func(c *app.Config) { c.DPoP, c.DPoPNonce = "off", strings.Repeat("k", 32) }, "--dpop-nonce: needs --dpop allowed or required"},
		{"unknown mode", func(c *app.Config) { c.DPoP = "maybe" }, `--dpop: "maybe" is not one of: off, allowed, required`},
		{"public URL not http", func(c *app.Config) { c.PublicURL = "ftp://api.example.com" }, "--public-url:"},
		{"on role c from the command line", func(c *app.Config) {
			c.Role, c.PeerAuth, c.DPoP, c.CommandLine = "c", app.PeerAuthOff, "required", map[string]bool{"dpop": true}
		}, "--dpop: used only by role a"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := base()
			tc.edit(&cfg)
			_, err := app.New(context.Background(), cfg, app.Deps{Logger: slog.New(slog.DiscardHandler)})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want %q", err, tc.want)
			}
			if strings.Contains(err.Error(), "short-but-secret") {
				t.Fatal("the error shows the secret")
			}
		})
	}
}
