package ingest

import (
	"path"
	"strconv"
	"strings"
)

// ProcessHint.Source values.
const (
	// HintSourceOption: a pcapng option carried the process (an Apple
	// pktap process-information index, or a custom string option in the
	// comment format below).
	HintSourceOption = "pcapng-option"
	// HintSourceComment: a ptcpdump-style packet comment.
	HintSourceComment = "pcapng-comment"
)

// maxCommLen is the length of a Linux task comm (TASK_COMM_LEN - 1).
const maxCommLen = 15

// ParseProcessHint parses process information from a packet comment in the
// format ptcpdump writes (one "Key: value" per line, several comments
// joined by newlines):
//
//	PID: 1234
//	Cmd: /usr/bin/curl
//	Args: curl https://example.com
//
// Keys are matched case-insensitively; "Command" is accepted for "Cmd",
// "Comm" gives the comm directly, and a line of space-separated key=value
// pairs ("pid=N comm=sshd") is read as well.
// Comm is the base name of Cmd cut to 15 bytes, as the kernel stores it;
// Cmd is the full command line (Args) or else the executable path. Lines of
// other keys (ThreadId, ParentPID, ContainerName...) are ignored. It returns
// nil unless a positive PID is found.
func ParseProcessHint(comment string) *ProcessHint {
	if !strings.Contains(comment, "PID") && !strings.Contains(comment, "pid") && !strings.Contains(comment, "Pid") {
		return nil
	}
	var h ProcessHint
	var exe, args string
	set := func(key, val string) {
		key, val = strings.TrimSpace(key), strings.TrimSpace(val)
		switch strings.ToLower(key) {
		case "pid":
			if n, err := strconv.Atoi(val); err == nil && n > 0 && h.PID == 0 {
				h.PID = n
			}
		case "cmd", "command", "exe":
			if exe == "" {
				exe = val
			}
		case "args", "cmdline":
			if args == "" {
				args = val
			}
		case "comm":
			if h.Comm == "" {
				h.Comm = val
			}
		}
	}
	for line := range strings.SplitSeq(comment, "\n") {
		if key, val, ok := strings.Cut(line, ":"); ok {
			set(key, val)
			continue
		}
		for field := range strings.FieldsSeq(line) {
			if key, val, ok := strings.Cut(field, "="); ok {
				set(key, val)
			}
		}
	}
	if h.PID <= 0 {
		return nil
	}
	if h.Comm == "" && exe != "" {
		h.Comm = path.Base(exe)
	}
	if len(h.Comm) > maxCommLen {
		h.Comm = h.Comm[:maxCommLen]
	}
	h.Cmd = args
	if h.Cmd == "" {
		h.Cmd = exe
	}
	h.Source = HintSourceComment
	return &h
}
