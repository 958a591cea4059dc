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

// ProgramSpec says what the capture program keeps of each frame.
type ProgramSpec struct {
	// SnapLen is the number of bytes kept of an accepted frame.
	SnapLen uint32
	// Loopback drops PACKET_OUTGOING copies (every lo frame is seen twice).
	Loopback bool
	// Link is the interface's framing, needed for the JSON payload test.
	Link ingest.LinkType
	// JSONSnap, when larger than SnapLen, keeps this many bytes of TCP
	// segments (IPv4 first fragments, IPv6 without extension headers)
	// whose payload starts with '{': the first bytes of JSON-over-TCP
	// protocols such as Stratum mining JSON-RPC; and of UDP datagrams
	// from or to port 53: whole DNS questions (a random-subdomain flood's
	// names, a bot's domains), which 96 bytes cut over IPv6. Other frames
	// cost nothing.
	JSONSnap uint32
}

// BuildProgram returns the classic BPF program attached to a capture socket:
// on loopback interfaces a prefix that drops PACKET_OUTGOING duplicates,
// then the user's compiled filter (nil = accept all) whose accepting
// returns (`ret #k`, k != 0, and `ret a` with A != 0) are rewritten to go
// to the accept tail, which returns SnapLen (or JSONSnap for a JSON-looking
// TCP payload), so the kernel truncates each frame before copying it into
// the ring. Relative jumps of the user program stay valid because the
// prefix only precedes it and the tail only follows it. Every load of the
// tail is bounds-checked first: a short frame is kept, never dropped.
func BuildProgram(user []bpf.RawInstruction, spec ProgramSpec) ([]bpf.RawInstruction, error) {
	if spec.SnapLen == 0 {
		return nil, errors.New("build bpf program: snaplen must be > 0")
	}
	var out []bpf.RawInstruction
	if spec.Loopback {
		out, _ = bpf.Assemble([]bpf.Instruction{
			bpf.LoadExtension{Num: bpf.ExtType},
			bpf.JumpIf{Cond: bpf.JumpEqual, Val: packetOutgoing, SkipTrue: 0, SkipFalse: 1},
			bpf.RetConstant{Val: 0},
		})
	}
	accept, err := acceptTail(spec)
	if err != nil {
		return nil, err
	}
	if len(user) == 0 {
		return append(out, accept...), nil
	}
	base := len(out)
	// simple: the accept tail is a single `ret #snaplen`, which the user's
	// accepting returns become directly.
	simple := len(accept) == 1
	var toAccept, retA []int
	for i, ri := range user {
		switch ins := ri.Disassemble().(type) {
		case bpf.RetConstant:
			if ins.Val != 0 {
				if simple {
					ri = accept[0]
				} else {
					toAccept = append(toAccept, base+i)
				}
			}
		case bpf.RetA:
			retA = append(retA, base+i)
		case bpf.Jump:
			if i+1+int(ins.Skip) >= len(user) {
				return nil, fmt.Errorf("build bpf program: instruction %d jumps past the end", i)
			}
		case bpf.JumpIf, bpf.JumpIfX:
			if i+1+int(ri.Jt) >= len(user) || i+1+int(ri.Jf) >= len(user) {
				return nil, fmt.Errorf("build bpf program: instruction %d jumps past the end", i)
			}
		}
		out = append(out, ri)
	}
	if len(retA) > 0 {
		// ret a: A == 0 rejects, anything else accepts.
		at := len(out)
		t, _ := bpf.Assemble([]bpf.Instruction{
			bpf.JumpIf{Cond: bpf.JumpEqual, Val: 0, SkipTrue: 0, SkipFalse: 1},
			bpf.RetConstant{Val: 0},
		})
		out = append(out, t...)
		for _, i := range retA {
			out[i], _ = bpf.Jump{Skip: uint32(at - i - 1)}.Assemble()
		}
	}
	at := len(out)
	for _, i := range toAccept {
		out[i], _ = bpf.Jump{Skip: uint32(at - i - 1)}.Assemble()
	}
	out = append(out, accept...)
	if len(out) > maxBPFInstructions {
		return nil, fmt.Errorf("build bpf program: %d instructions exceed the kernel limit %d", len(out), maxBPFInstructions)
	}
	return out, nil
}

