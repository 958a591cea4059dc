package ingest

import (
	"strconv"
	"strings"
)

// Windows Packet Monitor (pktmon) captures converted with `pktmon etl2pcap`
// log one packet at several places of the network stack ("appearances" at
// different components), each as its own pcapng packet with a comment:
//
//	PktGroupId 562949953421500, PktNumber 1, Appearance 1, Direction Tx , Type Ethernet , Component 78, Edge 1, Filter 1, OriginalSize 66, LoggedSize 66
//
// Counting every appearance would multiply the traffic. flowblame keeps the
// first appearance of each (PktGroupId, PktNumber), skips the others (they
// are counted in SourceStats.Duplicates and an info diagnostic), and takes
// the direction from "Direction Tx/Rx".

// pktmonInfo parses a pktmon comment; ok is false for other comments.
func pktmonInfo(c string) (group, number uint64, dir Direction, ok bool) {
	if !strings.HasPrefix(c, "PktGroupId ") {
		return 0, 0, DirUnknown, false
	}
	var haveGroup, haveNumber bool
	for _, f := range strings.Split(c, ",") {
		k, v, _ := strings.Cut(strings.TrimSpace(f), " ")
		v = strings.TrimSpace(v)
		switch k {
		case "PktGroupId":
			n, err := strconv.ParseUint(v, 10, 64)
			group, haveGroup = n, err == nil
		case "PktNumber":
			n, err := strconv.ParseUint(v, 10, 64)
			number, haveNumber = n, err == nil
		case "Direction":
			switch v {
			case "Tx":
				dir = DirOut
			case "Rx":
				dir = DirIn
			}
		}
	}
	return group, number, dir, haveGroup && haveNumber
}

// pktmonDedup remembers the most recent packets seen (a bounded window:
// appearances of one packet are logged close together).
type pktmonDedup struct {
	seen  map[[2]uint64]struct{}
	ring  [][2]uint64
	next  int
	skips int64
}

const pktmonWindow = 1 << 16

// duplicate reports whether (group, number) was seen before, and remembers it.
func (d *pktmonDedup) duplicate(group, number uint64) bool {
	k := [2]uint64{group, number}
	if d.seen == nil {
		d.seen = make(map[[2]uint64]struct{}, 1024)
		d.ring = make([][2]uint64, 0, 1024)
	}
	if _, ok := d.seen[k]; ok {
		d.skips++
		return true
	}
	if len(d.ring) < pktmonWindow {
		d.ring = append(d.ring, k)
	} else {
		delete(d.seen, d.ring[d.next])
		d.ring[d.next] = k
		d.next = (d.next + 1) % pktmonWindow
	}
	d.seen[k] = struct{}{}
	return false
}
