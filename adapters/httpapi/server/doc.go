// Package server is a hop's inbound HTTP: the API with its one route table,
// the layers every request passes (request id, admission, peer check,
// token check, access log and metrics), the operator endpoints on their own
// port, and the listener with its limits (a connection cap that sheds
// silent and idle connections first) and graceful shutdown. What goes over the
// wire, and which status each domain error is, it takes from package wire.
package server
