//go:build race

package oidc

// raceEnabled lets the heaviest test skip under the race detector, which
// slows it forty-fold; the plain run covers it.
const raceEnabled = true
