package ingest

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"

	"github.com/flowblame/flowblame/internal/fixturecopy"
)

// tinyPcap returns a pcap (LINKTYPE_RAW) with one IPv4/UDP packet
// 198.51.100.1:5000 → 203.0.113.9:53 at t = 10 s.
func tinyPcap() []byte {
	var b bytes.Buffer
	hdr := []uint32{0xa1b2c3d4, 0x00040002, 0, 0, 65535, uint32(LinkRaw)}
	binary.Write(&b, binary.LittleEndian, hdr[0])
	binary.Write(&b, binary.LittleEndian, uint16(2))
	binary.Write(&b, binary.LittleEndian, uint16(4))
	binary.Write(&b, binary.LittleEndian, uint32(0))
	binary.Write(&b, binary.LittleEndian, uint32(0))
	binary.Write(&b, binary.LittleEndian, uint32(65535))
	binary.Write(&b, binary.LittleEndian, uint32(LinkRaw))
	pkt := []byte{
		0x45, 0, 0, 28, 0, 1, 0, 0, 64, 17, 0, 0, 198, 51, 100, 1, 203, 0, 113, 9,
		0x13, 0x88, 0, 53, 0, 8, 0, 0,
	}
	binary.Write(&b, binary.LittleEndian, []uint32{10, 0, uint32(len(pkt)), uint32(len(pkt))})
	b.Write(pkt)
	return b.Bytes()
}

const testManifest = `{"format":1,"tool":"flowblame test","host":{"hostname":"h"},
 "interfaces":[{"index":2,"name":"veth0","mac":"02:00:00:00:00:01","addrs":["198.51.100.1/24","2001:db8::1/64"],"captured":true},
               {"index":1,"name":"lo","addrs":["127.0.0.1/8"]}],
 "addr_changes":[{"t":5,"iface":"veth0","addr":"203.0.113.200/24","action":"add"}],
 "capture":{"interfaces":["veth0"],"snapshot_interval_s":1},
 "netns":[{"inode":0,"host":true},{"inode":77}],
 "files":[{"path":"capture/0001.pcap","size":68,"sha256":"x"},{"path":"sockets.jsonl","size":1,"sha256":"x"},{"path":"capture/0002.pcap","size":1,"sha256":"x"}]}`

const testSockets = `{"kind":"snapshot","t":1000000000,"seq":1,"count":1}
{"kind":"seen","t":1000000000,"snap":1,"proto":"udp","local":"198.51.100.1:5000","remote":"203.0.113.9:53","state":"ESTAB","cookie":9,"holders":[{"pid":10,"start":1}]}
this is not json
{"kind":"snapshot","t":2000000000,"seq":2,"count":1}
{"kind":"seen","t":2000000000,"snap":2,"proto":"tcp","local":"198.51.100.1:1","remote":"203.0.113.9:2","cookie":10,"holders":[{"pid":11,"start":1}]}
{"kind":"snapshot","t":3000000000,"seq":3,"coun`

const testProcesses = `{"pid":10,"start":1,"comm":"fb-udp","first_seen":1,"last_seen":5}
{"pid":10,"start":1,"comm":"fb-udp","first_seen":3,"last_seen":9}
{"pid":11,"start":1,"comm":"fb-tcp"
`

const testCounters = `{"t":1,"iface":"veth0","rx_bytes":10,"tx_bytes":20}
{"t":2,"iface":"veth0","rx_bytes":11,"tx_bytes":22}
`

// testConntrack: a masqueraded connection, then a line with a bad endpoint.
const testConntrack = `{"t":5,"proto":6,"orig_src":"203.0.113.2:40000","orig_dst":"198.51.100.2:443","reply_src":"198.51.100.2:443","reply_dst":"198.51.100.1:61000"}
{"t":6,"proto":6,"orig_src":"203.0.113.2","orig_dst":"198.51.100.2:443","reply_src":"198.51.100.2:443","reply_dst":"198.51.100.1:61001"}
`

