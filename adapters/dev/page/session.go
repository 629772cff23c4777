package page

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"sync"
	"time"
)

// maxSessions caps the sessions held in memory. Anyone who can reach the
// page can start one, so when the cap is hit the session closest to expiry
// makes room.
const maxSessions = 1000

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
	mu   sync.Mutex
	byID map[string]*session
	ttl  time.Duration
	now  func() time.Time
}

func newSessions(ttl time.Duration, now func() time.Time) *sessions {
	return &sessions{byID: map[string]*session{}, ttl: ttl, now: now}
}

// create starts an empty session and returns its id.
func (s *sessions) create() (string, error) {
	return s.insert(&session{})
}

func (s *sessions) insert(sess *session) (string, error) {
	id, err := randomString(32)
	if err != nil {
		return "", err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	sess.expires = now.Add(s.ttl)
	for k, v := range s.byID {
		if !now.Before(v.expires) {
			delete(s.byID, k)
		}
	}
	if len(s.byID) >= maxSessions {
		var oldest string
		for k, v := range s.byID {
			if oldest == "" || v.expires.Before(s.byID[oldest].expires) {
				oldest = k
			}
		}
		delete(s.byID, oldest)
	}
	s.byID[id] = sess
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

// update changes the live session with this id under the lock.
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
	if ok {
		delete(s.byID, id)
	}
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
	delete(s.byID, id)
}

func (s *sessions) len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.byID)
}

func (s *sessions) live(id string) (*session, bool) {
	sess, ok := s.byID[id]
	if !ok {
		return nil, false
	}
	if !s.now().Before(sess.expires) {
		delete(s.byID, id)
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
