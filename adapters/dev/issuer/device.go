package issuer

import (
	"net/http"
	"net/url"
	"time"
)

type deviceCodeResponse struct {
	DeviceCode              string `json:"device_code"`
	UserCode                string `json:"user_code"`
	VerificationURI         string `json:"verification_uri"`
	VerificationURIComplete string `json:"verification_uri_complete"`
	ExpiresIn               int64  `json:"expires_in"`
	Interval                int64  `json:"interval"`
}

// serveDeviceCode is the device authorization endpoint (RFC 8628 §3.1).
func (iss *Issuer) serveDeviceCode(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, maxRequestBytes)
	req, err := readTokenRequest(r)
	if err != nil {
		writeOAuthError(w, http.StatusBadRequest, "invalid_request", err.Error())
		return
	}
	if _, ok := iss.clients[req.ClientID]; !ok {
		writeOAuthError(w, http.StatusUnauthorized, "invalid_client", "Unknown client.")
		return
	}
	if req.Audience != iss.cfg.Audience {
		writeAudienceError(w, req.Audience)
		return
	}
	now := iss.cfg.Now()
	g, err := iss.pending.addDevice(now, deviceGrant{
		clientID: req.ClientID,
		scope:    req.Scope,
		expires:  now.Add(deviceCodeTTL),
		interval: iss.cfg.DeviceInterval,
		lastPoll: now, // the first poll must wait an interval too
	})
	if err != nil {
		writeOAuthError(w, http.StatusInternalServerError, "server_error", "Could not issue a device code.")
		return
	}
	verify := iss.cfg.URL + "/activate"
	writeJSON(w, http.StatusOK, deviceCodeResponse{
		DeviceCode:              g.deviceCode,
		UserCode:                displayUserCode(g.userCode),
		VerificationURI:         verify,
		VerificationURIComplete: verify + "?" + url.Values{"user_code": {displayUserCode(g.userCode)}}.Encode(),
		ExpiresIn:               int64(deviceCodeTTL / time.Second),
		Interval:                int64(iss.cfg.DeviceInterval / time.Second),
	})
}

// exchangeDeviceCode is the token endpoint's device_code grant
// (RFC 8628 §3.4, §3.5).
func (iss *Issuer) exchangeDeviceCode(w http.ResponseWriter, req tokenRequest) {
	if !iss.publicClient(w, req) {
		return
	}
	if req.DeviceCode == "" {
		writeOAuthError(w, http.StatusBadRequest, "invalid_request", "device_code is required.")
		return
	}
	l, code := iss.pending.poll(iss.cfg.Now(), req.DeviceCode, req.ClientID)
	if code != "" {
		writeOAuthError(w, http.StatusBadRequest, code, deviceErrorDescriptions[code])
		return
	}
	iss.writeUserTokens(w, l, req.jkt)
}

var deviceErrorDescriptions = map[string]string{
	"invalid_grant":         "Invalid or already used device code.",
	"expired_token":         "The device code has expired.",
	"slow_down":             "You are polling faster than the interval.",
	"access_denied":         "The user denied the login.",
	"authorization_pending": "The user has not finished logging in yet.",
}

func (iss *Issuer) serveActivateForm(w http.ResponseWriter, r *http.Request) {
	code := r.URL.Query().Get("user_code")
	renderPage(w, http.StatusOK, "activate", activatePage{UserCode: displayUserCode(normalizeUserCode(code))})
}

// serveActivate approves a device with the user's name and password, or
// denies it: whoever holds the code may turn it down.
func (iss *Issuer) serveActivate(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	if err := r.ParseForm(); err != nil {
		renderMessage(w, http.StatusBadRequest, "Bad request", "The form could not be read.")
		return
	}
	f := r.PostForm
	page := activatePage{UserCode: displayUserCode(normalizeUserCode(f.Get("user_code"))), Name: f.Get("name")}
	now := iss.cfg.Now()
	if f.Get("action") == "deny" {
		if err := iss.pending.decide(now, f.Get("user_code"), nil); err != nil {
			page.Error = "That code is unknown, used or expired."
			renderPage(w, http.StatusBadRequest, "activate", page)
			return
		}
		renderMessage(w, http.StatusOK, "Access denied", "The device was not connected. You can close this page.")
		return
	}
	user, err := iss.authenticate(f.Get("name"), f.Get("password"))
	if err != nil {
		status, message := refuseLogin(w, err)
		page.Error = message
		renderPage(w, status, "activate", page)
		return
	}
	if err := iss.pending.decide(now, f.Get("user_code"), &user); err != nil {
		page.Error = "That code is unknown, used or expired."
		renderPage(w, http.StatusBadRequest, "activate", page)
		return
	}
	renderMessage(w, http.StatusOK, "Device connected", "You are logged in as "+user.Name+". You can close this page and return to your device.")
}
