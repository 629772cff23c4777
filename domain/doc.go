// Package domain holds trustchain's core types and rules: products, exact
// money, the envelope the gateway adds, the caller's principal and the errors
// every layer speaks. It uses the standard library only and does no I/O.
package domain
