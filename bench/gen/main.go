// Command gen writes a deterministic synthetic pcap for benchmarking
// flowblame analyze against tcpdump and tshark (see bench/run.sh).
//
// The traffic: Ethernet frames cut at snaplen 96 (-snaplen); 85 % IPv4 / 15 % IPv6,
// 84 % TCP / 16 % UDP flows; wire lengths 62–1514 B (40 % small ACK-sized,
// 40 % full-size, 20 % uniform); -flows 5-tuples between 100 local hosts per
// family (198.51.100.1-100, 2001:db8:1::1-100) and -remotes remote hosts
// (IPv4 in 172.16.0.0/12, IPv6 in 2001:db8:ff::/48), spread evenly over
// -seconds seconds in time order. Packets pick flows uniformly at random
// (the worst case for a flow table's caches) and go either way.
//
//	go run ./bench/gen -n 20000000 -o bench/data/bench-20m.pcap
package main

import (
	"bufio"
	"encoding/binary"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
)

// defaultSnaplen is the benchmark's: headers only, as collect writes.
const defaultSnaplen = 96

type flow struct {
	v6, udp      bool
	local, remot [16]byte
	lport, rport uint16
}

func main() {
	n := flag.Int64("n", 20_000_000, "packets")
	nflows := flag.Int("flows", 200_000, "5-tuples")
	nremotes := flag.Int("remotes", 10_000, "remote hosts")
	seconds := flag.Int64("seconds", 600, "capture duration in seconds")
	out := flag.String("o", "bench.pcap", "output file")
	seed := flag.Uint64("seed", 1, "random seed")
	flag.IntVar(&snaplen, "snaplen", defaultSnaplen, "bytes kept of each frame (1514: whole frames)")
	flag.Parse()
	if err := run(*out, *n, *nflows, *nremotes, *seconds, *seed); err != nil {
		fmt.Fprintln(os.Stderr, "gen:", err)
		os.Exit(1)
	}
}

// snaplen is -snaplen.
var snaplen = defaultSnaplen

