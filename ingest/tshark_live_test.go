package ingest

import (
	"bytes"
	"errors"
	"io"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"
)

// tsharkPairs runs tshark on path and counts, per address pair, every IP
// header of every frame as CONV_EXACT.tsv does (see the corpus README): the
// i-th ip.src/ipv6.src with the i-th ip.dst/ipv6.dst, with frame.len. It also
// returns the first frame number of each pair.
func tsharkPairs(t *testing.T, tshark, path string) (map[pairKey]pairCounts, map[pairKey]int) {
	t.Helper()
	out, err := exec.Command(tshark, "-n", "-r", path, "-T", "fields", "-E", "occurrence=a",
		"-e", "frame.len", "-e", "ip.src", "-e", "ip.dst", "-e", "ipv6.src", "-e", "ipv6.dst").Output()
	var ee *exec.ExitError
	if errors.As(err, &ee) && ee.ExitCode() == 2 && strings.Contains(string(ee.Stderr), "cut short") {
		err = nil // a capture cut short: tshark printed the frames before the cut
	}
	if err != nil {
		t.Fatalf("tshark -r %s: %v", path, err)
	}
	pairs, first := map[pairKey]pairCounts{}, map[pairKey]int{}
	for i, line := range strings.Split(strings.TrimRight(string(out), "\n"), "\n") {
		c := strings.Split(line, "\t")
		if len(c) < 5 {
			continue
		}
		n, err := strconv.ParseInt(c[0], 10, 64)
		if err != nil {
			t.Fatalf("tshark line %q: %v", line, err)
		}
		for _, fam := range [][2]string{{c[1], c[2]}, {c[3], c[4]}} {
			if fam[0] == "" || fam[1] == "" {
				continue
			}
			src, dst := strings.Split(fam[0], ","), strings.Split(fam[1], ",")
			for j := range min(len(src), len(dst)) {
				a, err1 := netip.ParseAddr(src[j])
				b, err2 := netip.ParseAddr(dst[j])
				if err1 != nil || err2 != nil {
					t.Fatalf("tshark line %q: bad address", line)
				}
				k, sw := newPairKey(a, b)
				pc, seen := pairs[k]
				pc.add(sw, n)
				pairs[k] = pc
				if !seen {
					first[k] = i + 1
				}
			}
		}
	}
	return pairs, first
}

// TestAgainstLiveTshark compares per-pair frames and bytes with tshark run
// now, on captures of random frames made by Wireshark's randpkt
// (fixtures/captures/randpkt: random headers after protocol templates, on
// Ethernet, Token Ring and FDDI) and on frames where such captures once
// showed a difference (fixtures/captures/tshark-edge-cases.pcapng: 802.2
// LLC I-frames to the IP SAP, OSI NLPID IP, FDDI SMT and LLC frame
// controls, ICMP redirects quoting a bogus header, swIPe), and on the
// first 100 frames of randpkt/ip.pcap as written by editcap in the pcap
// variants of patched libpcaps (fixtures/captures/pcap-variants: Red Hat
// 6.1, Nokia, SuSE 6.3, Kuznetzov), and on generated frames of the
// firewall and PPP link types (fixtures/captures/linktypes: pflog with
// random header lengths and families, enc, PPP with direction, PPP/Cisco
// HDLC, PPPoE without Ethernet, RFC 1483 LLC; some cut short), and on
// random protocol stacks (fixtures/captures/stacked.pcap: VLAN/QinQ/MPLS/
// PPPoE, IPv4 options and fragments, IPv6 extension headers, tunnels nested
// three deep, ICMP errors; one frame in twenty cut or corrupted), and on
// hand-written edge cases of formats, link types, tunnels and fragments
// (fixtures/captures/sweep).
// Agreement must be exact.
func TestAgainstLiveTshark(t *testing.T) {
	tshark, err := exec.LookPath("tshark")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("tshark not installed")
		}
		t.Skip("tshark not installed")
	}
	files, _ := filepath.Glob(filepath.Join(fixtureDir, "randpkt", "*.pcap"))
	variants, _ := filepath.Glob(filepath.Join(fixtureDir, "pcap-variants", "*.pcap"))
	links, _ := filepath.Glob(filepath.Join(fixtureDir, "linktypes", "*.pcap"))
	sweep, _ := filepath.Glob(filepath.Join(fixtureDir, "sweep", "*.pcap*"))
	files = append(append(append(append(files, variants...), links...), sweep...), filepath.Join(fixtureDir, "tshark-edge-cases.pcapng"),
		filepath.Join(fixtureDir, "stacked.pcap"), filepath.Join(fixtureDir, "stacked-sll.pcap"), filepath.Join(fixtureDir, "sflow.pcap"))
	if len(files) < 2 {
		t.Fatalf("fixtures missing: %v", files)
	}
	// The same captures zstd- and LZ4-compressed (tshark reads both), and
	// cut inside the compressed stream.
	files = append(files, compressedCopies(t, filepath.Join(fixtureDir, "stacked.pcap"), filepath.Join(fixtureDir, "tshark-edge-cases.pcapng"))...)
	for _, path := range files {
		want, first := tsharkPairs(t, tshark, path)
		got := map[pairKey]*pairCounts{}
		src, err := OpenCapture(path, Options{})
		if errors.Is(err, ErrTruncated) && len(want) == 0 {
			t.Logf("%s: cut before any frame, for tshark too", filepath.Base(path))
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		var p Packet
		for {
			if err := src.Next(&p); err != nil {
				if !errors.Is(err, io.EOF) {
					t.Errorf("%s: %v", path, err)
				}
				break
			}
			countPairs(&p, got)
		}
		src.Close()
		var diffs []string
		for k, c := range got {
			if w := want[k]; *c != w {
				diffs = append(diffs, k.A.String()+" "+k.B.String()+": tshark "+w.String()+", flowblame "+c.String())
			}
		}
		for k, w := range want {
			if got[k] == nil {
				diffs = append(diffs, k.A.String()+" "+k.B.String()+": tshark "+w.String()+" (first in frame "+strconv.Itoa(first[k])+"), flowblame none")
			}
		}
		sort.Strings(diffs)
		for _, d := range diffs {
			t.Errorf("%s: %s", filepath.Base(path), d)
		}
		t.Logf("%s: %d pairs agree", filepath.Base(path), len(want)-len(diffs))
	}
}

// compressedCopies writes each capture zstd- and LZ4-compressed (64 KiB
// blocks, as lz4 -B4), whole and cut at 60 %, into a temporary directory.
func compressedCopies(t *testing.T, paths ...string) []string {
	t.Helper()
	dir := t.TempDir()
	var out []string
	for _, p := range paths {
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		var zb, lb bytes.Buffer
		zw, err := zstd.NewWriter(&zb)
		if err != nil {
			t.Fatal(err)
		}
		zw.Write(data)
		zw.Close()
		lw := lz4.NewWriter(&lb)
		if err := lw.Apply(lz4.BlockSizeOption(lz4.Block64Kb)); err != nil {
			t.Fatal(err)
		}
		lw.Write(data)
		lw.Close()
		for ext, b := range map[string][]byte{".zst": zb.Bytes(), ".lz4": lb.Bytes()} {
			for cut, n := range map[string]int{"": len(b), ".cut": len(b) * 6 / 10} {
				name := filepath.Join(dir, filepath.Base(p)+cut+ext)
				if err := os.WriteFile(name, b[:n], 0o644); err != nil {
					t.Fatal(err)
				}
				out = append(out, name)
			}
		}
	}
	sort.Strings(out)
	return out
}
