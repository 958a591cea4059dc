// Package collect is the capture side of flowblame: it records packets
// (AF_PACKET TPACKET_V3 rings, one per interface, truncated in the kernel by
// a classic BPF program), per-interface kernel counters, interface addresses
// and socket↔process observations (from collect/sockwatch) into a bundle
// (format v1, the types of package ingest), then seals it with a manifest
// listing every file's size and SHA-256, optionally as a .tar.gz.
//
// Example:
//
//	res, err := collect.Run(ctx, collect.Options{
//		Duration: 30 * time.Second,
//		Out:      "/var/tmp/fb",
//	})
//	// res.Path is the finished bundle (directory or .tar.gz).
//
// Verify checks a finished bundle against its manifest.
package collect