func run(path string, n int64, nflows, nremotes int, seconds int64, seed uint64) error {
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	remotes := make([][16]byte, nremotes)
	remoteV6 := make([]bool, nremotes)
	for i := range remotes {
		var a [16]byte
		if i%100 < 85 {
			// 172.16.0.0/12, v4-mapped in memory.
			a[10], a[11] = 0xff, 0xff
			binary.BigEndian.PutUint32(a[12:], 0xac100000|uint32(i*37+1)&0xfffff)
		} else {
			copy(a[:], []byte{0x20, 0x01, 0x0d, 0xb8, 0x00, 0xff})
			binary.BigEndian.PutUint32(a[12:], uint32(i+1))
			remoteV6[i] = true
		}
		remotes[i] = a
	}
	var v4r, v6r []int
	for i, v6 := range remoteV6 {
		if v6 {
			v6r = append(v6r, i)
		} else {
			v4r = append(v4r, i)
		}
	}
	flows := make([]flow, nflows)
	for i := range flows {
		f := &flows[i]
		f.v6 = rng.IntN(100) < 15
		f.udp = rng.IntN(100) < 16
		h := byte(1 + rng.IntN(100))
		if f.v6 {
			copy(f.local[:], []byte{0x20, 0x01, 0x0d, 0xb8, 0x00, 0x01})
			f.local[15] = h
			f.remot = remotes[v6r[rng.IntN(len(v6r))]]
		} else {
			f.local = [16]byte{10: 0xff, 11: 0xff, 12: 198, 13: 51, 14: 100, 15: h}
			f.remot = remotes[v4r[rng.IntN(len(v4r))]]
		}
		f.lport = uint16(32768 + rng.IntN(28000))
		f.rport = []uint16{443, 80, 22, 53, 3478, 8080, 25565}[rng.IntN(7)]
	}
	fh, err := os.Create(path)
	if err != nil {
		return err
	}
	w := bufio.NewWriterSize(fh, 4<<20)
	var gh [24]byte
	binary.LittleEndian.PutUint32(gh[0:], 0xa1b23c4d) // nanosecond pcap
	binary.LittleEndian.PutUint16(gh[4:], 2)
	binary.LittleEndian.PutUint16(gh[6:], 4)
	binary.LittleEndian.PutUint32(gh[16:], uint32(snaplen))
	binary.LittleEndian.PutUint32(gh[20:], 1) // Ethernet
	w.Write(gh[:])
	const start = int64(1_767_225_600) * 1e9 // 2026-01-01T00:00:00Z
	step := seconds * 1e9 / max(n, 1)
	buf := make([]byte, 16+snaplen)
	localMAC := []byte{0x02, 0, 0, 0, 0, 1}
	gwMAC := []byte{0x02, 0, 0, 0, 0, 2}
	for i := range n {
		f := &flows[rng.IntN(nflows)]
		out := rng.IntN(2) == 0
		var wire int
		switch r := rng.IntN(10); {
		case r < 4:
			wire = 62 + rng.IntN(20)
		case r < 8:
			wire = 1514
		default:
			wire = 62 + rng.IntN(1514-62+1)
		}
		hdr := 14 + 20
		if f.v6 {
			hdr = 14 + 40
		}
		if f.udp {
			hdr += 8
		} else {
			hdr += 20
		}
		wire = max(wire, hdr)
		capl := min(wire, snaplen)
		ts := start + i*step
		b := buf[:16+capl]
		clear(b)
		binary.LittleEndian.PutUint32(b[0:], uint32(ts/1e9))
		binary.LittleEndian.PutUint32(b[4:], uint32(ts%1e9))
		binary.LittleEndian.PutUint32(b[8:], uint32(capl))
		binary.LittleEndian.PutUint32(b[12:], uint32(wire))
		fr := b[16:]
		src, dst, sp, dp := f.local, f.remot, f.lport, f.rport
		if out {
			copy(fr[0:], gwMAC)
			copy(fr[6:], localMAC)
		} else {
			src, dst, sp, dp = dst, src, dp, sp
			copy(fr[0:], localMAC)
			copy(fr[6:], gwMAC)
		}
		proto := byte(6)
		if f.udp {
			proto = 17
		}
		var l4 []byte
		if f.v6 {
			binary.BigEndian.PutUint16(fr[12:], 0x86dd)
			ip := fr[14:]
			ip[0] = 0x60
			binary.BigEndian.PutUint16(ip[4:], uint16(wire-14-40))
			ip[6], ip[7] = proto, 64
			copy(ip[8:24], src[:])
			copy(ip[24:40], dst[:])
			l4 = ip[40:]
		} else {
			binary.BigEndian.PutUint16(fr[12:], 0x0800)
			ip := fr[14:]
			ip[0] = 0x45
			binary.BigEndian.PutUint16(ip[2:], uint16(wire-14))
			ip[8], ip[9] = 64, proto
			copy(ip[12:16], src[12:])
			copy(ip[16:20], dst[12:])
			binary.BigEndian.PutUint16(ip[10:], ipv4Checksum(ip[:20]))
			l4 = ip[20:]
		}
		binary.BigEndian.PutUint16(l4[0:], sp)
		binary.BigEndian.PutUint16(l4[2:], dp)
		if f.udp {
			binary.BigEndian.PutUint16(l4[4:], uint16(wire-(hdr-8)))
		} else {
			l4[12] = 5 << 4
			l4[13] = 0x10 // ACK
		}
		if _, err := w.Write(b); err != nil {
			fh.Close()
			return err
		}
	}
	if err := w.Flush(); err != nil {
		fh.Close()
		return err
	}
	return fh.Close()
}

func ipv4Checksum(h []byte) uint16 {
	var s uint32
	for i := 0; i < len(h); i += 2 {
		s += uint32(h[i])<<8 | uint32(h[i+1])
	}
	for s > 0xffff {
		s = s>>16 + s&0xffff
	}
	return ^uint16(s)
}
