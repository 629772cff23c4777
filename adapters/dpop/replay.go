package dpop

import (
	"crypto/sha256"
	"errors"
	"sync"
	"time"

	"github.com/hashicorp/golang-lru/v2/simplelru"

	"github.com/trustchain/trustchain/domain"
)

// replayStore remembers the jtis of accepted proofs until they could no
// longer be accepted anyway (iat + max age), so each proof is used once.
// It is per process: replicas do not share it (nonces narrow that gap).
//
// It never forgets a jti that could still be replayed: when it is full, it
// drops the oldest entry only if that one has expired, and otherwise
// refuses the new proof (ErrReplayStoreFull, answered as overload) rather
// than let an earlier proof be replayed. Entries are keyed by the SHA-256
// of the key's thumbprint and the jti, so one client cannot spend another's
// jtis, and hold about 100 bytes each.
type replayStore struct {
	mu       sync.Mutex
	lru      *simplelru.LRU[[sha256.Size]byte, time.Time] // insertion order: lookups only Peek
	size     int
	onExpire func()
}

func newReplayStore(size int, onExpire func()) *replayStore {
	lru, _ := simplelru.NewLRU[[sha256.Size]byte, time.Time](size, nil) // size >= 1: New sets a default
	return &replayStore{lru: lru, size: size, onExpire: onExpire}
}

// add records jti of the key jkt until expires, or refuses it as a replay.
func (s *replayStore) add(jkt, jti string, expires, now time.Time) error {
	key := replayKey(jkt, jti)
	s.mu.Lock()
	defer s.mu.Unlock()
	if seen, ok := s.lru.Peek(key); ok && now.Before(seen) {
		return refuse(domain.ReasonProofReplay, errors.New("jti was used before"))
	}
	// Make room from the oldest end while what is there has expired: the
	// entries were added in about the order they expire.
	for s.lru.Len() >= s.size {
		_, oldest, _ := s.lru.GetOldest()
		if now.Before(oldest) {
			return refuse(domain.ReasonProofStoreFull, errors.New("every remembered jti is still live"))
		}
		s.lru.RemoveOldest()
		if s.onExpire != nil {
			s.onExpire()
		}
	}
	s.lru.Add(key, expires)
	return nil
}

func (s *replayStore) len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lru.Len()
}

func replayKey(jkt, jti string) [sha256.Size]byte {
	h := sha256.New()
	h.Write([]byte(jkt))
	h.Write([]byte{0})
	h.Write([]byte(jti))
	var k [sha256.Size]byte
	h.Sum(k[:0])
	return k
}
