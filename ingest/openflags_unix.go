//go:build unix

package ingest

import "syscall"

// memberOpenFlags open a bundle member without following a symlink and
// without blocking on a FIFO put in its place after it was checked.
const memberOpenFlags = syscall.O_NOFOLLOW | syscall.O_NONBLOCK
