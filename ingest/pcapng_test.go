package ingest

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/google/go-cmp/cmp"
	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
)

// ngBuilder writes pcapng blocks by hand, so that tests can craft every
// option and every corruption.
type ngBuilder struct {
	bo  binary.ByteOrder
	buf bytes.Buffer
}

func newNG(be bool) *ngBuilder {
	b := &ngBuilder{bo: binary.LittleEndian}
	if be {
		b.bo = binary.BigEndian
	}
	b.shb()
	return b
}

func pad4(b []byte) []byte {
	for len(b)%4 != 0 {
		b = append(b, 0)
	}
	return b
}

func (b *ngBuilder) u16(v uint16) []byte { x := make([]byte, 2); b.bo.PutUint16(x, v); return x }
func (b *ngBuilder) u32(v uint32) []byte { x := make([]byte, 4); b.bo.PutUint32(x, v); return x }
func (b *ngBuilder) u64(v uint64) []byte { x := make([]byte, 8); b.bo.PutUint64(x, v); return x }

func (b *ngBuilder) opt(code uint16, val []byte) []byte {
	o := append(b.u16(code), b.u16(uint16(len(val)))...)
	return pad4(append(o, val...))
}

func (b *ngBuilder) opts(os ...[]byte) []byte {
	if len(os) == 0 {
		return nil
	}
	var out []byte
	for _, o := range os {
		out = append(out, o...)
	}
	return append(out, 0, 0, 0, 0)
}

// raw writes a block with the given total length fields (for corruption).
func (b *ngBuilder) raw(typ uint32, body []byte, lead, trail uint32) {
	b.buf.Write(b.u32(typ))
	b.buf.Write(b.u32(lead))
	b.buf.Write(body)
	b.buf.Write(b.u32(trail))
}

func (b *ngBuilder) block(typ uint32, body []byte) {
	body = pad4(body)
	n := uint32(len(body) + 12)
	b.raw(typ, body, n, n)
}

func (b *ngBuilder) shb(opts ...[]byte) {
	body := append(b.u32(bomMagic), b.u16(1)...)
	body = append(body, b.u16(0)...)
	body = append(body, b.u64(^uint64(0))...)
	b.block(blockSHB, append(body, b.opts(opts...)...))
}

func (b *ngBuilder) idb(link uint16, snap uint32, opts ...[]byte) {
	body := append(b.u16(link), 0, 0)
	body = append(body, b.u32(snap)...)
	b.block(blockIDB, append(body, b.opts(opts...)...))
}

func (b *ngBuilder) epbBody(iface uint32, ts uint64, data []byte, wire uint32, opts ...[]byte) []byte {
	body := b.u32(iface)
	body = append(body, b.u32(uint32(ts>>32))...)
	body = append(body, b.u32(uint32(ts))...)
	body = append(body, b.u32(uint32(len(data)))...)
	body = append(body, b.u32(wire)...)
	body = append(body, pad4(append([]byte(nil), data...))...)
	return append(body, b.opts(opts...)...)
}

func (b *ngBuilder) epb(iface uint32, ts uint64, data []byte, wire uint32, opts ...[]byte) {
	b.block(blockEPB, b.epbBody(iface, ts, data, wire, opts...))
}

func (b *ngBuilder) isb(iface uint32, opts ...[]byte) {
	body := append(b.u32(iface), make([]byte, 8)...)
	b.block(blockISB, append(body, b.opts(opts...)...))
}

// udpFrame is an Ethernet/IPv4/UDP frame from src to dst.
func udpFrame(tb testing.TB, src, dst string, sport, dport uint16, payload string) []byte {
	tb.Helper()
	eth := &layers.Ethernet{SrcMAC: []byte{2, 0, 0, 0, 0, 1}, DstMAC: []byte{2, 0, 0, 0, 0, 2}, EthernetType: layers.EthernetTypeIPv4}
	ip := &layers.IPv4{Version: 4, TTL: 64, Protocol: layers.IPProtocolUDP,
		SrcIP: netip.MustParseAddr(src).AsSlice(), DstIP: netip.MustParseAddr(dst).AsSlice()}
	udp := &layers.UDP{SrcPort: layers.UDPPort(sport), DstPort: layers.UDPPort(dport)}
	udp.SetNetworkLayerForChecksum(ip)
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true},
		eth, ip, udp, gopacket.Payload(payload)); err != nil {
		tb.Fatal(err)
	}
	return buf.Bytes()
}

