package analyze

import (
	"context"
	"encoding/binary"
	"net/netip"
	"strings"
	"testing"

	"github.com/flowblame/flowblame/ingest"
)

func validResult(t *testing.T) *Result {
	t.Helper()
	pkts := []ingest.Packet{
		pkt(0, ingest.ProtoTCP, "198.51.100.1:40000", "203.0.113.5:443", 1000),
		pkt(500, ingest.ProtoTCP, "203.0.113.5:443", "198.51.100.1:40000", 100),
		pkt(1300, ingest.ProtoUDP, "198.51.100.1:53", "203.0.113.9:5353", 200),
		pkt(3100, ingest.ProtoUDP, "203.0.113.7:1", "203.0.113.8:2", 60),
	}
	r, err := Analyze(context.Background(), &memSource{pkts: pkts}, Options{Local: local24, Attributor: &fakeAttributor{}})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name    string
		corrupt func(r *Result)
		wantErr string // "" = valid
	}{
		{"valid", func(r *Result) {}, ""},
		{"flow bytes off", func(r *Result) { r.Flows[0].Traffic.Out.Wire++ }, "flows sum"},
		{"owner bytes off", func(r *Result) { r.Flows[0].Owners[0].Traffic.Packets++ }, "owners sum"},
		{"process bytes off", func(r *Result) { r.Processes[0].Traffic.In.Wire += 5 }, "processes+unattributed"},
		{"unattributed off", func(r *Result) { r.Unattributed[0].Unknown.Packets++ }, "processes+unattributed"},
		{"pair off", func(r *Result) { r.Pairs[1].Flows++ }, "pairs sum"},
		{"remote off", func(r *Result) { r.Remotes[0].Traffic.In.IP-- }, "remotes sum"},
		{"negative rate", func(r *Result) { r.Flows[1].Traffic.OutRate.S10 = -1 }, "bad rate"},
		{"first after last", func(r *Result) { r.Flows[0].Traffic.First = r.Flows[0].Traffic.Last + 1 }, "first"},
		{"flows unsorted", func(r *Result) { r.Flows[0], r.Flows[1] = r.Flows[1], r.Flows[0] }, "flows not sorted"},
		{"series off", func(r *Result) { r.Series[0].Out++ }, "series sums"},
		{"series unsorted", func(r *Result) { r.Series[0].Sec = r.Series[1].Sec + 5 }, "series not sorted"},
		{"coverage", func(r *Result) { r.Coverage.TX = 1.5 }, "coverage"},
		{"peak too high", func(r *Result) { r.Flows[0].Traffic.PeakOut.Rate = 1e9 }, "peak exceeds"},
		{"iface off", func(r *Result) { r.IfaceSeries[0].Unknown.Packets++ }, "interfaces sum"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := validResult(t)
			tt.corrupt(r)
			err := r.Validate()
			switch {
			case tt.wantErr == "" && err != nil:
				t.Errorf("Validate() = %v, want nil", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Errorf("Validate() = %v, want an error containing %q", err, tt.wantErr)
			}
		})
	}
}

// FuzzAnalyze turns arbitrary bytes into a packet stream (times that jump
// back and forth, odd lengths, every direction and kind, several
// interfaces, a fixed or open At and Window) and checks that Analyze never
// panics and that its Result always passes Validate.
func FuzzAnalyze(f *testing.F) {
	f.Add([]byte{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15}, int64(0), int64(0))
	f.Add([]byte("\x05\x00\x10\x20\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a\x0b\x0c\xff\xfe\xfd"), int64(3), int64(-2))
	f.Add(make([]byte, 64), int64(40), int64(7))
	f.Add([]byte("\x05\x00\x10\x20\x01\x02\x03\x04\x05\x00\x10\x20\x01\x02\x43\x0c\x01\x00\x10\x20\x01\x02\x23\x1c"), int64(2)<<32|40, int64(0)) // MaxFlows 2
	f.Fuzz(func(t *testing.T, data []byte, atSec, fromSec int64) {
		const recLen = 8
		var pkts []ingest.Packet
		ts := t0
		for len(data) >= recLen {
			b := data[:recLen]
			data = data[recLen:]
			ts += int64(int8(b[0])) * 97_000_000 // jumps of up to ±12 s, sometimes backwards
			p := ingest.Packet{TS: ts, WireLen: int(binary.LittleEndian.Uint16(b[1:3])), Iface: int(b[3] % 3), SLLType: -1}
			p.CapLen = min(p.WireLen, 96)
			p.Dir = ingest.Direction(b[4] % 3)
			p.HasMAC = b[4]&0x10 != 0
			p.SrcMAC[5], p.DstMAC[5] = b[5]&3, b[5]>>2&3
			switch b[6] % 5 {
			case 0:
				p.Kind = ingest.KindNonIP
			default:
				p.Kind = ingest.KindIP
				p.IPLen = max(0, p.WireLen-14)
				src := netip.AddrFrom4([4]byte{198, 51, 100 + b[6]>>7, b[7] & 7})
				dst := netip.AddrFrom4([4]byte{203, 0, 113, b[7] >> 3 & 7})
				if b[6]&0x40 != 0 {
					src, dst = dst, src
				}
				if b[6]&0x20 != 0 { // IPv6 twin
					src = netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 15: src.As4()[3]})
					dst = netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 1, 15: dst.As4()[3]})
				}
				p.Tuple = ingest.FiveTuple{Proto: []uint8{ingest.ProtoTCP, ingest.ProtoUDP, ingest.ProtoICMP}[b[5]%3],
					Src: netip.AddrPortFrom(src, uint16(b[7]&1)), Dst: netip.AddrPortFrom(dst, 80)}
			}
			pkts = append(pkts, p)
		}
		opts := Options{
			Local:      []netip.Prefix{netip.MustParsePrefix("198.51.100.0/25")},
			IfaceAddrs: map[int][]netip.Prefix{2: {netip.MustParsePrefix("2001:db8::3/64")}},
			LocalMACs:  [][6]byte{{5: 1}},
			Attributor: &fakeAttributor{},
		}
		opts.MaxFlows = int(uint64(atSec) >> 32 % 8) // folding past 1..7 flows, or none
		if atSec != 0 {
			opts.At = t0 + (atSec%100)*nsPerSec
		}
		if fromSec != 0 {
			opts.Window.From = t0 + (fromSec%20)*nsPerSec
		}
		for _, serial := range []bool{true, false} {
			opts.Serial = serial
			r, err := Analyze(context.Background(), &memSource{pkts: pkts, ifs: []ingest.Interface{{Name: "a"}, {Name: "b", MAC: []byte{2, 0, 0, 0, 0, 2}}}}, opts)
			if err != nil {
				t.Fatal(err)
			}
			if err := r.Validate(); err != nil {
				t.Fatalf("serial=%v: %v", serial, err)
			}
		}
	})
}
