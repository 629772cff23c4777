package issuer

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"
)

const (
	// codeTTL is how long an authorization code can be exchanged. Auth0
	// allows longer; a browser exchanges it within a second.
	codeTTL = time.Minute
	// deviceCodeTTL is how long a user has to activate a device, as on
	// Auth0.
	deviceCodeTTL = 15 * time.Minute
	// deviceExpiredGrace keeps an expired device grant around a little, so
	// a late poll hears expired_token rather than invalid_grant.
	deviceExpiredGrace = 5 * time.Minute
	// slowDownStep is how much a too-eager poller's interval grows
	// (RFC 8628 §3.5).
	slowDownStep = 5 * time.Second

	// The caps keep anyone who can reach the issuer from filling its
	// memory: device codes need only a client ID, codes a password. A full
	// store makes room by dropping its oldest entry that no one has
	// approved, never by refusing the newcomer: a flood then costs its
	// own oldest entries, not the next person's login.
	maxAuthCodes    = 1000
	maxDeviceGrants = 1000
	// maxCodesPerUser keeps one user's flood of logins (a leaked demo
	// password) from pushing out another user's unexchanged code.
	maxCodesPerUser = 8

	// userCodeAlphabet has no vowels, so no word can be spelt, and no
	// look-alike digits; Auth0 uses the same one.
	userCodeAlphabet = "BCDFGHJKLMNPQRSTVWXZ"
	userCodeLength   = 8
)

var errUnknownUserCode = errors.New("unknown, used or expired user code")

// authCode is an issued authorization code, waiting to be exchanged.
type authCode struct {
	login       login
	redirectURI string
	challenge   string // PKCE S256 code challenge
	expires     time.Time
	seq         uint64 // the order of issue, for eviction
}

type deviceState int

const (
	devicePending deviceState = iota
	deviceApproved
	deviceDenied
)

// deviceGrant is one device authorization, from the device code request to
// the token.
type deviceGrant struct {
	deviceCode string
	userCode   string // normalized: upper case, no dash
	clientID   string
	scope      string // as requested; what is granted depends on the user
	expires    time.Time
	interval   time.Duration
	lastPoll   time.Time
	state      deviceState
	login      login  // set once approved
	seq        uint64 // the order of issue, for eviction
}

// pending holds the logins under way: codes, device grants, and the count
// of wrong passwords per user. Every code and grant expires, expired ones
// are dropped whenever a new one is added, and each map is capped, the
// oldest evictable entry making room for a new one.
type pending struct {
	mu        sync.Mutex
	codes     map[string]*authCode
	devices   map[string]*deviceGrant // by device code
	userCodes map[string]*deviceGrant // by normalized user code
	issued    uint64                  // entries ever added; the next seq
	attempts  *attempts               // wrong passwords, per user
}

func newPending() *pending {
	return &pending{
		codes:     map[string]*authCode{},
		devices:   map[string]*deviceGrant{},
		userCodes: map[string]*deviceGrant{},
		attempts:  newAttempts(),
	}
}

