package collect

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"strconv"
	"strings"

	"github.com/flowblame/flowblame/ingest"
	"golang.org/x/net/bpf"
)

// packetOutgoing is PACKET_OUTGOING, the sll_pkttype of a frame the host
// sent. On loopback every frame is seen twice (outgoing and host): the
// outgoing copy is dropped in the kernel.
const packetOutgoing = 4

// maxBPFInstructions is the kernel's BPF_MAXINSNS.
const maxBPFInstructions = 4096

// ErrNoFilterCompiler says a --filter expression was given but tcpdump,
// which compiles it, is not installed.
var ErrNoFilterCompiler = errors.New("tcpdump not found: --filter needs tcpdump (apt install tcpdump) to compile pcap-filter expressions; without it flowblame captures everything (snaplen still applies)")

// BuildProgram returns the classic BPF program attached to a capture socket:
// on loopback interfaces a prefix that drops PACKET_OUTGOING duplicates,
// then the user's compiled filter (nil = accept all) with every accepting
// `ret #k` (k != 0) rewritten to `ret #snaplen`, so the kernel truncates
// each frame to snaplen before copying it into the ring. A `ret a` is
// routed through an appended tail returning 0 when A is 0, else snaplen.
// Relative jumps of the user program stay valid because the prefix only
// precedes it.
func BuildProgram(user []bpf.RawInstruction, snaplen uint32, loopback bool) ([]bpf.RawInstruction, error) {
	if snaplen == 0 {
		return nil, errors.New("build bpf program: snaplen must be > 0")
	}
	var prog []bpf.Instruction
	if loopback {
		prog = append(prog,
			bpf.LoadExtension{Num: bpf.ExtType},
			bpf.JumpIf{Cond: bpf.JumpEqual, Val: packetOutgoing, SkipTrue: 0, SkipFalse: 1},
			bpf.RetConstant{Val: 0},
		)
	}
	out, err := bpf.Assemble(prog)
	if err != nil {
		return nil, fmt.Errorf("assemble bpf prefix: %w", err)
	}
	if len(user) == 0 {
		ret, _ := bpf.RetConstant{Val: snaplen}.Assemble()
		return append(out, ret), nil
	}
	base := len(out)
	retOK, _ := bpf.RetConstant{Val: snaplen}.Assemble()
	var retAIdx []int
	for i, ri := range user {
		switch ins := ri.Disassemble().(type) {
		case bpf.RetConstant:
			if ins.Val != 0 {
				ri = retOK
			}
		case bpf.RetA:
			retAIdx = append(retAIdx, base+i)
		case bpf.Jump:
			if base+i+1+int(ins.Skip) >= base+len(user) {
				return nil, fmt.Errorf("build bpf program: instruction %d jumps past the end", i)
			}
		case bpf.JumpIf, bpf.JumpIfX:
			jt, jf := int(ri.Jt), int(ri.Jf)
			if i+1+jt >= len(user) || i+1+jf >= len(user) {
				return nil, fmt.Errorf("build bpf program: instruction %d jumps past the end", i)
			}
		}
		out = append(out, ri)
	}
	if len(retAIdx) > 0 {
		tail := len(out)
		t, _ := bpf.Assemble([]bpf.Instruction{
			bpf.JumpIf{Cond: bpf.JumpEqual, Val: 0, SkipTrue: 0, SkipFalse: 1},
			bpf.RetConstant{Val: 0},
			bpf.RetConstant{Val: snaplen},
		})
		out = append(out, t...)
		for _, i := range retAIdx {
			ja, _ := bpf.Jump{Skip: uint32(tail - i - 1)}.Assemble()
			out[i] = ja
		}
	}
	if len(out) > maxBPFInstructions {
		return nil, fmt.Errorf("build bpf program: %d instructions exceed the kernel limit %d", len(out), maxBPFInstructions)
	}
	return out, nil
}