// got is the part of a Packet the reader (not the decoder) is responsible for.
type readRec struct {
	TS             int64
	Iface          int
	Dir            Direction
	Wire, Cap      int
	Comment        string
	Hint           *ProcessHint
	Kind           PacketKind
	Src, Dst       string
	Trunc          bool
	PayloadPresent bool
}

func readAll(t *testing.T, src PacketSource) ([]readRec, error) {
	t.Helper()
	var out []readRec
	var p Packet
	for i := 0; i < 10000; i++ {
		err := src.Next(&p)
		if err != nil {
			if err == io.EOF {
				return out, nil
			}
			return out, err
		}
		g := readRec{TS: p.TS, Iface: p.Iface, Dir: p.Dir, Wire: p.WireLen, Cap: p.CapLen, Comment: p.Comment,
			Hint: p.Hint, Kind: p.Kind, Trunc: p.Truncated, PayloadPresent: len(p.Payload) > 0}
		if p.Kind == KindIP {
			g.Src, g.Dst = p.Tuple.Src.String(), p.Tuple.Dst.String()
		}
		out = append(out, g)
	}
	t.Fatal("no end")
	return nil, nil
}

func TestPcapngFeatures(t *testing.T) {
	f1 := udpFrame(t, "198.51.100.1", "203.0.113.9", 1111, 53, "hello")
	b := newNG(false)
	b.idb(uint16(LinkEthernet), 0,
		b.opt(optIfName, []byte("eth0")), b.opt(optIfDesc, []byte("uplink")),
		b.opt(optIfMAC, []byte{2, 0, 0, 0, 0, 1}),
		b.opt(optIfIPv4, []byte{198, 51, 100, 1, 255, 255, 255, 0}),
		b.opt(optIfIPv6, append(netip.MustParseAddr("2001:db8::1").AsSlice(), 64)),
		b.opt(optIfTsresol, []byte{9}))
	b.idb(uint16(LinkEthernet), 128, b.opt(optIfName, []byte("eth1")),
		b.opt(optIfTsresol, []byte{0x80 | 10}), b.opt(optIfTsoffset, b.u64(100)))
	comment := "PID: 4242\nCmd: /usr/bin/curl\nArgs: curl -s https://example.com"
	b.epb(0, 1_500_000_000_123456789, f1, uint32(len(f1)),
		b.opt(optEpbFlags, b.u32(1)), b.opt(optComment, []byte(comment)),
		b.opt(optComment, []byte("ThreadId: 4243\nThreadName: curl")))
	b.epb(1, 3<<10|512, f1[:40], uint32(len(f1)), b.opt(optEpbFlags, b.u32(2)))
	b.block(0x0bad0bad, []byte{1, 2, 3, 4}) // unknown block type: skipped
	b.isb(0, b.opt(optIsbIfrecv, b.u64(1000)), b.opt(optIsbIfdrop, b.u64(3)), b.opt(optIsbOsdrop, b.u64(4)))
	// Obsolete Packet Block on interface 1.
	pb := append(b.u16(1), 0, 0)
	pb = append(pb, b.u32(0)...)
	pb = append(pb, b.u32(5<<10)...)
	pb = append(pb, b.u32(uint32(len(f1)))...)
	pb = append(pb, b.u32(uint32(len(f1)))...)
	pb = append(pb, pad4(append([]byte(nil), f1...))...)
	b.block(blockPB, pb)
	// Simple Packet Block: interface 0, previous timestamp.
	b.block(blockSPB, append(b.u32(uint32(len(f1))), f1...))
	// Darwin process information block + EPB referring to it.
	pib := append(b.u32(777), b.opts(b.opt(optPIBName, []byte("Safari")))...)
	b.block(blockDarwinPIB, pib)
	b.epb(0, 7, f1, uint32(len(f1)), b.opt(optEpbDarwinPIB, b.u32(0)))
	b.epb(0, 8, f1, uint32(len(f1)), b.opt(optCustomStr, append(b.u32(32473), []byte("pid=99 comm=x")...)))
	// Second section, big-endian: interfaces restart at local id 0.
	be := newNG(true)
	be.idb(uint16(LinkRaw), 0, be.opt(optIfName, []byte("tun0")))
	be.epb(0, 2_000_000, f1[14:], uint32(len(f1)-14))
	data := append(b.buf.Bytes(), be.buf.Bytes()...)

	src, err := NewReader(bytes.NewReader(data), "features.pcapng", Options{})
	if err != nil {
		t.Fatal(err)
	}
	pkts, err := readAll(t, src)
	if err != nil {
		t.Fatal(err)
	}
	hint := &ProcessHint{PID: 4242, Comm: "curl", Cmd: "curl -s https://example.com", Source: HintSourceComment}
	ip := func(g readRec) readRec {
		g.Kind, g.Src, g.Dst, g.PayloadPresent = KindIP, "198.51.100.1:1111", "203.0.113.9:53", true
		return g
	}
	want := []readRec{
		ip(readRec{TS: 1_500_000_000_123456789, Iface: 0, Dir: DirIn, Wire: len(f1), Cap: len(f1),
			Comment: comment + "\nThreadId: 4243\nThreadName: curl", Hint: hint}),
		// 2^-10 s units: 3 s + 512/1024 s, plus 100 s offset.
		{TS: 103_500_000_000, Iface: 1, Dir: DirOut, Wire: len(f1), Cap: 40, Kind: KindMalformed, Trunc: true},
		ip(readRec{TS: 105_000_000_000, Iface: 1, Wire: len(f1), Cap: len(f1)}),
		ip(readRec{TS: 105_000_000_000, Iface: 0, Wire: len(f1), Cap: len(f1)}),
		ip(readRec{TS: 7, Iface: 0, Wire: len(f1), Cap: len(f1), Hint: &ProcessHint{PID: 777, Comm: "Safari", Source: HintSourceOption}}),
		ip(readRec{TS: 8, Iface: 0, Wire: len(f1), Cap: len(f1), Hint: &ProcessHint{PID: 99, Comm: "x", Source: HintSourceOption}}),
		ip(readRec{TS: 2_000_000_000, Iface: 2, Wire: len(f1) - 14, Cap: len(f1) - 14}),
	}
	// Packet 2 is cut inside the IP header: the decoder calls it malformed
	// or not; only the reader's fields matter here.
	pkts[1].Kind, pkts[1].PayloadPresent, pkts[1].Src, pkts[1].Dst = KindMalformed, false, "", ""
	if d := cmp.Diff(want, pkts); d != "" {
		t.Errorf("packets (-want +got):\n%s", d)
	}
	wantIf := []Interface{
		{Name: "eth0", Description: "uplink", File: "features.pcapng", Link: LinkEthernet, MAC: []byte{2, 0, 0, 0, 0, 1},
			Addrs:    []netip.Prefix{netip.MustParsePrefix("198.51.100.1/24"), netip.MustParsePrefix("2001:db8::1/64")},
			HasStats: true, Received: 1000, Dropped: 7},
		{Name: "eth1", File: "features.pcapng", Link: LinkEthernet, SnapLen: 128},
		{Name: "tun0", File: "features.pcapng", Link: LinkRaw},
	}
	if d := cmp.Diff(wantIf, src.Interfaces(), cmp.Comparer(func(a, b netip.Prefix) bool { return a == b })); d != "" {
		t.Errorf("interfaces (-want +got):\n%s", d)
	}
	st := src.Stats()
	if st.Packets != int64(len(want)) || st.Truncated != 1 || st.Files != 1 {
		t.Errorf("stats = %+v", st)
	}
	for _, d := range src.Diagnostics() {
		if d.Kind != DiagInfo && d.Kind != DiagMalformed {
			t.Errorf("unexpected diagnostic %v", d)
		}
	}
}

