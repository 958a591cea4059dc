package ingest

import (
	"errors"
	"io"
)

// Merge combines sources into one that yields their packets in timestamp
// order: a k-way merge on the next packet's TS, ties going to the source
// listed first (a source's own order is kept even when its timestamps go
// backwards). Interface indices are renumbered to be global, in order of
// first appearance in the merged stream (interfaces without packets are
// numbered when Interfaces is called). Merge takes ownership of the
// sources: Close closes them all. A fatal error from any source ends the
// merged source with that error.
//
// Payload of the packet returned by Next aliases the buffer of the source
// it came from and is valid only until the next call to Next.
func Merge(srcs ...PacketSource) PacketSource {
	m := &mergeSource{srcs: srcs, heads: make([]Packet, len(srcs)), pending: make([]bool, len(srcs)), last: -1}
	m.globals = make([][]int, len(srcs))
	return m
}

type mergeSource struct {
	srcs  []PacketSource
	heads []Packet // next packet of each source in the heap
	// pending: the source (a lazyFile) has not been read yet; its head
	// holds only the time of its first packet, read when it is due.
	pending []bool
	heap    []int // source indices ordered by (heads[i].TS, i)
	started bool
	last    int // source of the packet returned last, to be refilled; -1 none
	globals [][]int
	ifaces  []Interface
	err     error
}

func (m *mergeSource) less(a, b int) bool {
	ta, tb := m.heads[a].TS, m.heads[b].TS
	return ta < tb || (ta == tb && a < b)
}

func (m *mergeSource) up(j int) {
	for j > 0 {
		i := (j - 1) / 2
		if !m.less(m.heap[j], m.heap[i]) {
			break
		}
		m.heap[i], m.heap[j] = m.heap[j], m.heap[i]
		j = i
	}
}

func (m *mergeSource) down(i int) {
	n := len(m.heap)
	for {
		l := 2*i + 1
		if l >= n {
			return
		}
		j := l
		if r := l + 1; r < n && m.less(m.heap[r], m.heap[l]) {
			j = r
		}
		if !m.less(m.heap[j], m.heap[i]) {
			return
		}
		m.heap[i], m.heap[j] = m.heap[j], m.heap[i]
		i = j
	}
}

// pull reads the next packet of source i into heads[i]; ok false at EOF.
func (m *mergeSource) pull(i int) (bool, error) {
	err := m.srcs[i].Next(&m.heads[i])
	if err == nil {
		return true, nil
	}
	if errors.Is(err, io.EOF) {
		return false, nil
	}
	return false, err
}

// Next implements PacketSource.
func (m *mergeSource) Next(p *Packet) error {
	if m.err != nil {
		return m.err
	}
	if !m.started {
		m.started = true
		for i := range m.srcs {
			if lf, ok := m.srcs[i].(interface{ firstTS() (int64, bool) }); ok {
				if ts, ok := lf.firstTS(); ok {
					m.heads[i], m.pending[i] = Packet{TS: ts}, true
					m.heap = append(m.heap, i)
					m.up(len(m.heap) - 1)
					continue
				}
			}
			ok, err := m.pull(i)
			if err != nil {
				m.err = err
				return err
			}
			if ok {
				m.heap = append(m.heap, i)
				m.up(len(m.heap) - 1)
			}
		}
	} else if m.last >= 0 {
		ok, err := m.pull(m.last)
		if err != nil {
			m.err = err
			return err
		}
		if ok {
			m.down(0)
		} else {
			n := len(m.heap) - 1
			m.heap[0] = m.heap[n]
			m.heap = m.heap[:n]
			if n > 0 {
				m.down(0)
			}
		}
		m.last = -1
	}
	for len(m.heap) > 0 && m.pending[m.heap[0]] {
		// The merge has reached a pending file's first packet: read it.
		i := m.heap[0]
		m.pending[i] = false
		ok, err := m.pull(i)
		if err != nil {
			m.err = err
			return err
		}
		if !ok { // gone since the probe
			n := len(m.heap) - 1
			m.heap[0] = m.heap[n]
			m.heap = m.heap[:n]
		}
		if len(m.heap) > 0 {
			m.down(0)
		}
	}
	if len(m.heap) == 0 {
		m.err = io.EOF
		return m.err
	}
	i := m.heap[0]
	*p = m.heads[i]
	p.Iface = m.global(i, p.Iface)
	m.last = i
	return nil
}

// global maps interface local of source i to its global index.
func (m *mergeSource) global(i, local int) int {
	g := m.globals[i]
	if local < len(g) && g[local] >= 0 {
		return g[local]
	}
	for len(g) <= local {
		g = append(g, -1)
	}
	m.globals[i] = g
	g[local] = len(m.ifaces)
	m.ifaces = append(m.ifaces, Interface{}) // filled by Interfaces
	return g[local]
}

// Interfaces implements PacketSource.
func (m *mergeSource) Interfaces() []Interface {
	for i, s := range m.srcs {
		for local := range s.Interfaces() {
			m.global(i, local)
		}
	}
	out := make([]Interface, len(m.ifaces))
	for i, s := range m.srcs {
		ifs := s.Interfaces()
		for local, g := range m.globals[i] {
			if g >= 0 && local < len(ifs) {
				out[g] = ifs[local]
			}
		}
	}
	return out
}

// Diagnostics implements PacketSource: those of every source, in source
// order.
func (m *mergeSource) Diagnostics() []Diagnostic {
	var out []Diagnostic
	for _, s := range m.srcs {
		out = append(out, s.Diagnostics()...)
	}
	return out
}

// Stats implements PacketSource: the sum over the sources.
func (m *mergeSource) Stats() SourceStats {
	var t SourceStats
	for _, s := range m.srcs {
		st := s.Stats()
		t.Files += st.Files
		t.Packets += st.Packets
		t.Bytes += st.Bytes
		t.CapturedBytes += st.CapturedBytes
		t.Truncated += st.Truncated
		t.Malformed += st.Malformed
		t.NonIP += st.NonIP
		t.Unsupported += st.Unsupported
		t.SkippedBytes += st.SkippedBytes
		t.Duplicates += st.Duplicates
	}
	// Packets pulled into heads but not yet returned are not "read".
	if m.started {
		for _, i := range m.heap {
			if i != m.last && !m.pending[i] {
				h := &m.heads[i]
				t.Packets--
				t.Bytes -= int64(h.WireLen)
				t.CapturedBytes -= int64(h.CapLen)
				if h.Truncated {
					t.Truncated--
				}
				switch h.Kind {
				case KindMalformed:
					t.Malformed--
				case KindNonIP:
					t.NonIP--
				case KindUnsupportedLink:
					t.Unsupported--
				}
			}
		}
	}
	return t
}

// Close implements PacketSource; it closes every source.
func (m *mergeSource) Close() error {
	var first error
	for _, s := range m.srcs {
		if err := s.Close(); err != nil && first == nil {
			first = err
		}
	}
	if m.err == nil {
		m.err = io.EOF
	}
	return first
}
