// Package httpin is the inbound HTTP side of every role: the API server with
// its routes, the bearer-token and peer-identity middleware, the admin server
// with health, readiness and metrics, and the one table that maps domain
// errors to HTTP statuses.
package httpin
