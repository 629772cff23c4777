package spiffetls

import "time"

// SetCheckInterval lets tests see a rotation without waiting a second.
func SetCheckInterval(s *FileSource, d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.interval = d
}