// ParseDDD parses the output of `tcpdump -ddd`: a line with the instruction
// count, then one "code jt jf k" line (decimal) per instruction.
func ParseDDD(r io.Reader) ([]bpf.RawInstruction, error) {
	sc := bufio.NewScanner(io.LimitReader(r, 1<<20))
	sc.Buffer(make([]byte, 0, 256), 256)
	var (
		prog []bpf.RawInstruction
		want = -1
		line int
	)
	for sc.Scan() {
		line++
		f := strings.Fields(sc.Text())
		if len(f) == 0 {
			continue
		}
		if want < 0 {
			n, err := strconv.Atoi(f[0])
			if len(f) != 1 || err != nil || n <= 0 || n > maxBPFInstructions {
				return nil, fmt.Errorf("parse tcpdump -ddd line %d: bad instruction count %q: %w", line, sc.Text(), ingest.ErrMalformed)
			}
			want = n
			prog = make([]bpf.RawInstruction, 0, n)
			continue
		}
		if len(f) != 4 {
			return nil, fmt.Errorf("parse tcpdump -ddd line %d: want 4 fields, got %q: %w", line, sc.Text(), ingest.ErrMalformed)
		}
		var v [4]uint64
		for i, s := range f {
			bits := []int{16, 8, 8, 32}[i]
			n, err := strconv.ParseUint(s, 10, bits)
			if err != nil {
				return nil, fmt.Errorf("parse tcpdump -ddd line %d: field %q: %w", line, s, ingest.ErrMalformed)
			}
			v[i] = n
		}
		if len(prog) == want {
			return nil, fmt.Errorf("parse tcpdump -ddd line %d: more than %d instructions: %w", line, want, ingest.ErrMalformed)
		}
		prog = append(prog, bpf.RawInstruction{Op: uint16(v[0]), Jt: uint8(v[1]), Jf: uint8(v[2]), K: uint32(v[3])})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("parse tcpdump -ddd: %w", err)
	}
	if want < 0 {
		return nil, fmt.Errorf("parse tcpdump -ddd: empty output: %w", ingest.ErrMalformed)
	}
	if len(prog) != want {
		return nil, fmt.Errorf("parse tcpdump -ddd: %d of %d instructions: %w", len(prog), want, ingest.ErrTruncated)
	}
	return prog, nil
}

// dltName is tcpdump's -y name for a link type the collector captures.
func dltName(lt ingest.LinkType) (string, error) {
	switch lt {
	case ingest.LinkEthernet:
		return "EN10MB", nil
	case ingest.LinkRaw:
		return "RAW", nil
	}
	return "", fmt.Errorf("no tcpdump link type name for link type %d", lt)
}

// CompileFilter compiles a pcap-filter expression (tcpdump syntax) for the
// given link type by running `tcpdump -ddd -y DLT -s SNAPLEN EXPR`: exactly
// the program libpcap itself would attach. tcpdump is the path of the
// tcpdump binary ("" = look it up in PATH). An empty expression compiles to
// nil (accept all).
func CompileFilter(ctx context.Context, tcpdump, expr string, lt ingest.LinkType, snaplen int) ([]bpf.RawInstruction, error) {
	if strings.TrimSpace(expr) == "" {
		return nil, nil
	}
	if tcpdump == "" {
		p, err := exec.LookPath("tcpdump")
		if err != nil {
			return nil, ErrNoFilterCompiler
		}
		tcpdump = p
	}
	dlt, err := dltName(lt)
	if err != nil {
		return nil, fmt.Errorf("compile filter %q: %w", expr, err)
	}
	cmd := exec.CommandContext(ctx, tcpdump, "-ddd", "-y", dlt, "-s", strconv.Itoa(snaplen), "--", expr)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		msg := strings.TrimSpace(stderr.String())
		if msg == "" {
			msg = err.Error()
		}
		return nil, fmt.Errorf("compile filter %q: %s", expr, msg)
	}
	prog, err := ParseDDD(&stdout)
	if err != nil {
		return nil, fmt.Errorf("compile filter %q: %w", expr, err)
	}
	return prog, nil
}
