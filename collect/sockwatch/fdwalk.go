package sockwatch

import (
	"encoding/binary"
	"errors"
	"strconv"
	"unsafe"

	"golang.org/x/sys/unix"
)

// fdWalker lists /proc and /proc/PID/fd with getdents64 and reads fd links
// with readlinkat, on buffers it reuses: walking allocates nothing but the
// results.
type fdWalker struct {
	proc  string // "/proc" (tests may point elsewhere)
	dents []byte
	link  []byte
	path  []byte
}

func newFDWalker(proc string) *fdWalker {
	return &fdWalker{proc: proc, dents: make([]byte, 32<<10), link: make([]byte, 256), path: make([]byte, 0, 64)}
}

// forEachDirent calls fn with the name of every entry of directory fd except
// "." and "..". The name aliases the walker's buffer.
func (w *fdWalker) forEachDirent(fd int, fn func(name []byte)) error {
	for {
		n, err := unix.Getdents(fd, w.dents)
		if err != nil {
			if errors.Is(err, unix.EINTR) {
				continue
			}
			return err
		}
		if n <= 0 {
			return nil
		}
		parseDirents(w.dents[:n], fn)
	}
}

// parseDirents decodes linux_dirent64 records:
//
//	u64 d_ino; s64 d_off; u16 d_reclen; u8 d_type; char d_name[];
func parseDirents(b []byte, fn func(name []byte)) {
	for len(b) >= 19 {
		reclen := int(binary.LittleEndian.Uint16(b[16:]))
		if reclen < 19 || reclen > len(b) {
			return
		}
		name := b[19:reclen]
		for i, c := range name {
			if c == 0 {
				name = name[:i]
				break
			}
		}
		if !(len(name) == 1 && name[0] == '.') && !(len(name) == 2 && name[0] == '.' && name[1] == '.') {
			fn(name)
		}
		b = b[reclen:]
	}
}

// atoiBytes parses a non-negative decimal; ok is false for anything else.
func atoiBytes(b []byte) (n int, ok bool) {
	if len(b) == 0 || len(b) > 10 {
		return 0, false
	}
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, true
}

// pids lists the numeric entries of /proc, appending to dst.
func (w *fdWalker) pids(dst []int) ([]int, error) {
	fd, err := unix.Open(w.proc, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return dst, err
	}
	defer unix.Close(fd)
	err = w.forEachDirent(fd, func(name []byte) {
		if pid, ok := atoiBytes(name); ok {
			dst = append(dst, pid)
		}
	})
	return dst, err
}

// socketInodes walks /proc/PID/fd and calls fn(fd, inode) for every socket
// fd. It returns the number of fds seen.
func (w *fdWalker) socketInodes(pid int, fn func(fd int, inode uint64)) (int, error) {
	w.path = append(w.path[:0], w.proc...)
	w.path = append(w.path, '/')
	w.path = strconv.AppendInt(w.path, int64(pid), 10)
	w.path = append(w.path, "/fd"...)
	dfd, err := unix.Open(string(w.path), unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return 0, err
	}
	defer unix.Close(dfd)
	nfd := 0
	err = w.forEachDirent(dfd, func(name []byte) {
		nfd++
		fdn, ok := atoiBytes(name)
		if !ok {
			return
		}
		n, err := readlinkatBytes(dfd, name, w.link)
		if err != nil {
			return // fd closed meanwhile
		}
		if ino, ok := parseSocketLink(w.link[:n]); ok {
			fn(fdn, ino)
		}
	})
	return nfd, err
}

// readlinkatBytes is readlinkat with a byte-slice name (no string
// allocation: the name is copied to a stack buffer with its NUL).
func readlinkatBytes(dirfd int, name, buf []byte) (int, error) {
	var nb [32]byte
	if len(name) >= len(nb) {
		return unix.Readlinkat(dirfd, string(name), buf)
	}
	copy(nb[:], name)
	nb[len(name)] = 0
	return readlinkatRaw(dirfd, &nb[0], buf)
}

// parseSocketLink decodes an fd link "socket:[12345]".
func parseSocketLink(l []byte) (uint64, bool) {
	const pfx = "socket:["
	if len(l) < len(pfx)+2 || string(l[:len(pfx)]) != pfx || l[len(l)-1] != ']' {
		return 0, false
	}
	var n uint64
	for _, c := range l[len(pfx) : len(l)-1] {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + uint64(c-'0')
	}
	return n, true
}

// fdCount returns the number of open fds of pid: st_size of /proc/PID/fd
// (Linux ≥ 6.2; 0 on older kernels) and the owner uid of /proc/PID.
func (w *fdWalker) fdCount(pid int) (count int64, err error) {
	w.path = append(w.path[:0], w.proc...)
	w.path = append(w.path, '/')
	w.path = strconv.AppendInt(w.path, int64(pid), 10)
	w.path = append(w.path, "/fd"...)
	var st unix.Stat_t
	if err := unix.Stat(string(w.path), &st); err != nil {
		return 0, err
	}
	return st.Size, nil
}

// readlinkatRaw calls readlinkat(2) with a NUL-terminated name, avoiding the
// string conversion of unix.Readlinkat.
func readlinkatRaw(dirfd int, name *byte, buf []byte) (int, error) {
	r, _, e := unix.Syscall6(unix.SYS_READLINKAT, uintptr(dirfd), uintptr(unsafe.Pointer(name)),
		uintptr(unsafe.Pointer(&buf[0])), uintptr(len(buf)), 0, 0)
	if e != 0 {
		return 0, e
	}
	return int(r), nil
}
