package server

import (
	"crypto/tls"
	"net"
	"net/http"
	"sync"
	"time"
)

// SilenceGrace is how long a new connection may take to send its first
// complete request header before, at the cap, it goes ahead of idle
// keep-alive connections. Under it, a silent connection is still the
// first to go after the idle ones: a client that connects and says nothing
// holds a slot no longer than any other waste.
const SilenceGrace = 500 * time.Millisecond

// connLimiter caps a server's open connections. At the cap a new
// connection does not wait in the kernel's queue behind sockets that send
// nothing: it takes the slot of a connection that has gone silent (never
// sent a complete request header within SilenceGrace), else of an idle
// keep-alive one, else of the silent connection open longest. Only when
// every connection is serving a request does Accept wait for one to end.
// So a flood of connections that never speak, however large, cannot keep
// a probe or a real client out: each arrival pushes out the oldest of them.
type connLimiter struct {
	net.Listener
	max      int
	onSilent func() // learns each connection closed for silence

	mu     sync.Mutex
	freed  *sync.Cond
	open   int
	opened uint64
	// silent and idle hold the connections that hold a slot without
	// serving a request, oldest first: silent ones by when they were
	// accepted, idle ones by when they turned idle.
	silent, idle connList
}

func newConnLimiter(ln net.Listener, max int, onSilent func()) *connLimiter {
	l := &connLimiter{Listener: ln, max: max, onSilent: onSilent}
	l.freed = sync.NewCond(&l.mu)
	return l
}

// Accept takes the next connection, making room for it first when the
// server is full.
func (l *connLimiter) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	now := time.Now()
	l.mu.Lock()
	var victim *limitedConn
	silent := false
	for l.open >= l.max && victim == nil {
		if victim, silent = l.victim(now); victim == nil {
			l.freed.Wait() // every connection is busy: wait, as LimitListener did
		}
	}
	lc := &limitedConn{Conn: c, l: l, since: now, state: connSilent}
	l.open++
	l.opened++
	l.silent.pushBack(lc)
	l.mu.Unlock()
	if victim != nil {
		if silent && l.onSilent != nil {
			l.onSilent()
		}
		_ = victim.Conn.Close()
	}
	return lc, nil
}

// victim picks the connection to close for a newcomer and frees its slot;
// silent says it never spoke. It returns nil when every connection is
// serving a request. l.mu is held.
func (l *connLimiter) victim(now time.Time) (v *limitedConn, silent bool) {
	v = l.silent.front()
	// A connection whose request is waiting in its socket has spoken; its
	// goroutine has not yet run. Under a flood that can take longer than
	// the arrival of max newer connections, so it is looked past.
	for v != nil && pending(v.Conn) {
		v = v.next
	}
	if v == nil || now.Sub(v.since) < SilenceGrace {
		if idle := l.idle.front(); idle != nil {
			v = idle
		}
	}
	if v == nil {
		return nil, false
	}
	silent = v.state == connSilent
	l.release(v)
	return v, silent
}

// release frees c's slot once. l.mu is held.
func (l *connLimiter) release(c *limitedConn) {
	if c.state == connGone {
		return
	}
	l.listOf(c.state).remove(c)
	c.state = connGone
	l.open--
	l.freed.Signal()
}

func (l *connLimiter) listOf(state connState) *connList {
	switch state {
	case connSilent:
		return &l.silent
	case connIdle:
		return &l.idle
	}
	return &connList{}
}

// track follows net/http's view of each connection: StateActive comes
// once a complete request header has been read, StateIdle after an answer
// on a keep-alive connection.
func (l *connLimiter) track(c net.Conn, state http.ConnState) {
	switch wrapped := c.(type) {
	case *tls.Conn:
		c = wrapped.NetConn()
	case *refusalConn:
		c = wrapped.Conn
	}
	lc, ok := c.(*limitedConn)
	if !ok {
		return
	}
	l.mu.Lock()
	shed := false
	switch {
	case lc.state == connGone:
	case state == http.StateActive:
		l.listOf(lc.state).remove(lc)
		lc.state = connActive
	case state == http.StateIdle:
		l.listOf(lc.state).remove(lc)
		lc.state, lc.since = connIdle, time.Now()
		l.idle.pushBack(lc)
		// Full: a connection that turns idle goes at once, so a client
		// waiting in Accept gets its slot. A client whose idle connection
		// is closed dials again; Go and curl retry an idempotent request
		// on a reused connection the server closed.
		if shed = l.open >= l.max; shed {
			l.release(lc)
		}
	}
	l.mu.Unlock()
	if shed {
		_ = lc.Conn.Close()
	}
}

// stats reports the connections accepted since start and open now.
func (l *connLimiter) stats() (accepted uint64, open int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.opened, l.open
}

type connState uint8

const (
	connSilent connState = iota // accepted, no complete request header yet
	connActive                  // serving a request
	connIdle                    // between requests on a keep-alive connection
	connGone                    // slot freed
)

// limitedConn is one connection holding a slot; closing it frees the slot.
type limitedConn struct {
	net.Conn
	l          *connLimiter
	state      connState
	since      time.Time
	prev, next *limitedConn
}

func (c *limitedConn) Close() error {
	c.l.mu.Lock()
	c.l.release(c)
	c.l.mu.Unlock()
	return c.Conn.Close()
}

// connList is an intrusive doubly linked list, so that finding the oldest
// connection and removing any one are O(1) without allocating.
type connList struct{ head, tail *limitedConn }

func (q *connList) front() *limitedConn { return q.head }

func (q *connList) pushBack(c *limitedConn) {
	c.prev, c.next = q.tail, nil
	if q.tail != nil {
		q.tail.next = c
	} else {
		q.head = c
	}
	q.tail = c
}

func (q *connList) remove(c *limitedConn) {
	if c.prev != nil {
		c.prev.next = c.next
	} else if q.head == c {
		q.head = c.next
	}
	if c.next != nil {
		c.next.prev = c.prev
	} else if q.tail == c {
		q.tail = c.prev
	}
	c.prev, c.next = nil, nil
}
