package sockwatch

import (
	"encoding/binary"
	"fmt"
	"os"
	"strconv"
	"time"

	"golang.org/x/sys/unix"
)

// Proc connector constants (linux/connector.h, linux/cn_proc.h).
const (
	cnIdxProc         = 1
	cnValProc         = 1
	cnMsgLen          = 20 // struct cn_msg without data
	procCnMcastListen = 1
	procEventFork     = 0x1
	procEventExec     = 0x2
	procEventExit     = 0x80000000
)

// procEvent is one decoded proc-connector event about a process (thread
// events are dropped by the parser).
type procEvent struct {
	What uint32 // procEventFork | procEventExec | procEventExit
	PID  int    // the child (fork), the exec'ing or the exiting process
	PPID int    // fork: the parent process
	// Mono is the kernel's CLOCK_MONOTONIC timestamp of the event (ns).
	Mono int64
}

// parseProcEvent decodes the payload of one NETLINK_CONNECTOR message
// (cn_msg + proc_event). ok is false for events sockwatch does not use
// (threads, uid/gid/comm changes, acks).
func parseProcEvent(p []byte) (ev procEvent, ok bool, err error) {
	le := binary.LittleEndian
	if len(p) < cnMsgLen {
		return ev, false, fmt.Errorf("cn_msg: %d bytes", len(p))
	}
	if le.Uint32(p[0:]) != cnIdxProc || le.Uint32(p[4:]) != cnValProc {
		return ev, false, nil
	}
	dlen := int(le.Uint16(p[16:]))
	d := p[cnMsgLen:]
	if dlen > len(d) {
		return ev, false, fmt.Errorf("cn_msg data length %d, %d bytes present", dlen, len(d))
	}
	d = d[:dlen]
	// struct proc_event: u32 what, u32 cpu, u64 timestamp_ns, union event_data
	if len(d) < 16 {
		return ev, false, fmt.Errorf("proc_event: %d bytes", len(d))
	}
	ev.What = le.Uint32(d[0:])
	ev.Mono = int64(le.Uint64(d[8:]))
	e := d[16:]
	switch ev.What {
	case procEventFork: // parent_pid, parent_tgid, child_pid, child_tgid
		if len(e) < 16 {
			return ev, false, fmt.Errorf("fork event: %d bytes", len(e))
		}
		child, ctgid := le.Uint32(e[8:]), le.Uint32(e[12:])
		if child != ctgid {
			return ev, false, nil // a new thread
		}
		ev.PID, ev.PPID = int(child), int(le.Uint32(e[4:]))
	case procEventExec: // process_pid, process_tgid
		if len(e) < 8 {
			return ev, false, fmt.Errorf("exec event: %d bytes", len(e))
		}
		ev.PID = int(le.Uint32(e[4:]))
	case procEventExit: // process_pid, process_tgid, exit_code, exit_signal, ...
		if len(e) < 8 {
			return ev, false, fmt.Errorf("exit event: %d bytes", len(e))
		}
		pid, tgid := le.Uint32(e[0:]), le.Uint32(e[4:])
		if pid != tgid {
			return ev, false, nil // a thread exits
		}
		ev.PID = int(tgid)
	default:
		return ev, false, nil
	}
	return ev, true, nil
}

// openProcConn opens a NETLINK_CONNECTOR socket subscribed to process events
// (needs CAP_NET_ADMIN and CONFIG_PROC_EVENTS).
func openProcConn() (int, error) {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, unix.NETLINK_CONNECTOR)
	if err != nil {
		return -1, fmt.Errorf("open proc connector: %w", err)
	}
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, 4<<20); err != nil {
		_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, 4<<20)
	}
	if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK, Groups: cnIdxProc, Pid: 0}); err != nil {
		unix.Close(fd)
		return -1, fmt.Errorf("bind proc connector: %w", err)
	}
	var msg [nlmsgHdrLen + cnMsgLen + 4]byte
	le := binary.LittleEndian
	le.PutUint32(msg[0:], uint32(len(msg)))
	le.PutUint16(msg[4:], nlmsgDone) // connector messages travel as NLMSG_DONE
	le.PutUint32(msg[12:], uint32(unix.Getpid()))
	c := msg[nlmsgHdrLen:]
	le.PutUint32(c[0:], cnIdxProc)
	le.PutUint32(c[4:], cnValProc)
	le.PutUint16(c[16:], 4)
	le.PutUint32(c[cnMsgLen:], procCnMcastListen)
	if err := unix.Sendto(fd, msg[:], 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		unix.Close(fd)
		return -1, fmt.Errorf("subscribe to proc events: %w", err)
	}
	tv := unix.NsecToTimeval(int64(200 * time.Millisecond))
	_ = unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv)
	return fd, nil
}

// openProcConnInit opens the proc connector where it works: the kernel
// delivers process events only to sockets in the initial network namespace,
// so a collector started inside another one (ip netns exec, a container that
// shares the host's PID namespace) gets "connection refused". It then tries
// the network namespaces of the other processes it can see (at most 64),
// creating the socket on a thread switched into each; the socket stays bound
// to the namespace where subscribing worked.
func (w *watcher) openProcConnInit() (int, error) {
	fd, err := openProcConn()
	if err == nil {
		return fd, nil
	}
	ents, rerr := os.ReadDir(w.walker.proc)
	if rerr != nil {
		return -1, err
	}
	seen := map[uint64]bool{w.hostNs: true}
	for _, e := range ents {
		if len(seen) > 64 {
			break
		}
		if _, perr := strconv.Atoi(e.Name()); perr != nil {
			continue
		}
		path := w.walker.proc + "/" + e.Name() + "/ns/net"
		var st unix.Stat_t
		if unix.Stat(path, &st) != nil || seen[st.Ino] {
			continue
		}
		seen[st.Ino] = true
		nsfd, oerr := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if oerr != nil {
			continue
		}
		pfd := -1
		ierr := inNetns(nsfd, func() error {
			var e error
			pfd, e = openProcConn()
			return e
		})
		unix.Close(nsfd)
		if ierr == nil {
			return pfd, nil
		}
	}
	return -1, err
}
