package spiffetls

import "time"

// SetCheckInterval lets tests see a rotation without waiting a second.
func SetCheckInterval(s *FileSource, d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.interval = d
}

// SetMonitorClock lets tests age an SVID without waiting.
func SetMonitorClock(m *Monitor, now func() time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.now = now
}
