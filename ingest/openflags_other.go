//go:build !unix

package ingest

// memberOpenFlags: no extra open flags where O_NOFOLLOW does not exist.
const memberOpenFlags = 0
