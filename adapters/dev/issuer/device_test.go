package issuer_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"
)

type deviceCode struct {
	DeviceCode              string `json:"device_code"`
	UserCode                string `json:"user_code"`
	VerificationURI         string `json:"verification_uri"`
	VerificationURIComplete string `json:"verification_uri_complete"`
	ExpiresIn               int    `json:"expires_in"`
	Interval                int    `json:"interval"`
}

func deviceParams() url.Values {
	return url.Values{"client_id": {cliClient}, "scope": {"openid profile read:products"}, "audience": {audience}}
}

func startDevice(tb testing.TB, base string) deviceCode {
	tb.Helper()
	r := postForm(tb, base+"/oauth/device/code", deviceParams())
	if r.status != http.StatusOK {
		tb.Fatalf("device code: status %d body %s", r.status, r.body)
	}
	var dc deviceCode
	if err := json.Unmarshal(r.body, &dc); err != nil {
		tb.Fatalf("decode device code: %v", err)
	}
	return dc
}

func poll(tb testing.TB, base, clientID, code string) response {
	tb.Helper()
	return postForm(tb, base+"/oauth/token", url.Values{
		"grant_type":  {"urn:ietf:params:oauth:grant-type:device_code"},
		"client_id":   {clientID},
		"device_code": {code},
	})
}

func activate(tb testing.TB, base, userCode, action, name, password string) response {
	tb.Helper()
	return postForm(tb, base+"/activate", url.Values{
		"user_code": {userCode}, "action": {action}, "name": {name}, "password": {password},
	})
}

func TestDeviceFlow(t *testing.T) {
	clock := newClock()
	iss, srv := newServer(t, withClock(clock))
	accessV, _ := verifiers(t, iss, cliClient)

	dc := startDevice(t, srv.URL)
	if !regexp.MustCompile(`^[BCDFGHJKLMNPQRSTVWXZ]{4}-[BCDFGHJKLMNPQRSTVWXZ]{4}$`).MatchString(dc.UserCode) {
		t.Errorf("user_code = %q, want ABCD-EFGH from the vowel-free alphabet", dc.UserCode)
	}
	if dc.DeviceCode == "" || dc.ExpiresIn != 900 || dc.Interval != 5 {
		t.Errorf("device_code present %v, expires_in %d, interval %d", dc.DeviceCode != "", dc.ExpiresIn, dc.Interval)
	}
	if dc.VerificationURI != srv.URL+"/activate" || dc.VerificationURIComplete != srv.URL+"/activate?user_code="+dc.UserCode {
		t.Errorf("verification_uri %q, complete %q", dc.VerificationURI, dc.VerificationURIComplete)
	}

	steps := []struct {
		name    string
		advance time.Duration
		want    string
	}{
		{"at once", 0, "slow_down"},
		{"after the old interval", 5 * time.Second, "slow_down"},                // the interval grew to 10s
		{"after the grown interval", 15 * time.Second, "authorization_pending"}, // 15s: slow_down added 5s twice
	}
	for _, s := range steps {
		clock.Advance(s.advance)
		r := poll(t, srv.URL, cliClient, dc.DeviceCode)
		if got := r.oauthError(t); r.status != http.StatusBadRequest || got != s.want {
			t.Fatalf("poll %s: %d %q, want 400 %q", s.name, r.status, got, s.want)
		}
	}

	page := get(t, dc.VerificationURIComplete)
	if page.status != http.StatusOK || !strings.Contains(string(page.body), `value="`+dc.UserCode+`"`) {
		t.Fatalf("activation page %d does not carry the code: %s", page.status, page.body)
	}
	// People type codes loosely.
	typed := strings.ToLower(strings.ReplaceAll(dc.UserCode, "-", ""))
	if r := activate(t, srv.URL, typed, "approve", "alice", alicePassword); r.status != http.StatusOK || !strings.Contains(string(r.body), "Device connected") {
		t.Fatalf("activate: %d %s", r.status, r.body)
	}
	if r := activate(t, srv.URL, dc.UserCode, "approve", "alice", alicePassword); r.status != http.StatusBadRequest {
		t.Fatalf("second activation of one code: %d, want 400", r.status)
	}

	clock.Advance(15 * time.Second)
	toks := decodeTokens(t, poll(t, srv.URL, cliClient, dc.DeviceCode))
	c := verifyAccess(t, accessV, toks.AccessToken)
	if c.Sub != "auth0|alice" || c.Scope != "openid profile read:products" || c.Azp != cliClient {
		t.Errorf("device token sub %q scope %q azp %q", c.Sub, c.Scope, c.Azp)
	}
	if toks.IDToken == "" {
		t.Error("no ID token although openid was granted")
	}

	clock.Advance(15 * time.Second)
	if r := poll(t, srv.URL, cliClient, dc.DeviceCode); r.oauthError(t) != "invalid_grant" {
		t.Fatalf("second exchange of one device code: %s", r.body)
	}
}

