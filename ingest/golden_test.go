package ingest

import "flag"

// update rewrites golden files instead of comparing against them. It is
// shared by every golden test of package ingest: `go test ./ingest -update`.
var update = flag.Bool("update", false, "rewrite golden files")
