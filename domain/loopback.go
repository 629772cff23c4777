package domain

import "net"

// IsLoopbackHost reports whether host (a name or an IP, without a port)
// stays on this machine: "localhost" or a loopback address. It is the one
// exception to the chain's rule that tokens, keys and telemetry never
// travel in clear: plain http is accepted only to such a host, which the
// demo and the tests use.
func IsLoopbackHost(host string) bool {
	ip := net.ParseIP(host)
	return host == "localhost" || (ip != nil && ip.IsLoopback())
}
