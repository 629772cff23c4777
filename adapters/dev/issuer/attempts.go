package issuer

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"time"
)

// Password guessing is bounded per user: after maxFailures wrong passwords
// within failureWindow, the user's logins are refused for lockout, right
// password or not, so a guesser gets maxFailures tries a minute at most.
// Refused attempts do not extend the lockout: a flood of guesses cannot keep
// the user out for longer than lockout after it stops.
const (
	maxFailures   = 5
	failureWindow = time.Minute
	lockout       = time.Minute
)

var errWrongPassword = errors.New("wrong name or password")

// lockedError refuses a login while the user is locked out.
type lockedError struct{ wait time.Duration }

func (e *lockedError) Error() string {
	return fmt.Sprintf("too many wrong passwords for this user; try again in %d seconds", retryAfterSeconds(e.wait))
}

// retryAfterSeconds is wait in whole seconds, rounded up, at least 1.
func retryAfterSeconds(wait time.Duration) int {
	return max(1, int((wait+time.Second-1)/time.Second))
}

// attempts counts wrong passwords per user. Names that are not users share
// one entry: the map stays as small as the user list whatever names a
// guesser types, and a locked-out name says nothing about whether it exists.
type attempts struct {
	mu     sync.Mutex
	byName map[string]*failures
}

type failures struct {
	count        int
	since        time.Time // start of the window being counted
	blockedUntil time.Time
}

func newAttempts() *attempts { return &attempts{byName: map[string]*failures{}} }

// blocked returns how long the key is still locked out, or 0.
func (a *attempts) blocked(now time.Time, key string) time.Duration {
	a.mu.Lock()
	defer a.mu.Unlock()
	if f, ok := a.byName[key]; ok && now.Before(f.blockedUntil) {
		return f.blockedUntil.Sub(now)
	}
	return 0
}

// fail counts one wrong password for the key.
func (a *attempts) fail(now time.Time, key string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	f, ok := a.byName[key]
	if !ok || now.Sub(f.since) >= failureWindow {
		f = &failures{since: now}
		a.byName[key] = f
	}
	f.count++
	if f.count >= maxFailures {
		f.blockedUntil = now.Add(lockout)
		f.count, f.since = 0, now.Add(lockout)
	}
}

// succeed forgets the key's wrong passwords.
func (a *attempts) succeed(key string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	delete(a.byName, key)
}

// refuseLogin answers a refused login on a form: 429 with Retry-After when
// the user is locked out, 401 for a wrong password. It returns the status
// and the message for the form.
func refuseLogin(w http.ResponseWriter, err error) (int, string) {
	var locked *lockedError
	if errors.As(err, &locked) {
		w.Header().Set("Retry-After", strconv.Itoa(retryAfterSeconds(locked.wait)))
		return http.StatusTooManyRequests, "Too many wrong passwords for this user. Try again in " + strconv.Itoa(retryAfterSeconds(locked.wait)) + " seconds."
	}
	return http.StatusUnauthorized, "Wrong name or password."
}
