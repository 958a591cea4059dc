// Package dnsmsg builds DNS messages for flowblame's tests and fixture
// generator: a query with one question and a NOERROR response to it.
package dnsmsg

import (
	"net/netip"
	"strings"
)

// Query is a standard query (recursion desired) with one question for name,
// type A, class IN.
func Query(id uint16, name string) []byte {
	b := []byte{byte(id >> 8), byte(id), 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0}
	b = appendName(b, name)
	return append(b, 0, 1, 0, 1)
}

// Response is the NOERROR response to Query(id, name) whose answers are a
// CNAME to cname (when not empty) and then an A or AAAA record for each of
// addrs, their owner names compressed as pointers.
func Response(id uint16, name, cname string, addrs ...string) []byte {
	q := Query(id, name)
	q[2], q[3] = 0x81, 0x80
	n := len(addrs)
	if cname != "" {
		n++
	}
	q[6], q[7] = byte(n>>8), byte(n)
	owner := []byte{0xc0, 12}
	if cname != "" {
		target := appendName(nil, cname)
		q = append(q, owner...)
		q = append(q, 0, 5, 0, 1, 0, 0, 0, 60, byte(len(target)>>8), byte(len(target)))
		owner = []byte{0xc0, byte(len(q))}
		q = append(q, target...)
	}
	for _, s := range addrs {
		a := netip.MustParseAddr(s)
		typ, rd := byte(1), a.AsSlice()
		if a.Is6() {
			typ = 28
		}
		q = append(q, owner...)
		q = append(q, 0, typ, 0, 1, 0, 0, 0, 60, 0, byte(len(rd)))
		q = append(q, rd...)
	}
	return q
}

// appendName appends name in labels, ended by the root label.
func appendName(b []byte, name string) []byte {
	for _, l := range strings.Split(strings.TrimSuffix(name, "."), ".") {
		b = append(b, byte(len(l)))
		b = append(b, l...)
	}
	return append(b, 0)
}
