package page

// SessionCounts returns how many anonymous and signed-in sessions p holds.
func SessionCounts(p *Page) (anonymous, signedIn int) { return p.sessions.counts() }
