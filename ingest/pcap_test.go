package ingest

import "encoding/binary"

// pcapHeader builds a pcap global header.
func pcapHeader(be bool, major, minor uint16, snaplen, link uint32) []byte {
	var bo binary.ByteOrder = binary.LittleEndian
	if be {
		bo = binary.BigEndian
	}
	h := make([]byte, 24)
	bo.PutUint32(h, magicPcapMicro)
	bo.PutUint16(h[4:], major)
	bo.PutUint16(h[6:], minor)
	bo.PutUint32(h[16:], snaplen)
	bo.PutUint32(h[20:], link)
	return h
}
