// Package app is the composition root: it turns a validated Config into the
// adapters behind the ports for each role (a, b, c) and runs their servers
// until the context ends. Only here (and, for the demo, in app/demo, on
// NewChain) do adapters meet.
package app