// addCode stores c and returns the code that names it.
func (p *pending) addCode(now time.Time, c authCode) (string, error) {
	code, err := randomToken(32)
	if err != nil {
		return "", err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	mine := 0
	for k, v := range p.codes {
		switch {
		case !now.Before(v.expires):
			delete(p.codes, k)
		case v.login.user.Name == c.login.user.Name:
			mine++
		}
	}
	if mine >= maxCodesPerUser {
		delete(p.codes, oldest(p.codes, func(v *authCode) bool { return v.login.user.Name == c.login.user.Name }))
	}
	if len(p.codes) >= maxAuthCodes {
		delete(p.codes, oldest(p.codes, func(*authCode) bool { return true }))
	}
	p.issued++
	c.seq = p.issued
	p.codes[code] = &c
	return code, nil
}

// issued is an entry of a pending store.
type issued interface{ order() uint64 }

func (c *authCode) order() uint64    { return c.seq }
func (g *deviceGrant) order() uint64 { return g.seq }

// oldest returns the key of the entry of m issued first among those
// evictable says may go, or "" when there is none. A linear scan is enough
// at these caps.
func oldest[T issued](m map[string]T, evictable func(T) bool) string {
	var key string
	var first uint64
	for k, v := range m {
		if evictable(v) && (key == "" || v.order() < first) {
			key, first = k, v.order()
		}
	}
	return key
}

// takeCode removes and returns the code, if it is there and unexpired: a
// code is spent by its first exchange, right or wrong, so a wrong verifier
// cannot be followed by a guess.
func (p *pending) takeCode(now time.Time, code string) (authCode, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	c, ok := p.codes[code]
	if !ok {
		return authCode{}, false
	}
	delete(p.codes, code)
	return *c, now.Before(c.expires)
}

// addDevice stores g under a fresh device code and user code, both of
// which it fills in.
func (p *pending) addDevice(now time.Time, g deviceGrant) (deviceGrant, error) {
	deviceCode, err := randomToken(32)
	if err != nil {
		return deviceGrant{}, err
	}
	g.deviceCode = deviceCode
	p.mu.Lock()
	defer p.mu.Unlock()
	for k, v := range p.devices {
		if now.After(v.expires.Add(deviceExpiredGrace)) {
			delete(p.devices, k)
			delete(p.userCodes, v.userCode)
		}
	}
	if len(p.devices) >= maxDeviceGrants {
		// A grant someone approved is a logged-in person's: it goes only
		// when nothing else can.
		victim := oldest(p.devices, func(g *deviceGrant) bool { return g.state != deviceApproved })
		if victim == "" {
			victim = oldest(p.devices, func(*deviceGrant) bool { return true })
		}
		p.remove(p.devices[victim])
	}
	for {
		if g.userCode, err = newUserCode(); err != nil {
			return deviceGrant{}, err
		}
		if _, taken := p.userCodes[g.userCode]; !taken {
			break
		}
	}
	p.issued++
	g.seq = p.issued
	stored := g
	p.devices[g.deviceCode] = &stored
	p.userCodes[g.userCode] = &stored
	return g, nil
}

// decide approves the pending grant with this user code for user, or
// denies it when user is nil.
func (p *pending) decide(now time.Time, userCode string, user *User) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	g, ok := p.userCodes[normalizeUserCode(userCode)]
	if !ok || g.state != devicePending || !now.Before(g.expires) {
		return errUnknownUserCode
	}
	if user == nil {
		g.state = deviceDenied
		return nil
	}
	g.state = deviceApproved
	g.login = login{user: *user, clientID: g.clientID, scope: grantedScopes(g.scope, user.Role), authTime: now}
	return nil
}

// poll answers one token request for a device code: the login once
// approved, or the RFC 8628 error code that tells the client what to do.
func (p *pending) poll(now time.Time, deviceCode, clientID string) (login, string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	g, ok := p.devices[deviceCode]
	if !ok || g.clientID != clientID {
		return login{}, "invalid_grant"
	}
	if !now.Before(g.expires) {
		p.remove(g)
		return login{}, "expired_token"
	}
	// A fifth of the interval is slack for network jitter: a client that
	// waits as told is never told to slow down.
	tooSoon := now.Sub(g.lastPoll) < g.interval*4/5
	g.lastPoll = now
	if tooSoon {
		g.interval += slowDownStep
		return login{}, "slow_down"
	}
	switch g.state {
	case deviceApproved:
		p.remove(g)
		return g.login, ""
	case deviceDenied:
		p.remove(g)
		return login{}, "access_denied"
	default:
		return login{}, "authorization_pending"
	}
}

func (p *pending) remove(g *deviceGrant) {
	delete(p.devices, g.deviceCode)
	delete(p.userCodes, g.userCode)
}

func newUserCode() (string, error) {
	var b strings.Builder
	buf := make([]byte, 16)
	for b.Len() < userCodeLength {
		if _, err := rand.Read(buf); err != nil {
			return "", fmt.Errorf("generate user code: %w", err)
		}
		for _, c := range buf {
			// Rejecting the top of the byte range keeps every letter
			// equally likely.
			if int(c) < 256/len(userCodeAlphabet)*len(userCodeAlphabet) && b.Len() < userCodeLength {
				b.WriteByte(userCodeAlphabet[int(c)%len(userCodeAlphabet)])
			}
		}
	}
	return b.String(), nil
}

// normalizeUserCode accepts what a person types: any case, with or without
// the dash or spaces.
func normalizeUserCode(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r == '-' || r == ' ':
			return -1
		case r >= 'a' && r <= 'z':
			return r - 'a' + 'A'
		}
		return r
	}, s)
}

// displayUserCode writes a normalized code as people read it: ABCD-EFGH.
func displayUserCode(code string) string {
	if len(code) != userCodeLength {
		return code
	}
	return code[:4] + "-" + code[4:]
}

func randomToken(n int) (string, error) {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("generate random token: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}