func TestPcapngCorrupt(t *testing.T) {
	f := udpFrame(t, "198.51.100.1", "203.0.113.9", 1, 2, "x")
	good := func(b *ngBuilder) { b.epb(0, 1, f, uint32(len(f))) }
	tests := []struct {
		name      string
		build     func(b *ngBuilder)
		wantPkts  int
		wantKinds []DiagKind
		skipped   bool // SkippedBytes > 0
	}{
		{"clean", func(b *ngBuilder) { good(b); good(b) }, 2, nil, false},
		{"caplen beyond block", func(b *ngBuilder) {
			body := b.epbBody(0, 1, f, uint32(len(f)))
			b.bo.PutUint32(body[12:], 5000)
			b.block(blockEPB, body)
			good(b)
		}, 1, []DiagKind{DiagMalformed}, true},
		{"trailer mismatch", func(b *ngBuilder) {
			body := pad4(b.epbBody(0, 1, f, uint32(len(f))))
			b.raw(blockEPB, body, uint32(len(body)+12), 7)
			good(b)
		}, 1, []DiagKind{DiagMalformed}, true},
		{"unknown interface", func(b *ngBuilder) { b.epb(9, 1, f, uint32(len(f))); good(b) }, 1, []DiagKind{DiagMalformed}, true},
		{"option overrun", func(b *ngBuilder) {
			body := b.epbBody(0, 1, f, uint32(len(f)))
			body = append(body, b.u16(optComment)...)
			body = append(body, b.u16(200)...)
			b.block(blockEPB, body)
			good(b)
		}, 2, []DiagKind{DiagMalformed}, false},
		{"bad block length", func(b *ngBuilder) {
			good(b)
			b.raw(blockEPB, make([]byte, 8), 13, 13)
			good(b)
		}, 1, []DiagKind{DiagMalformed}, true},
		{"truncated block", func(b *ngBuilder) {
			good(b)
			good(b)
			b.buf.Truncate(b.buf.Len() - 10)
		}, 1, []DiagKind{DiagTruncated}, true},
		{"truncated block header", func(b *ngBuilder) {
			good(b)
			b.buf.Write([]byte{6, 0, 0})
		}, 1, []DiagKind{DiagTruncated}, true},
		{"bad section byte order", func(b *ngBuilder) {
			good(b)
			b.raw(blockSHB, make([]byte, 16), 28, 28)
			good(b)
		}, 1, []DiagKind{DiagMalformed}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := newNG(false)
			b.idb(uint16(LinkEthernet), 0)
			tt.build(b)
			src, err := NewReader(bytes.NewReader(b.buf.Bytes()), "c.pcapng", Options{})
			if err != nil {
				t.Fatal(err)
			}
			pkts, err := readAll(t, src)
			if err != nil {
				t.Fatal(err)
			}
			if len(pkts) != tt.wantPkts {
				t.Errorf("got %d packets, want %d", len(pkts), tt.wantPkts)
			}
			var kinds []DiagKind
			for _, d := range src.Diagnostics() {
				if d.Kind != DiagInfo {
					kinds = append(kinds, d.Kind)
				}
			}
			if d := cmp.Diff(tt.wantKinds, kinds); d != "" {
				t.Errorf("diagnostic kinds (-want +got):\n%s\n%v", d, src.Diagnostics())
			}
			if got := src.Stats().SkippedBytes > 0; got != tt.skipped {
				t.Errorf("SkippedBytes = %d", src.Stats().SkippedBytes)
			}
			// Strict: the first record-level problem is fatal; a cut-off
			// tail stays a diagnostic.
			src, _ = NewReader(bytes.NewReader(b.buf.Bytes()), "c.pcapng", Options{Strict: true})
			_, err = readAll(t, src)
			wantErr := len(tt.wantKinds) > 0 && tt.wantKinds[0] == DiagMalformed
			if (err != nil) != wantErr || (err != nil && !errors.Is(err, ErrMalformed)) {
				t.Errorf("strict: err = %v, want error %v", err, wantErr)
			}
			if err != nil && src.Next(&Packet{}) != err {
				t.Errorf("error not sticky")
			}
		})
	}
}

