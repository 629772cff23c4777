// Package app is the composition root: it turns a validated Config into the
// adapters behind the ports for each role (a, b, c) and for the demo, and
// runs their servers until the context ends. Only here do adapters meet.
package app