// acceptTail is the end of every accepting path: `ret #snaplen`, or the
// JSON payload and DNS port tests when spec.JSONSnap > spec.SnapLen on an
// Ethernet or raw-IP interface.
func acceptTail(spec ProgramSpec) ([]bpf.RawInstruction, error) {
	var off uint32
	switch {
	case spec.JSONSnap <= spec.SnapLen:
		return bpf.Assemble([]bpf.Instruction{bpf.RetConstant{Val: spec.SnapLen}})
	case spec.Link == ingest.LinkEthernet:
		off = 14
	case spec.Link == ingest.LinkRaw:
		off = 0
	default:
		return bpf.Assemble([]bpf.Instruction{bpf.RetConstant{Val: spec.SnapLen}})
	}
	var a lasm
	ldLen := bpf.LoadExtension{Num: bpf.ExtLen}
	a.op(ldLen)
	a.jif(bpf.JumpLessThan, off+40, "snap", "")
	if off == 14 {
		a.op(bpf.LoadAbsolute{Off: 12, Size: 2})
		a.jif(bpf.JumpEqual, 0x0800, "v4", "")
		a.jif(bpf.JumpEqual, 0x86dd, "v6", "snap")
	} else {
		a.op(bpf.LoadAbsolute{Off: 0, Size: 1}, bpf.ALUOpConstant{Op: bpf.ALUOpShiftRight, Val: 4})
		a.jif(bpf.JumpEqual, 4, "v4", "")
		a.jif(bpf.JumpEqual, 6, "v6", "snap")
	}
	// IPv4: first fragments of TCP or UDP.
	a.label("v4")
	a.op(bpf.LoadAbsolute{Off: off + 6, Size: 2})
	a.jif(bpf.JumpBitsSet, 0x1fff, "snap", "")
	a.op(bpf.LoadAbsolute{Off: off + 9, Size: 1})
	a.jif(bpf.JumpEqual, 6, "tcp4", "")
	a.jif(bpf.JumpEqual, 17, "", "snap")
	// UDP: DNS when either port is 53 (ports at off + ihl).
	a.op(bpf.LoadMemShift{Off: off}, bpf.TXA{}, bpf.ALUOpConstant{Op: bpf.ALUOpAdd, Val: off + 3}, bpf.TAX{}, ldLen)
	a.jifx(bpf.JumpGreaterThan, "", "snap")
	a.op(bpf.LoadMemShift{Off: off}, bpf.LoadIndirect{Off: off, Size: 2})
	a.jif(bpf.JumpEqual, 53, "json", "")
	a.op(bpf.LoadIndirect{Off: off + 2, Size: 2})
	a.jif(bpf.JumpEqual, 53, "json", "snap")
	// TCP: payload at off + ihl + tcp header length.
	a.label("tcp4")
	a.op(bpf.LoadMemShift{Off: off}, bpf.TXA{}, bpf.ALUOpConstant{Op: bpf.ALUOpAdd, Val: off + 12}, bpf.TAX{}, ldLen)
	a.jifx(bpf.JumpGreaterThan, "", "snap")
	a.op(bpf.LoadIndirect{Off: 0, Size: 1},
		bpf.ALUOpConstant{Op: bpf.ALUOpAnd, Val: 0xf0}, bpf.ALUOpConstant{Op: bpf.ALUOpShiftRight, Val: 2},
		bpf.ALUOpX{Op: bpf.ALUOpAdd}, bpf.ALUOpConstant{Op: bpf.ALUOpSub, Val: 12}, bpf.TAX{}, ldLen)
	a.jifx(bpf.JumpGreaterThan, "", "snap")
	a.op(bpf.LoadIndirect{Off: 0, Size: 1})
	a.jif(bpf.JumpEqual, '{', "json", "snap")
	// IPv6: next header TCP or UDP (no extension headers).
	a.label("v6")
	a.op(bpf.LoadAbsolute{Off: off + 6, Size: 1})
	a.jif(bpf.JumpEqual, 6, "tcp6", "")
	a.jif(bpf.JumpEqual, 17, "", "snap")
	a.op(ldLen)
	a.jif(bpf.JumpLessThan, off+44, "snap", "")
	a.op(bpf.LoadAbsolute{Off: off + 40, Size: 2})
	a.jif(bpf.JumpEqual, 53, "json", "")
	a.op(bpf.LoadAbsolute{Off: off + 42, Size: 2})
	a.jif(bpf.JumpEqual, 53, "json", "snap")
	// TCP: payload at off+40+thl.
	a.label("tcp6")
	a.op(ldLen)
	a.jif(bpf.JumpLessThan, off+61, "snap", "")
	a.op(bpf.LoadAbsolute{Off: off + 52, Size: 1},
		bpf.ALUOpConstant{Op: bpf.ALUOpAnd, Val: 0xf0}, bpf.ALUOpConstant{Op: bpf.ALUOpShiftRight, Val: 2},
		bpf.ALUOpConstant{Op: bpf.ALUOpAdd, Val: off + 40}, bpf.TAX{}, ldLen)
	a.jifx(bpf.JumpGreaterThan, "", "snap")
	a.op(bpf.LoadIndirect{Off: 0, Size: 1})
	a.jif(bpf.JumpEqual, '{', "json", "snap")
	a.label("snap")
	a.op(bpf.RetConstant{Val: spec.SnapLen})
	a.label("json")
	a.op(bpf.RetConstant{Val: spec.JSONSnap})
	return a.assemble()
}