func TestPcapngResolution(t *testing.T) {
	tests := []struct {
		res   byte
		units uint64
		want  int64
	}{
		{6, 1_000_001, 1_000_001_000},
		{9, 5, 5},
		{0, 3, 3_000_000_000},
		{12, 5_000, 5},
		{0x80 | 0, 2, 2_000_000_000},
		{0x80 | 30, 1 << 30, 1_000_000_000},
		{0x80 | 40, 3 << 39, 1_500_000_000},
		{0x80 | 64, 1 << 63, 500_000_000},
	}
	for _, tt := range tests {
		r := &pcapngReader{fileBase: fileBase{diags: newDiagFolder("x", 0)}}
		ni := ngIface{tsFactor: 1000}
		r.setResolution(&ni, tt.res, 0)
		if got := ni.nanos(tt.units); got != tt.want {
			t.Errorf("tsresol %#x, %d units = %d ns, want %d", tt.res, tt.units, got, tt.want)
		}
	}
}

func FuzzReadPcapng(f *testing.F) {
	addCorpusSeeds(f, ".pcapng", ".pcapng.gz", ".ntar")
	b := newNG(true)
	b.idb(1, 0, b.opt(optIfTsresol, []byte{0x83}))
	b.epb(0, 1, []byte{1, 2, 3}, 9, b.opt(optComment, []byte("PID: 1")), b.opt(optEpbFlags, b.u32(1)))
	b.isb(0, b.opt(optIsbIfrecv, b.u64(1)))
	f.Add(b.buf.Bytes())
	addCompressedSeeds(f, b.buf.Bytes())
	f.Fuzz(func(t *testing.T, data []byte) {
		src, err := NewReader(bytes.NewReader(data), "fuzz.pcapng", Options{})
		if err != nil {
			if !errors.Is(err, ErrUnrecognized) && !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrTruncated) {
				t.Fatalf("error without sentinel: %v", err)
			}
			return
		}
		checkSource(t, src, fuzzLimit(data))
	})
}

