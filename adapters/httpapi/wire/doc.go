// Package wire is the HTTP contract between trustchain's hops: the paths,
// the JSON of products, pages and errors, the paging query and its Link
// header, and the one table that turns domain errors into statuses on the
// way out and statuses back into domain errors on the way in.
//
// It is the part of the HTTP adapter that both ends share. The server
// (package server) writes what this package defines and the client (package
// client) reads it back; each imports wire and never the other, so what a
// hop sends and what the hop above accepts cannot drift apart.
package wire