func writeTestBundle(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	files := map[string][]byte{
		ManifestFile:        []byte(testManifest),
		SocketsFile:         []byte(testSockets),
		ProcessesFile:       []byte(testProcesses),
		CountersFile:        []byte(testCounters),
		ConntrackFile:       []byte(testConntrack),
		"capture/0001.pcap": tinyPcap(),
		"capture/notes.txt": []byte("not a capture"),
	}
	for name, data := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// tarBundle archives dir under a top directory "bundle/".
func tarBundle(t *testing.T, dir string, gz bool) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), "b.tar.gz")
	f, err := os.Create(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var w io.Writer = f
	var zw *gzip.Writer
	if gz {
		zw = gzip.NewWriter(f)
		w = zw
	}
	tw := tar.NewWriter(w)
	var names []string
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			names = append(names, p)
		}
		return nil
	})
	sort.Strings(names)
	for _, p := range names {
		data, _ := os.ReadFile(p)
		rel, _ := filepath.Rel(dir, p)
		tw.WriteHeader(&tar.Header{Name: "bundle/" + filepath.ToSlash(rel), Mode: 0o644, Size: int64(len(data)), Typeflag: tar.TypeReg})
		tw.Write(data)
	}
	tw.Close()
	if zw != nil {
		zw.Close()
	}
	return out
}

func TestOpenBundle(t *testing.T) {
	dir := writeTestBundle(t)
	for _, tc := range []struct {
		name string
		path string
	}{
		{name: "dir", path: dir},
		{name: "tar.gz", path: tarBundle(t, dir, true)},
		{name: "tar", path: tarBundle(t, dir, false)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, err := OpenBundle(tc.path, Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer b.Close()
			if b.Manifest.Tool != "flowblame test" || len(b.CaptureFiles) != 1 {
				t.Errorf("manifest/captures: %+v %v", b.Manifest, b.CaptureFiles)
			}
			if len(b.Observations) != 2 || b.Observations[0].Holders[0].PID != 10 {
				t.Errorf("observations = %+v", b.Observations)
			}
			if len(b.Coverage.Times()) != 2 {
				t.Errorf("coverage = %+v", b.Coverage)
			}
			if p := b.Processes[ProcKey{PID: 10, Start: 1}]; p.Comm != "fb-udp" || p.FirstSeen != 1 || p.LastSeen != 9 || len(b.Processes) != 1 {
				t.Errorf("processes = %+v", b.Processes)
			}
			if len(b.Counters) != 2 {
				t.Errorf("counters = %+v", b.Counters)
			}
			if len(b.NAT) != 1 || b.NAT[0].ReplyDst != "198.51.100.1:61000" || b.NAT[0].T != 5 {
				t.Errorf("NAT = %+v", b.NAT)
			}
			want := map[string]bool{
				"sockets.jsonl/line 3/malformed":   true, // not json
				"sockets.jsonl/line 6/truncated":   true, // cut last line
				"processes.jsonl/line 3/malformed": true, // unterminated object, but newline-terminated
				"capture/0002.pcap//skipped":       true, // in manifest, missing
				"sockets.jsonl//malformed":         true, // size differs from manifest
				"conntrack.jsonl/line 2/malformed": true, // endpoint without a port
			}
			got := map[string]bool{}
			for _, d := range b.Diagnostics {
				got[d.File+"/"+d.Where+"/"+string(d.Kind)] = true
			}
			for k := range want {
				if !got[k] {
					t.Errorf("missing diagnostic %s; got %v", k, b.Diagnostics)
				}
			}
			if len(got) != len(want) {
				t.Errorf("diagnostics = %v", b.Diagnostics)
			}
			lp := b.LocalPrefixes()
			wantLP := []string{"127.0.0.1/32", "198.51.100.1/32", "203.0.113.200/32", "2001:db8::1/128"}
			if len(lp) != len(wantLP) {
				t.Fatalf("LocalPrefixes = %v", lp)
			}
			for i := range wantLP {
				if lp[i].String() != wantLP[i] {
					t.Errorf("LocalPrefixes = %v, want %v", lp, wantLP)
				}
			}
			if b.HostNetns() != 0 || b.UninventoriedNetns() != 1 {
				t.Errorf("netns: host %d, uninventoried %d", b.HostNetns(), b.UninventoriedNetns())
			}
			ifs := b.Ifaces()
			if ifs[0].MAC.String() != "02:00:00:00:00:01" || ifs[1].MAC != nil || len(ifs[0].Addrs) != 3 {
				t.Errorf("Ifaces = %+v", ifs)
			}
			src, err := b.Packets()
			if err != nil {
				t.Fatal(err)
			}
			defer src.Close()
			var p Packet
			if err := src.Next(&p); err != nil {
				t.Fatal(err)
			}
			if p.Tuple.Src != netip.MustParseAddrPort("198.51.100.1:5000") {
				t.Errorf("packet = %+v", p.Tuple)
			}
			tmp := b.tmp
			b.Close()
			if tmp != "" {
				if _, err := os.Stat(tmp); !errors.Is(err, os.ErrNotExist) {
					t.Errorf("extraction dir %s not removed", tmp)
				}
			}
		})
	}
}