// writeBenchPcapng writes n EPBs (nanosecond resolution, epb_flags on
// each, as the collector writes them) with frames cut at 96 bytes.
func writeBenchPcapng(tb testing.TB, path string, n int) {
	tb.Helper()
	b := newNG(false)
	b.idb(uint16(LinkEthernet), 96, b.opt(optIfName, []byte("eth0")), b.opt(optIfTsresol, []byte{9}))
	var frames [][]byte
	for i := range 64 {
		f := udpFrame(tb, "198.51.100.7", fmt.Sprintf("203.0.113.%d", i), uint16(1000+i), 443, strings.Repeat("x", 100+i*10))
		frames = append(frames, f)
	}
	for i := range n {
		f := frames[i%len(frames)]
		b.epb(0, uint64(i)*1000, f[:96], uint32(len(f)), b.opt(optEpbFlags, b.u32(uint32(1+i%2))))
		if b.buf.Len() > 1<<20 {
			appendFile(tb, path, b.buf.Bytes())
			b.buf.Reset()
		}
	}
	appendFile(tb, path, b.buf.Bytes())
}

func appendFile(tb testing.TB, path string, data []byte) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		tb.Fatal(err)
	}
	if _, err := f.Write(data); err != nil {
		tb.Fatal(err)
	}
	f.Close()
}

// BenchmarkReadPcapng reads a generated 1 M-packet pcapng.
func BenchmarkReadPcapng(b *testing.B) {
	path := filepath.Join(b.TempDir(), "bench.pcapng")
	writeBenchPcapng(b, path, 1_000_000)
	fi, _ := os.Stat(path)
	for _, walkOnly := range []bool{true, false} {
		name := "decode"
		if walkOnly {
			name = "walk"
		}
		b.Run(name, func(b *testing.B) {
			var pkts int64
			var p Packet
			for b.Loop() {
				src, err := OpenCapture(path, Options{})
				if err != nil {
					b.Fatal(err)
				}
				src.(*pcapngReader).walkOnly = walkOnly
				for src.Next(&p) == nil {
				}
				pkts += src.Stats().Packets
				src.Close()
			}
			sec := b.Elapsed().Seconds()
			b.ReportMetric(float64(pkts)/sec, "records/s")
			b.ReportMetric(float64(fi.Size())*float64(b.N)/sec/1e6, "MB/s")
		})
	}
}