func TestDeviceErrors(t *testing.T) {
	clock := newClock()
	_, srv := newServer(t, withClock(clock))
	const wait = 6 * time.Second // more than the 5s interval
	tests := []struct {
		name string
		// run plays the case on a fresh device code and returns the
		// answer under test.
		run        func(t *testing.T, dc deviceCode) response
		wantStatus int
		wantError  string
	}{
		{"unknown client asks for a code", func(t *testing.T, _ deviceCode) response {
			p := deviceParams()
			p.Set("client_id", "nobody")
			return postForm(t, srv.URL+"/oauth/device/code", p)
		}, http.StatusUnauthorized, "invalid_client"},
		{"code for another API", func(t *testing.T, _ deviceCode) response {
			p := deviceParams()
			p.Set("audience", "https://other.test")
			return postForm(t, srv.URL+"/oauth/device/code", p)
		}, http.StatusForbidden, "access_denied"},
		{"code for no API", func(t *testing.T, _ deviceCode) response {
			p := deviceParams()
			p.Del("audience")
			return postForm(t, srv.URL+"/oauth/device/code", p)
		}, http.StatusForbidden, "access_denied"},
		{"unknown client polls", func(t *testing.T, dc deviceCode) response {
			clock.Advance(wait)
			return poll(t, srv.URL, "nobody", dc.DeviceCode)
		}, http.StatusUnauthorized, "invalid_client"},
		{"another client polls", func(t *testing.T, dc deviceCode) response {
			clock.Advance(wait)
			return poll(t, srv.URL, webClient, dc.DeviceCode)
		}, http.StatusBadRequest, "invalid_grant"},
		{"unknown device code", func(t *testing.T, _ deviceCode) response {
			return poll(t, srv.URL, cliClient, "not-a-device-code")
		}, http.StatusBadRequest, "invalid_grant"},
		{"too fast", func(t *testing.T, dc deviceCode) response {
			clock.Advance(wait)
			if r := poll(t, srv.URL, cliClient, dc.DeviceCode); r.oauthError(t) != "authorization_pending" {
				t.Fatalf("first poll: %s", r.body)
			}
			clock.Advance(time.Second)
			return poll(t, srv.URL, cliClient, dc.DeviceCode)
		}, http.StatusBadRequest, "slow_down"},
		{"wrong password keeps it pending", func(t *testing.T, dc deviceCode) response {
			if r := activate(t, srv.URL, dc.UserCode, "approve", "alice", bobPassword); r.status != http.StatusUnauthorized || !strings.Contains(string(r.body), "Wrong name or password.") {
				t.Fatalf("activate with a wrong password: %d %s", r.status, r.body)
			}
			clock.Advance(wait)
			return poll(t, srv.URL, cliClient, dc.DeviceCode)
		}, http.StatusBadRequest, "authorization_pending"},
		{"denied", func(t *testing.T, dc deviceCode) response {
			if r := activate(t, srv.URL, dc.UserCode, "deny", "", ""); r.status != http.StatusOK {
				t.Fatalf("deny: %d %s", r.status, r.body)
			}
			clock.Advance(wait)
			return poll(t, srv.URL, cliClient, dc.DeviceCode)
		}, http.StatusBadRequest, "access_denied"},
		{"denied is final", func(t *testing.T, dc deviceCode) response {
			activate(t, srv.URL, dc.UserCode, "deny", "", "")
			clock.Advance(wait)
			poll(t, srv.URL, cliClient, dc.DeviceCode)
			clock.Advance(wait)
			return poll(t, srv.URL, cliClient, dc.DeviceCode)
		}, http.StatusBadRequest, "invalid_grant"},
		{"expired", func(t *testing.T, dc deviceCode) response {
			clock.Advance(15*time.Minute + time.Second)
			return poll(t, srv.URL, cliClient, dc.DeviceCode)
		}, http.StatusBadRequest, "expired_token"},
		{"approved after expiry", func(t *testing.T, dc deviceCode) response {
			clock.Advance(15*time.Minute + time.Second)
			if r := activate(t, srv.URL, dc.UserCode, "approve", "alice", alicePassword); r.status != http.StatusBadRequest {
				t.Fatalf("activating an expired code: %d %s", r.status, r.body)
			}
			return poll(t, srv.URL, cliClient, dc.DeviceCode)
		}, http.StatusBadRequest, "expired_token"},
		{"no device code", func(t *testing.T, _ deviceCode) response {
			return poll(t, srv.URL, cliClient, "")
		}, http.StatusBadRequest, "invalid_request"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := tt.run(t, startDevice(t, srv.URL))
			if r.status != tt.wantStatus {
				t.Fatalf("status = %d, want %d; body %s", r.status, tt.wantStatus, r.body)
			}
			if got := r.oauthError(t); got != tt.wantError {
				t.Fatalf("error = %q, want %q", got, tt.wantError)
			}
		})
	}
}