// lasm assembles a short cBPF sequence with named jump targets ("" = the
// next instruction).
type lasm struct {
	ins    []bpf.Instruction
	jumps  []ljump
	labels map[string]int
}

type ljump struct {
	at   int
	t, f string
}

func (a *lasm) op(ins ...bpf.Instruction) { a.ins = append(a.ins, ins...) }

func (a *lasm) label(l string) {
	if a.labels == nil {
		a.labels = map[string]int{}
	}
	a.labels[l] = len(a.ins)
}

func (a *lasm) jif(c bpf.JumpTest, v uint32, t, f string) {
	a.jumps = append(a.jumps, ljump{len(a.ins), t, f})
	a.ins = append(a.ins, bpf.JumpIf{Cond: c, Val: v})
}

func (a *lasm) jifx(c bpf.JumpTest, t, f string) {
	a.jumps = append(a.jumps, ljump{len(a.ins), t, f})
	a.ins = append(a.ins, bpf.JumpIfX{Cond: c})
}

func (a *lasm) assemble() ([]bpf.RawInstruction, error) {
	skip := func(at int, l string) (uint8, error) {
		if l == "" {
			return 0, nil
		}
		to, ok := a.labels[l]
		if !ok || to <= at || to-at-1 > 255 {
			return 0, fmt.Errorf("assemble bpf: bad jump from %d to %q", at, l)
		}
		return uint8(to - at - 1), nil
	}
	for _, j := range a.jumps {
		t, err := skip(j.at, j.t)
		if err != nil {
			return nil, err
		}
		f, err := skip(j.at, j.f)
		if err != nil {
			return nil, err
		}
		switch ins := a.ins[j.at].(type) {
		case bpf.JumpIf:
			ins.SkipTrue, ins.SkipFalse = t, f
			a.ins[j.at] = ins
		case bpf.JumpIfX:
			ins.SkipTrue, ins.SkipFalse = t, f
			a.ins[j.at] = ins
		}
	}
	return bpf.Assemble(a.ins)
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
