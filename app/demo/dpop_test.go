package demo_test

import (
	"context"
	"io"
	"net/http"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/trustchain/trustchain/adapters/dpop"
	"github.com/trustchain/trustchain/app"
	"github.com/trustchain/trustchain/internal/testkit/logbuf"
)

// The README's demo lines: `trustchain login --dpop --key k.pem` against
// the demo, then A with `Authorization: DPoP` and a proof by the key file,
// on a page whose proof names no query; the same token as Bearer is 401.
func TestLoginDPoPAgainstTheDemo(t *testing.T) {
	d, _ := startDemo(t, nil)
	var password string
	for _, u := range d.Users() {
		if u.Name == "alice" {
			password = u.Password
		}
	}
	keyFile := filepath.Join(t.TempDir(), "k.pem")
	prompt := &logbuf.Buffer{}
	var out strings.Builder
	done := make(chan error, 1)
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	go func() {
		lc := app.LoginDefaults()
		lc.Issuer, lc.ClientID, lc.Audience = d.IssuerURL()+"/", "trustchain-cli", "https://trustchain.example/api"
		lc.DPoP, lc.Key = true, keyFile
		done <- app.Login(ctx, lc, &out, prompt)
	}()
	where := ""
	for where == "" {
		select {
		case err := <-done:
			t.Fatalf("login ended before asking the user: %v\n%s", err, prompt)
		case <-time.After(20 * time.Millisecond):
			where = regexp.MustCompile(`https?://\S+/activate\?user_code=\S+`).FindString(prompt.String())
		}
	}
	u, _ := url.Parse(where)
	resp, err := http.PostForm(u.Scheme+"://"+u.Host+u.Path, url.Values{
		"user_code": {u.Query().Get("user_code")}, "action": {"approve"}, "name": {"alice"}, "password": {password},
	})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if err := <-done; err != nil {
		t.Fatalf("login: %v\n%s", err, prompt)
	}
	token := strings.TrimSpace(out.String())
	key, err := dpop.LoadKey(keyFile)
	if err != nil {
		t.Fatal(err)
	}

	a := "http://" + d.APIAddr(roleA) + "/products"
	for _, target := range []string{a, a + "?limit=1"} {
		proof, err := dpop.NewProof(key, http.MethodGet, target, token, "", time.Now())
		if err != nil {
			t.Fatal(err)
		}
		status, _, body := call(t, target, "DPoP "+token, proof)
		if status != http.StatusOK || !seedPrefix.MatchString(body) {
			t.Fatalf("A answered the bound token with its proof (%s) %d: %s", target, status, body)
		}
	}
	status, challenge, _ := call(t, a, "Bearer "+token, "")
	if status != http.StatusUnauthorized || !strings.Contains(challenge, `error="invalid_token"`) {
		t.Fatalf("the bound token as Bearer: %d %q, want 401 invalid_token", status, challenge)
	}
}

func call(t *testing.T, target, authorization, proof string) (int, string, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, target, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", authorization)
	if proof != "" {
		req.Header.Set("DPoP", proof)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, strings.Join(resp.Header.Values("WWW-Authenticate"), ", "), string(body)
}
