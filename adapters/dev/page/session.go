package page

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"sync"
	"time"
)

// maxSessions caps each of the two kinds of session held in memory.
// Anyone who can reach the page can start an anonymous one (every press of
// Log in does), so anonymous sessions are a store of their own: when it is
// full, the anonymous session closest to expiry makes room, and a flood of
// them never signs anyone out. A signed-in session needs a login at the
// issuer, which limits password attempts; its store evicts only its own.
const maxSessions = 1000

// maxSessionsPerUser keeps one user's many logins (a printed demo password
// used in a loop) from pushing other users' sessions out of the signed-in
// store: that user's oldest session goes first.
const maxSessionsPerUser = 16

// session is one browser's state. It lives only in server memory; the
// browser holds nothing but its random id.
type session struct {
	expires time.Time
	pending *pendingLogin // set by /login, spent by /callback
	user    *loggedIn
	result  *callResult // the last call, shown until the next one
}

// pendingLogin is what /callback checks the issuer's answer against.
type pendingLogin struct {
	state, nonce, verifier string
	started                time.Time
	prover                 Prover // this login's DPoP key, when DPoP is on
}

// loggedIn is a verified login. The access token stays here, on the
// server; the page shows only its decoded claims.
type loggedIn struct {
	accessToken string
	sub         string
	claims      map[string]any // verified access-token claims
	prover      Prover         // the key the token is bound to, or nil
}

type sessions struct {
	mu        sync.Mutex
	anonymous map[string]*session // no user yet: pressed Log in or a call
	signedIn  map[string]*session // made only by rotate after a login
	ttl       time.Duration
	now       func() time.Time
}

func newSessions(ttl time.Duration, now func() time.Time) *sessions {
	return &sessions{anonymous: map[string]*session{}, signedIn: map[string]*session{}, ttl: ttl, now: now}
}

// create starts an empty session and returns its id.
func (s *sessions) create() (string, error) {
	return s.insert(&session{})
}

// insert stores sess under a fresh id, in the store its user puts it in.
func (s *sessions) insert(sess *session) (string, error) {
	id, err := randomString(32)
	if err != nil {
		return "", err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	sess.expires = now.Add(s.ttl)
	store, sameUser := s.anonymous, func(*session) bool { return false }
	if sess.user != nil {
		store = s.signedIn
		sameUser = func(v *session) bool { return v.user.sub == sess.user.sub }
	}
	var oldest, oldestOfUser string
	users := 0
	for k, v := range store {
		if !now.Before(v.expires) {
			delete(store, k)
			continue
		}
		if oldest == "" || v.expires.Before(store[oldest].expires) {
			oldest = k
		}
		if sameUser(v) {
			users++
			if oldestOfUser == "" || v.expires.Before(store[oldestOfUser].expires) {
				oldestOfUser = k
			}
		}
	}
	switch {
	case users >= maxSessionsPerUser:
		delete(store, oldestOfUser)
	case len(store) >= maxSessions:
		delete(store, oldest)
	}
	store[id] = sess
	return id, nil
}

// get returns a copy of the live session with this id.
func (s *sessions) get(id string) (session, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sess, ok := s.live(id)
	if !ok {
		return session{}, false
	}
	return *sess, true
}

// update changes the live session with this id under the lock. f must not
// sign the session in or out: rotate does that, moving it between stores.
func (s *sessions) update(id string, f func(*session)) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	sess, ok := s.live(id)
	if ok {
		f(sess)
	}
	return ok
}

// rotate moves a session to a fresh id, so an id seen before a login is
// worthless after it, and lets f change it on the way.
func (s *sessions) rotate(id string, f func(*session)) (string, error) {
	s.mu.Lock()
	sess, ok := s.live(id)
	s.deleteLocked(id)
	s.mu.Unlock()
	if !ok {
		sess = &session{}
	}
	f(sess)
	return s.insert(sess)
}

func (s *sessions) delete(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.deleteLocked(id)
}

func (s *sessions) deleteLocked(id string) {
	delete(s.anonymous, id)
	delete(s.signedIn, id)
}

// counts returns how many anonymous and signed-in sessions are held.
func (s *sessions) counts() (anonymous, signedIn int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.anonymous), len(s.signedIn)
}

func (s *sessions) live(id string) (*session, bool) {
	sess, ok := s.signedIn[id]
	if !ok {
		sess, ok = s.anonymous[id]
	}
	if !ok {
		return nil, false
	}
	if !s.now().Before(sess.expires) {
		s.deleteLocked(id)
		return nil, false
	}
	return sess, true
}

func randomString(n int) (string, error) {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("generate random value: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}
