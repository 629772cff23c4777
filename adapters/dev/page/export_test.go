package page

// SessionCount reports how many sessions p holds, for the test of the cap.
func SessionCount(p *Page) int { return p.sessions.len() }