// TestPcapngAllocs: no allocation per packet in steady state, comments
// repeated by a run of packets included.
func TestPcapngAllocs(t *testing.T) {
	f := udpFrame(t, "198.51.100.7", "203.0.113.1", 5000, 443, "abc")
	b := newNG(false)
	b.idb(uint16(LinkEthernet), 0)
	for range 20000 {
		b.epb(0, 1, f, uint32(len(f)), b.opt(optEpbFlags, b.u32(1)), b.opt(optComment, []byte("PID: 1\nCmd: x")))
	}
	src, err := NewReader(bytes.NewReader(b.buf.Bytes()), "a.pcapng", Options{})
	if err != nil {
		t.Fatal(err)
	}
	var p Packet
	src.Next(&p)
	allocs := testing.AllocsPerRun(10000, func() {
		if err := src.Next(&p); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Errorf("%.2f allocations per packet", allocs)
	}
	if p.Hint == nil || p.Hint.PID != 1 {
		t.Errorf("hint %+v", p.Hint)
	}
}

// TestPcapngSkippedBytesStreamed: the bytes given up after a section header
// of an unsupported version count from that header, whether the size of
// the input is known (a file) or the rest is read to count it (a pipe,
// gzip): a pipe once missed the header's bytes already read.
func TestPcapngSkippedBytesStreamed(t *testing.T) {
	b := newNG(false)
	b.idb(1, 65535)
	b.epb(0, 1, udpFrame(t, "198.51.100.1", "203.0.113.9", 1000, 53, "x"), 60)
	off := b.buf.Len()
	body := append(b.u32(bomMagic), b.u16(2)...) // version 2.0
	body = append(body, b.u16(0)...)
	body = append(body, b.u64(^uint64(0))...)
	b.block(blockSHB, body)
	b.idb(1, 65535)
	b.epb(0, 2, udpFrame(t, "198.51.100.1", "203.0.113.9", 1000, 53, "y"), 60)
	data := b.buf.Bytes()
	want := int64(len(data) - off)
	path := filepath.Join(t.TempDir(), "v2.pcapng")
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	fromFile, err := OpenCapture(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer fromFile.Close()
	piped, err := NewReader(iotest.OneByteReader(bytes.NewReader(data)), "pipe", Options{})
	if err != nil {
		t.Fatal(err)
	}
	for name, src := range map[string]PacketSource{"file": fromFile, "pipe": piped} {
		var p Packet
		for src.Next(&p) == nil {
		}
		if got := src.Stats().SkippedBytes; got != want {
			t.Errorf("%s: %d bytes skipped, want %d", name, got, want)
		}
	}
}

// TestPcapngDecryptionSecrets: a Decryption Secrets Block is reported (tshark
// may count traffic it decrypts with it) and does not disturb the packets.
func TestPcapngDecryptionSecrets(t *testing.T) {
	f1 := udpFrame(t, "198.51.100.1", "203.0.113.9", 51820, 51820, "wg")
	b := newNG(false)
	b.idb(uint16(LinkEthernet), 0)
	b.block(blockDSB, append(b.u32(0x57474b4c), append(b.u32(4), []byte("key=")...)...))
	b.epb(0, 1, f1, uint32(len(f1)))
	src, err := NewReader(bytes.NewReader(b.buf.Bytes()), "wg.pcapng", Options{})
	if err != nil {
		t.Fatal(err)
	}
	if pkts, err := readAll(t, src); err != nil || len(pkts) != 1 {
		t.Fatalf("%d packets, %v", len(pkts), err)
	}
	var found bool
	for _, d := range src.Diagnostics() {
		found = found || (d.Kind == DiagInfo && strings.Contains(d.Msg, "the capture holds WireGuard keys (a Decryption Secrets Block)"))
	}
	if !found {
		t.Errorf("no decryption-secrets diagnostic in %+v", src.Diagnostics())
	}
}