func TestActivatePageRefusals(t *testing.T) {
	_, srv := newServer(t)
	dc := startDevice(t, srv.URL)
	tests := []struct {
		name       string
		form       url.Values
		header     []string
		wantStatus int
		wantText   string
	}{
		{"unknown code", url.Values{"user_code": {"BBBB-BBBB"}, "action": {"approve"}, "name": {"alice"}, "password": {alicePassword}}, nil, http.StatusBadRequest, "unknown, used or expired"},
		{"deny an unknown code", url.Values{"user_code": {"BBBB-BBBB"}, "action": {"deny"}}, nil, http.StatusBadRequest, "unknown, used or expired"},
		{"unknown user", url.Values{"user_code": {dc.UserCode}, "action": {"approve"}, "name": {"mallory"}, "password": {alicePassword}}, nil, http.StatusUnauthorized, "Wrong name or password."},
		{"posted from another site", url.Values{"user_code": {dc.UserCode}, "action": {"approve"}, "name": {"alice"}, "password": {alicePassword}}, []string{"Sec-Fetch-Site", "cross-site"}, http.StatusForbidden, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := postForm(t, srv.URL+"/activate", tt.form, tt.header...)
			if r.status != tt.wantStatus || !strings.Contains(string(r.body), tt.wantText) {
				t.Fatalf("status %d, want %d with %q; body %s", r.status, tt.wantStatus, tt.wantText, r.body)
			}
		})
	}
	// None of the refusals touched the pending grant.
	if r := activate(t, srv.URL, dc.UserCode, "approve", "alice", alicePassword); r.status != http.StatusOK {
		t.Fatalf("activate after refusals: %d %s", r.status, r.body)
	}
}

// TestDeviceCodeFloodLocksNoOneOut is issue 19's flood: 1,000 anonymous
// POST /oauth/device/code neither refuse the next device login nor stop
// it from finishing, and the store stays bounded: the oldest grant no one
// approved makes room.
func TestDeviceCodeFloodLocksNoOneOut(t *testing.T) {
	clock := newClock()
	_, srv := newServer(t, withClock(clock))
	approved := startDevice(t, srv.URL)
	if r := activate(t, srv.URL, approved.UserCode, "approve", "alice", alicePassword); r.status != http.StatusOK {
		t.Fatalf("approve: %d %s", r.status, r.body)
	}
	var first deviceCode
	for i := range 1000 {
		dc := startDevice(t, srv.URL)
		if i == 0 {
			first = dc
		}
	}
	clock.Advance(5 * time.Second)
	if r := poll(t, srv.URL, cliClient, first.DeviceCode); r.status != http.StatusBadRequest || r.oauthError(t) != "invalid_grant" {
		t.Fatalf("the flood's first grant is still held after 1,000 more: %d %s", r.status, r.body)
	}
	decodeTokens(t, poll(t, srv.URL, cliClient, approved.DeviceCode)) // an approved grant outlives the flood

	// A minute later, as at once, a person's device login goes through.
	clock.Advance(time.Minute)
	dc := startDevice(t, srv.URL)
	if r := activate(t, srv.URL, dc.UserCode, "approve", "alice", alicePassword); r.status != http.StatusOK {
		t.Fatalf("approve after the flood: %d %s", r.status, r.body)
	}
	clock.Advance(5 * time.Second)
	decodeTokens(t, poll(t, srv.URL, cliClient, dc.DeviceCode))
}
