package ingest

import "math"

// decodeSocketRecord decodes one sockets.jsonl line the way the collector
// writes it — a flat object of SocketRecord's keys, plain ASCII strings,
// integers and a holders array of {pid, start} — without reflection. It
// reports false, having maybe written part of rec, for anything else
// (escapes, non-ASCII, numbers with fractions or exponents, null, unknown
// or differently cased keys, out-of-range numbers, trailing bytes): the
// caller then uses encoding/json, which gives the same record for every
// line this accepts (FuzzDecodeSocketRecord checks it).
func decodeSocketRecord(line []byte, rec *SocketRecord) bool {
	d := recDecoder{b: line}
	if !d.lit('{') {
		return false
	}
	if d.lit('}') {
		return d.end()
	}
	for {
		key, ok := d.str()
		if !ok || !d.lit(':') {
			return false
		}
		switch key {
		case "kind":
			rec.Kind, ok = d.known()
		case "proto":
			rec.Proto, ok = d.known()
		case "local":
			rec.Local, ok = d.str()
		case "remote":
			rec.Remote, ok = d.str()
		case "state":
			rec.State, ok = d.known()
		case "partial":
			rec.Partial, ok = d.str()
		case "t":
			rec.T, ok = d.int()
		case "seq":
			rec.Seq, ok = d.intN()
		case "snap":
			rec.Snap, ok = d.intN()
		case "count":
			rec.Count, ok = d.intN()
		case "uid":
			rec.UID, ok = d.intN()
		case "netns":
			rec.Netns, ok = d.uint()
		case "inode":
			rec.Inode, ok = d.uint()
		case "cookie":
			rec.Cookie, ok = d.uint()
		case "cgroup_id":
			rec.CgroupID, ok = d.uint()
		case "bytes_acked":
			rec.BytesAcked, ok = d.uint()
		case "bytes_received":
			rec.BytesReceived, ok = d.uint()
		case "bytes_sent":
			rec.BytesSent, ok = d.uint()
		case "holders":
			rec.Holders, ok = d.holders()
		default:
			return false
		}
		if !ok {
			return false
		}
		if d.lit(',') {
			continue
		}
		if d.lit('}') {
			return d.end()
		}
		return false
	}
}

// recDecoder reads the JSON subset decodeSocketRecord accepts.
type recDecoder struct {
	b []byte
	i int
}

func (d *recDecoder) space() {
	for d.i < len(d.b) && (d.b[d.i] == ' ' || d.b[d.i] == '\t' || d.b[d.i] == '\n' || d.b[d.i] == '\r') {
		d.i++
	}
}

// lit consumes c (after white space) if it comes next.
func (d *recDecoder) lit(c byte) bool {
	d.space()
	if d.i < len(d.b) && d.b[d.i] == c {
		d.i++
		return true
	}
	return false
}

// end reports whether only white space is left.
func (d *recDecoder) end() bool {
	d.space()
	return d.i == len(d.b)
}

// raw reads a string of printable ASCII without escapes and returns its
// bytes (aliasing the line).
func (d *recDecoder) raw() ([]byte, bool) {
	if !d.lit('"') {
		return nil, false
	}
	start := d.i
	for ; d.i < len(d.b); d.i++ {
		switch c := d.b[d.i]; {
		case c == '"':
			d.i++
			return d.b[start : d.i-1], true
		case c == '\\' || c < 0x20 || c >= 0x80:
			return nil, false
		}
	}
	return nil, false
}

// str is raw as a string.
func (d *recDecoder) str() (string, bool) {
	b, ok := d.raw()
	return string(b), ok
}

// knownValues are the strings most records repeat: read as these
// constants, they cost no allocation.
var knownValues = func() map[string]string {
	m := map[string]string{}
	for _, v := range []string{"seen", "gone", "snapshot", "probe", "destroy", "bytes", "tcp", "udp",
		"ESTAB", "LISTEN", "UNCONN", "TIME-WAIT", "CLOSE-WAIT", "SYN-SENT", "SYN-RECV", "FIN-WAIT-1", "FIN-WAIT-2",
		"LAST-ACK", "CLOSING", "CLOSE", "UNKNOWN"} {
		m[v] = v
	}
	return m
}()

// known is str for values that are usually one of knownValues.
func (d *recDecoder) known() (string, bool) {
	b, ok := d.raw()
	if v, hit := knownValues[string(b)]; ok && hit { // the lookup does not allocate
		return v, true
	}
	return string(b), ok
}

// digits reads an optional minus sign and the digits of a JSON integer
// (no leading zeros, no fraction or exponent) as a magnitude.
func (d *recDecoder) digits() (neg bool, mag uint64, ok bool) {
	d.space()
	if d.i < len(d.b) && d.b[d.i] == '-' {
		neg = true
		d.i++
	}
	start := d.i
	for ; d.i < len(d.b) && d.b[d.i] >= '0' && d.b[d.i] <= '9'; d.i++ {
		c := uint64(d.b[d.i] - '0')
		if mag > (math.MaxUint64-c)/10 {
			return false, 0, false
		}
		mag = mag*10 + c
	}
	n := d.i - start
	if n == 0 || (n > 1 && d.b[start] == '0') {
		return false, 0, false
	}
	if d.i < len(d.b) && (d.b[d.i] == '.' || d.b[d.i] == 'e' || d.b[d.i] == 'E') {
		return false, 0, false // encoding/json rejects a fraction for an integer field
	}
	return neg, mag, true
}

func (d *recDecoder) int() (int64, bool) {
	neg, mag, ok := d.digits()
	switch {
	case !ok:
		return 0, false
	case neg && mag <= 1<<63:
		return -int64(mag), true // 1<<63 becomes math.MinInt64
	case !neg && mag <= math.MaxInt64:
		return int64(mag), true
	}
	return 0, false
}

func (d *recDecoder) intN() (int, bool) {
	v, ok := d.int()
	return int(v), ok && int64(int(v)) == v
}

func (d *recDecoder) uint() (uint64, bool) {
	neg, mag, ok := d.digits()
	if !ok || neg {
		return 0, false
	}
	return mag, true
}

// holders reads an array of {"pid": N, "start": N} objects.
func (d *recDecoder) holders() ([]ProcKey, bool) {
	if !d.lit('[') {
		return nil, false
	}
	hs := []ProcKey{}
	if d.lit(']') {
		return hs, true
	}
	for {
		if !d.lit('{') {
			return nil, false
		}
		var h ProcKey
		if !d.lit('}') {
			for {
				key, ok := d.str()
				if !ok || !d.lit(':') {
					return nil, false
				}
				switch key {
				case "pid":
					h.PID, ok = d.intN()
				case "start":
					h.Start, ok = d.int()
				default:
					return nil, false
				}
				if !ok {
					return nil, false
				}
				if d.lit(',') {
					continue
				}
				if d.lit('}') {
					break
				}
				return nil, false
			}
		}
		hs = append(hs, h)
		if d.lit(',') {
			continue
		}
		if d.lit(']') {
			return hs, true
		}
		return nil, false
	}
}