func TestOpenBundleFatal(t *testing.T) {
	dir := t.TempDir()
	if _, err := OpenBundle(dir, Options{}); !errors.Is(err, ErrUnrecognized) {
		t.Errorf("no manifest: err = %v", err)
	}
	os.WriteFile(filepath.Join(dir, ManifestFile), []byte(`{"format":1,`), 0o644)
	if _, err := OpenBundle(dir, Options{}); !errors.Is(err, ErrMalformed) {
		t.Errorf("bad manifest: err = %v", err)
	}
	os.WriteFile(filepath.Join(dir, ManifestFile), []byte(`{"format":99}`), 0o644)
	if _, err := OpenBundle(dir, Options{}); !errors.Is(err, ErrUnrecognized) {
		t.Errorf("future format: err = %v", err)
	}
	// Damaged fields are left out with a diagnostic; the rest is read.
	os.WriteFile(filepath.Join(dir, ManifestFile), []byte(`{"format":1,"files":[{"path":"../x"}],"capture":{"snaplen":"96"},"host":{"hostname":"web-01"}}`), 0o644)
	b, err := OpenBundle(dir, Options{})
	if err != nil {
		t.Fatalf("damaged fields: err = %v", err)
	}
	var msgs []string
	for _, d := range b.Diagnostics {
		msgs = append(msgs, d.Msg)
	}
	all := strings.Join(msgs, "\n")
	if b.Manifest.Host.Hostname != "web-01" || len(b.Manifest.Files) != 0 ||
		!strings.Contains(all, `unsafe path "../x" left out`) || !strings.Contains(all, `field "capture" not read`) {
		t.Errorf("damaged fields: host %q, files %v, diagnostics:\n%s", b.Manifest.Host.Hostname, b.Manifest.Files, all)
	}
	b.Close()
	notTar := filepath.Join(dir, "x.tar.gz")
	os.WriteFile(notTar, []byte("hello, not a tar archive at all"), 0o644)
	if _, err := OpenBundle(notTar, Options{}); !errors.Is(err, ErrUnrecognized) {
		t.Errorf("not a tar: err = %v", err)
	}
}

func TestOpenBundleNoSockets(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, ManifestFile), []byte(`{"format":1}`), 0o644)
	b, err := OpenBundle(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	var msgs []string
	for _, d := range b.Diagnostics {
		msgs = append(msgs, d.File+": "+d.Msg)
	}
	s := strings.Join(msgs, "\n")
	for _, want := range []string{"sockets.jsonl: file missing", "processes.jsonl: file missing", "counters.jsonl: file missing", "capture: bundle has no capture files"} {
		if !strings.Contains(s, want) {
			t.Errorf("diagnostics lack %q:\n%s", want, s)
		}
	}
	if _, err := b.Packets(); err == nil {
		t.Error("Packets on a bundle without captures succeeded")
	}
}

func TestReadJSONLLongLine(t *testing.T) {
	in := `{"kind":"snapshot","t":1}` + "\n" + `{"kind":"x","pad":"` + strings.Repeat("a", maxJSONLine+10) + `"}` + "\n" + `{"kind":"snapshot","t":2}` + "\n"
	var recs []SocketRecord
	diags := readSocketsJSONL(strings.NewReader(in), SocketsFile, func(r SocketRecord) { recs = append(recs, r) })
	if len(recs) != 2 || len(diags) != 1 || diags[0].Where != "line 2" || diags[0].Kind != DiagSkipped {
		t.Errorf("recs %d, diags %v", len(recs), diags)
	}
}

