// Package httpapi is trustchain's HTTP vocabulary, in both directions: the
// API and admin servers with their routes and middleware, the client a hop
// uses to call the next one, the wire format of products and errors, and the
// one table that turns domain errors into statuses on the way out and
// statuses back into domain errors on the way in.
package httpapi
