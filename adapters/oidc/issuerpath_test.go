package oidc_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/trustchain/trustchain/adapters/oidc"
	"github.com/trustchain/trustchain/domain"
)

// TestKeysOnlyOverASafePath: whoever answers the JWKS URL decides which
// tokens pass, so no redirect may take discovery or the JWKS to another
// origin or down to plain http, and an https issuer's jwks_uri must be
// https.
func TestKeysOnlyOverASafePath(t *testing.T) {
	attackerKey := newRSAKey(t, 2048)
	attackerJWKS := must(json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &attackerKey.PublicKey, KeyID: "attacker", Algorithm: "RS256", Use: "sig"}}}))
	attacker := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(attackerJWKS)
	}))
	t.Cleanup(attacker.Close)

	tests := []struct {
		name    string
		tls     bool
		arrange func(ti *testIssuer)
		wantErr string // "" means Start must succeed
	}{
		{name: "JWKS redirected to another origin", arrange: func(ti *testIssuer) {
			to := attacker.URL + "/jwks.json"
			ti.jwksRedirect.Store(&to)
		}, wantErr: "another origin"},
		{name: "https JWKS redirected down to http", tls: true, arrange: func(ti *testIssuer) {
			to := strings.Replace(ti.srv.URL, "https://", "http://", 1) + "/.well-known/jwks.json"
			ti.jwksRedirect.Store(&to)
		}, wantErr: "another origin"},
		{name: "https issuer naming an http jwks_uri", tls: true, arrange: func(ti *testIssuer) {
			doc := must(json.Marshal(map[string]any{"issuer": ti.Issuer.Issuer(), "jwks_uri": attacker.URL + "/jwks.json"}))
			ti.discoveryOverride.Store(&doc)
		}, wantErr: "is not https"},
		{name: "a redirect within the issuer's origin is followed", arrange: func(ti *testIssuer) {
			to := ti.srv.URL + "/.well-known/jwks.json?moved=1"
			ti.jwksRedirect.Store(&to)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ti := newTestIssuer(t, tt.tls)
			tt.arrange(ti)
			v, err := oidc.New(testConfig(ti))
			if err != nil {
				t.Fatal(err)
			}
			err = v.Start(context.Background())
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("Start: %v", err)
				}
				if _, err := v.Verify(context.Background(), ti.mint(t, nil)); err != nil {
					t.Fatalf("Verify: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Start = %v, want a refusal about %q", err, tt.wantErr)
			}
			if err := v.Ready(context.Background()); !errors.Is(err, domain.ErrVerifierNotReady) {
				t.Fatalf("Ready = %v: the verifier must stay not ready", err)
			}
			forged := sign(t, jose.RS256, attackerKey, "attacker", ti.DefaultClaims("user-1"))
			if _, err := v.Verify(context.Background(), forged); err == nil {
				t.Fatal("the attacker's token passed")
			}
		})
	}
}