func TestReadManifestErrors(t *testing.T) {
	tests := []struct {
		name, in string
		want     error
	}{
		{"garbage", "{", ErrMalformed},
		{"format", `{"format":2}`, ErrUnrecognized},
		{"abs path", `{"format":1,"files":[{"path":"/etc/passwd"}]}`, ErrMalformed},
		{"dotdot", `{"format":1,"files":[{"path":"../x"}]}`, ErrMalformed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ReadManifest(strings.NewReader(tc.in))
			if !errors.Is(err, tc.want) {
				t.Errorf("err = %v, want %v", err, tc.want)
			}
		})
	}
}

func FuzzManifest(f *testing.F) {
	f.Add([]byte(`{"format":1,"files":[{"path":"capture/00000.pcapng","size":3,"sha256":"00"}]}`))
	f.Add([]byte(`[]`))
	f.Add([]byte(testManifest))
	f.Add([]byte(`{"format":1}`))
	f.Add([]byte(`{"format":1,"files":[{"path":"a/../../b"}]}`))
	f.Add([]byte(`{"format":1,"interfaces":[{"name":"x","mac":"zz","addrs":["1.2.3.4","bad","::1/200"]}],"addr_changes":[{"iface":"x","addr":"1.1.1.1/8","action":"add"},{"iface":"nope","addr":"1.1.1.1","action":"add"}]}`))
	f.Add([]byte(`{"format":1,"capture":{"snaplen":-1},"host":{"hostname":"h"},"files":[{"path":"../x","size":"3"}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		// The lenient reader the bundle reader uses: what it keeps is safe.
		if lm, _, err := readManifestLenient(bytes.NewReader(data)); err == nil {
			for _, e := range lm.Files {
				if e.Path == "" || strings.HasPrefix(e.Path, "/") || !fs.ValidPath(e.Path) {
					t.Fatalf("lenient: unsafe path kept: %q", e.Path)
				}
			}
		}
		m, err := ReadManifest(bytes.NewReader(data))
		if err != nil {
			return
		}
		for _, e := range m.Files {
			if e.Path == "" || strings.HasPrefix(e.Path, "/") || !fs.ValidPath(e.Path) {
				t.Fatalf("unsafe path accepted: %q", e.Path)
			}
		}
		b := &Bundle{Manifest: *m}
		for _, p := range b.LocalPrefixes() {
			if !p.IsValid() || !p.IsSingleIP() {
				t.Fatalf("bad local prefix %v", p)
			}
		}
		b.finish(map[string]int64{})
	})
}

func FuzzSocketsJSONL(f *testing.F) {
	f.Add([]byte(testSockets))
	f.Add([]byte(`{"kind":"destroy","t":5,"proto":"tcp","local":"[::1]:1","remote":"[::1]:2","cookie":1}
{"kind":"gone","t":6,"snap":3,"cookie":1}
{"kind":"probe","t":7,"proto":"udp","local":"*:53","remote":"*:*","inode":4}
{"kind":"seen","t":8,"proto":"tcp","local":"1.2.3.4:5","remote":"5.6.7.8:9","inode":4,"holders":[{"pid":1}]}
{"kind":"bytes","t":9,"inode":4,"bytes_acked":5}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		nc := NewNativeCompiler()
		readSocketsJSONL(bytes.NewReader(data), SocketsFile, nc.Add)
		obs, cov, _ := nc.Finish()
		for _, o := range obs {
			if !o.Local.IsValid() {
				t.Fatalf("observation without local endpoint: %+v", o)
			}
		}
		_ = cov.Times()
	})
}

