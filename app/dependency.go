package app

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/cenkalti/backoff/v5"
)

// dependency is something a role needs before it can serve (the issuer's
// keys, MySQL) and that may come up after the role does. It is one mechanism
// for all of them: the role serves its admin port at once, brings the
// dependency up with jittered exponential backoff for as long as it takes,
// and /readyz reports it not ready, with the last cause, until it is.
type dependency struct {
	name string
	// connect makes one attempt at bringing the dependency up.
	connect func(ctx context.Context) error
	// check, when set, is asked once the dependency is up, by every
	// readiness probe: a database can go away again.
	check func(ctx context.Context) error
	// keep, when set, runs once the dependency is up, until ctx ends
	// (the issuer's key refresh).
	keep func(ctx context.Context)
	// onState, when set, learns every change of up (metrics).
	onState func(up bool)

	mu      sync.Mutex
	up      bool
	lastErr error
}

const (
	retryInitial = 250 * time.Millisecond
	retryMax     = 30 * time.Second
)

// run brings the dependency up, then keeps it, until ctx ends.
func (d *dependency) run(ctx context.Context, log *slog.Logger) {
	b := backoff.NewExponentialBackOff()
	b.InitialInterval, b.MaxInterval = retryInitial, retryMax
	attempt := 0
	_, err := backoff.Retry(ctx, func() (struct{}, error) {
		attempt++
		err := d.connect(ctx)
		d.set(err == nil, err)
		return struct{}{}, err
	},
		backoff.WithBackOff(b),
		backoff.WithMaxElapsedTime(0), // until it comes up or the role stops
		backoff.WithNotify(func(err error, wait time.Duration) {
			log.Warn("dependency not up yet; retrying",
				slog.String("dependency", d.name), slog.Int("attempt", attempt),
				slog.Float64("retry_in_seconds", wait.Seconds()), slog.String("error", err.Error()))
		}),
	)
	if err != nil {
		return // ctx ended first
	}
	log.Info("dependency up", slog.String("dependency", d.name), slog.Int("attempts", attempt))
	if d.keep != nil {
		d.keep(ctx)
	}
}

func (d *dependency) set(up bool, err error) {
	d.mu.Lock()
	changed := d.up != up
	d.up, d.lastErr = up, err
	d.mu.Unlock()
	if changed && d.onState != nil {
		d.onState(up)
	}
}

// errNotStarted is the cause before the first attempt has finished.
var errNotStarted = errors.New("not connected yet")

// ready is the dependency's readiness check: nil when it serves, else why
// not, for /readyz.
func (d *dependency) ready(ctx context.Context) error {
	d.mu.Lock()
	up, lastErr := d.up, d.lastErr
	d.mu.Unlock()
	if !up {
		if lastErr == nil {
			return errNotStarted
		}
		return lastErr
	}
	if d.check == nil {
		return nil
	}
	err := d.check(ctx)
	if d.onState != nil {
		d.onState(err == nil)
	}
	return err
}
