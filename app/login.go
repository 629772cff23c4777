package app

import (
	"context"
	"errors"
	"io"
	"strings"

	"github.com/trustchain/trustchain/adapters/dpop"
	"github.com/trustchain/trustchain/adapters/flagcheck"
	"github.com/trustchain/trustchain/adapters/oauthlogin"
)

// LoginConfig configures `trustchain login`; main derives its flags from
// the tags.
type LoginConfig struct {
	Issuer   string `flag:"oidc-issuer" env:"OIDC_ISSUER" usage:"issuer to log in at, exactly as in iss, e.g. https://TENANT.us.auth0.com/" validate:"required"`
	ClientID string `flag:"client-id" env:"OIDC_CLIENT_ID" usage:"a public client allowed the device code grant (on Auth0, a Native application)" validate:"required"`
	Audience string `flag:"oidc-audience" env:"OIDC_AUDIENCE" usage:"the API the token is for" validate:"required"`
	Scope    string `flag:"scope" env:"OIDC_SCOPE" usage:"scopes to ask for, space-separated"`
	Output   string `flag:"output" usage:"token (the token alone) or env (export TOKEN=…, for eval)" validate:"oneof=token env"`
	DPoP     bool   `flag:"dpop" usage:"get a token bound to the key in --key (RFC 9449 DPoP)"`
	Key      string `flag:"key" usage:"the DPoP key: a PEM ES256 key, made (mode 0600) if the file does not exist" validate:"required_if=DPoP true,excluded_unless=DPoP true"`
}

// LoginDefaults returns the defaults of the login command's flags.
func LoginDefaults() LoginConfig {
	return LoginConfig{Scope: "openid profile read:products", Output: oauthlogin.OutputToken}
}

// Login gets a user's access token with the device authorization grant and
// writes it to out; where to log in goes to prompt, so $(trustchain login)
// captures the token alone. Nothing is stored but the key of --dpop.
func Login(ctx context.Context, lc LoginConfig, out, prompt io.Writer) error {
	problems, err := flagcheck.Check[Problem](configValidator, lc)
	if err != nil {
		return err
	}
	if len(problems) > 0 {
		return &ConfigError{Problems: problems}
	}
	var prover oauthlogin.Prover
	if lc.DPoP {
		key, _, err := dpop.LoadOrCreateKey(lc.Key)
		if err != nil {
			return &ConfigError{Problems: []Problem{{Flag: "key", Message: err.Error()}}}
		}
		prover = dpop.NewProver(key)
	}
	token, err := oauthlogin.Login(ctx, oauthlogin.Config{
		Issuer:   lc.Issuer,
		ClientID: lc.ClientID,
		Audience: lc.Audience,
		Scopes:   strings.Fields(lc.Scope),
		Prompt:   prompt,
		DPoP:     prover,
	})
	if err != nil {
		if errors.Is(err, oauthlogin.ErrConfig) {
			return &ConfigError{Problems: []Problem{{Flag: "oidc-issuer", Message: err.Error()}}}
		}
		return err
	}
	return oauthlogin.WriteToken(out, lc.Output, token)
}