// FuzzConntrackJSONL: any conntrack.jsonl yields records whose four
// endpoints parse, plus diagnostics for the rest; never a panic.
func FuzzConntrackJSONL(f *testing.F) {
	f.Add([]byte(testConntrack))
	f.Add([]byte(`{"t":1,"proto":17,"orig_src":"[2001:db8::2]:5000","orig_dst":"[2001:db8::9]:53","reply_src":"[2001:db8::9]:53","reply_dst":"[2001:db8::1]:62000","zone":3}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		b := &Bundle{}
		b.readMember(ConntrackFile, bytes.NewReader(data))
		for _, n := range b.NAT {
			for _, e := range []string{n.OrigSrc, n.OrigDst, n.ReplySrc, n.ReplyDst} {
				if _, err := ParseEndpoint(e); err != nil {
					t.Fatalf("record kept with a bad endpoint: %+v", n)
				}
			}
		}
	})
}

// A bundle comes from an untrusted host: a member that is a symlink out of
// the bundle, or a FIFO, is not read (no leak, no hang) and is reported.
func TestOpenBundleRefusesNonRegularMembers(t *testing.T) {
	dir := t.TempDir()
	outside := filepath.Join(t.TempDir(), "secret")
	os.WriteFile(outside, []byte(`{"pid":1,"start":1,"comm":"LEAKED"}`+"\n"), 0o644)
	os.WriteFile(filepath.Join(dir, ManifestFile), []byte(`{"format":1}`), 0o644)
	if err := os.Symlink(outside, filepath.Join(dir, ProcessesFile)); err != nil {
		t.Skip(err)
	}
	if err := syscallMkfifo(filepath.Join(dir, SocketsFile)); err != nil {
		t.Skip(err)
	}
	// Captures from outside through a symlinked capture directory.
	outCaps := t.TempDir()
	os.WriteFile(filepath.Join(outCaps, "00000.pcapng"), []byte("not read"), 0o644)
	if err := os.Symlink(outCaps, filepath.Join(dir, CaptureDir)); err != nil {
		t.Skip(err)
	}
	b, err := OpenBundle(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(b.CaptureFiles) != 0 {
		t.Errorf("captures read through a symlinked directory: %v", b.CaptureFiles)
	}
	for _, p := range b.Processes {
		if p.Comm == "LEAKED" {
			t.Fatal("processes.jsonl symlink outside the bundle was followed")
		}
	}
	var msgs []string
	for _, d := range b.Diagnostics {
		msgs = append(msgs, d.File+": "+d.Msg)
	}
	s := strings.Join(msgs, "\n")
	for _, want := range []string{"processes.jsonl: not read: processes.jsonl is a symbolic link, not a regular file",
		"sockets.jsonl: not read: sockets.jsonl is a named pipe, not a regular file",
		"capture: not read: capture is a symbolic link, not a directory"} {
		if !strings.Contains(s, want) {
			t.Errorf("diagnostics lack %q:\n%s", want, s)
		}
	}
	if strings.Contains(s, "processes.jsonl: file missing") {
		t.Errorf("unreadable member reported as missing:\n%s", s)
	}
	// A manifest that is a symlink out of the bundle is not read either.
	os.Remove(filepath.Join(dir, ManifestFile))
	os.WriteFile(outside, []byte(`{"format":1,"host":{"hostname":"LEAKED"}}`), 0o644)
	os.Symlink(outside, filepath.Join(dir, ManifestFile))
	if _, err := OpenBundle(dir, Options{}); err == nil || !strings.Contains(err.Error(), "manifest.json is a symbolic link") {
		t.Errorf("symlinked manifest: err %v", err)
	}
}

// TestOpenBundleBadInterfaceValues: interface addresses and MACs the
// manifest holds but that cannot be parsed are reported, not dropped
// silently (they decide direction).
func TestOpenBundleBadInterfaceValues(t *testing.T) {
	dir := fixturecopy.Bundle(t, "../fixtures/bundles/miner", nil)
	raw, err := os.ReadFile(filepath.Join(dir, ManifestFile))
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	ifs := m["interfaces"].([]any)
	if0 := ifs[0].(map[string]any)
	if0["addrs"] = append(if0["addrs"].([]any), "not-an-address", "198.51.100.300/24")
	if0["mac"] = "zz:zz"
	raw, _ = json.Marshal(m)
	os.WriteFile(filepath.Join(dir, ManifestFile), raw, 0o644)
	b, err := OpenBundle(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	found := false
	for _, d := range b.Diagnostics {
		if d.File == ManifestFile && strings.Contains(d.Msg, `"not-an-address"`) && strings.Contains(d.Msg, `MAC "zz:zz"`) && d.Count == 3 {
			found = true
		}
	}
	if !found {
		t.Errorf("no diagnostic for the bad values: %v", b.Diagnostics)
	}
}

// TestReadManifestBOM: a manifest saved with a UTF-8 byte-order mark (an
// editor on Windows) is read.
func TestReadManifestBOM(t *testing.T) {
	m, err := ReadManifest(strings.NewReader("\xef\xbb\xbf" + `{"format":1,"host":{"hostname":"web-01"}}`))
	if err != nil || m.Host.Hostname != "web-01" {
		t.Fatalf("manifest with BOM: %+v, %v", m, err)
	}
}

// TestOpenBundleArchiveCutInCapture: a bundle archive that ends inside a
// capture (copied while it was written, a cut download) gives the packets
// read so far and says so; a member the archive holds twice is read once.
func TestOpenBundleArchiveCutInCapture(t *testing.T) {
	src := "../fixtures/bundles/miner"
	member := func(name string) []byte {
		b, err := os.ReadFile(filepath.Join(src, filepath.FromSlash(name)))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	capName := CaptureDir + "/00000.pcapng"
	write := func(names []string) []byte {
		var buf bytes.Buffer
		tw := tar.NewWriter(&buf)
		for _, n := range names {
			data := member(n)
			tw.WriteHeader(&tar.Header{Name: n, Mode: 0o644, Size: int64(len(data)), Typeflag: tar.TypeReg})
			tw.Write(data)
		}
		tw.Close()
		return buf.Bytes()
	}
	dir := t.TempDir()
	full := write([]string{ManifestFile, capName, SocketsFile, ProcessesFile, CountersFile})
	capLen := len(member(capName))
	cutAt := len(member(ManifestFile)) + 1024 + capLen/2 // inside the capture's data
	cut := filepath.Join(dir, "cut.tar")
	os.WriteFile(cut, full[:cutAt], 0o644)
	b, err := OpenBundle(cut, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	var msgs []string
	for _, d := range b.Diagnostics {
		msgs = append(msgs, d.File+": "+string(d.Kind)+": "+d.Msg)
	}
	all := strings.Join(msgs, "\n")
	if !strings.Contains(all, capName+": truncated: the archive ends inside this file") {
		t.Errorf("no truncation diagnostic:\n%s", all)
	}
	src2, err := b.Packets()
	if err != nil {
		t.Fatal(err)
	}
	n := checkSource(t, src2, 1<<20)
	if n == 0 {
		t.Error("no packet read from the cut capture")
	}

	dup := filepath.Join(dir, "dup.tar")
	os.WriteFile(dup, write([]string{ManifestFile, capName, capName, SocketsFile, ProcessesFile, CountersFile}), 0o644)
	b2, err := OpenBundle(dup, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer b2.Close()
	if len(b2.CaptureFiles) != 1 {
		t.Errorf("%d capture files from a duplicated member, want 1", len(b2.CaptureFiles))
	}
	found := false
	for _, d := range b2.Diagnostics {
		found = found || strings.Contains(d.Msg, "holds this file twice")
	}
	if !found {
		t.Errorf("no diagnostic for the duplicate: %v", b2.Diagnostics)
	}
}

// TestOpenBundleUnlistedCapture: a capture file the manifest does not list
// (a copy left next to the original) is analysed and reported.
func TestOpenBundleUnlistedCapture(t *testing.T) {
	dir := fixturecopy.Bundle(t, "../fixtures/bundles/miner", nil)
	data, err := os.ReadFile(filepath.Join(dir, CaptureDir, "00000.pcapng"))
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, CaptureDir, "00000-copy.pcapng"), data, 0o644)
	b, err := OpenBundle(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	var got []string
	for _, d := range b.Diagnostics {
		if strings.Contains(d.Msg, "not listed in the manifest") {
			got = append(got, d.File)
		}
	}
	if len(got) != 1 || got[0] != CaptureDir+"/00000-copy.pcapng" || len(b.CaptureFiles) != 2 {
		t.Errorf("unlisted captures reported %v, %d capture files", got, len(b.CaptureFiles))
	}
}

// TestCountersBackwards: interface counters that went backwards (the
// interface re-created during the capture) are not used, and said so.
func TestCountersBackwards(t *testing.T) {
	in := IfaceInfo{Name: "eth0", CountersStart: &IfaceCounters{TxBytes: 5000, RxBytes: 100},
		CountersEnd: &IfaceCounters{TxBytes: 7000, RxBytes: 40}}
	if _, _, ok := in.CounterBytes(); ok {
		t.Error("backwards counters accepted")
	}
	in.CountersEnd.RxBytes = 400
	if tx, rx, ok := in.CounterBytes(); !ok || tx != 2000 || rx != 300 {
		t.Errorf("CounterBytes = %d, %d, %v", tx, rx, ok)
	}
	b := &Bundle{Manifest: Manifest{Interfaces: []IfaceInfo{{Name: "eth1", CountersStart: &IfaceCounters{TxBytes: 9},
		CountersEnd: &IfaceCounters{TxBytes: 1}}}}}
	b.checkManifestValues()
	if len(b.Diagnostics) != 1 || !strings.Contains(b.Diagnostics[0].Msg, "eth1: the interface counters went backwards") {
		t.Errorf("diagnostics %v", b.Diagnostics)
	}
}

// FuzzDecodeSocketRecord: whatever line decodeSocketRecord accepts,
// encoding/json accepts too and decodes to the same record.
func FuzzDecodeSocketRecord(f *testing.F) {
	for _, l := range strings.Split(testSockets, "\n") {
		f.Add([]byte(l))
	}
	for _, l := range []string{`{"kind":"seen","t":-9223372036854775808,"holders":[]}`, `{"kind":"x","inode":18446744073709551615}`,
		`{"kind":"x","inode":18446744073709551616}`, `{"kind":"x","t":1.5}`, `{"kind":"x","t":1e3}`, `{"kind":"\u0041"}`, `{"KIND":"x"}`,
		`{"kind":"x","holders":[{"pid":1,"start":2},{}]}`, `{"kind":"x","holders":null}`, `{"kind":"x"} x`, `{"kind":"x","t":-0}`,
		`{"kind":"x","t":01}`, `{ "kind" : "x" , "t" : 5 }`, `{"kind":"é"}`, `{"kind":"x","kind":"y"}`, `{}`} {
		f.Add([]byte(l))
	}
	f.Fuzz(func(t *testing.T, line []byte) {
		var fast SocketRecord
		if !decodeSocketRecord(line, &fast) {
			return
		}
		var slow SocketRecord
		if err := json.Unmarshal(line, &slow); err != nil {
			t.Fatalf("%q: the fast decoder accepted what encoding/json rejects: %v", line, err)
		}
		if !reflect.DeepEqual(fast, slow) {
			t.Fatalf("%q: fast %+v, encoding/json %+v", line, fast, slow)
		}
	})
}

// TestDecodeSocketRecordTakesCollectorLines: every line the collector wrote
// into the fixture bundles takes the fast path and decodes as
// encoding/json decodes it.
func TestDecodeSocketRecordTakesCollectorLines(t *testing.T) {
	files, _ := filepath.Glob("../fixtures/bundles/*/" + SocketsFile)
	n := 0
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range bytes.Split(bytes.TrimSpace(data), []byte("\n")) {
			var fast, slow SocketRecord
			if !decodeSocketRecord(line, &fast) {
				t.Fatalf("%s: fast path declined %s", file, line)
			}
			if err := json.Unmarshal(line, &slow); err != nil || !reflect.DeepEqual(fast, slow) {
				t.Fatalf("%s: %s: fast %+v, encoding/json %+v (%v)", file, line, fast, slow, err)
			}
			n++
		}
	}
	if n < 1000 {
		t.Fatalf("only %d collector lines in the fixtures", n)
	}
}
