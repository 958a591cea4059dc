// Package ingest reads what flowblame analyses: capture files (pcap,
// pcapng, either gzip-compressed, one or many merged in time order), the
// bundle written by `flowblame collect`, and foreign socket snapshots.
//
// Capture readers are pull iterators (PacketSource). They read through one
// 1 MiB buffer with no allocation per packet; the Payload of a Packet
// aliases that buffer and is valid only until the next call to Next.
// Problems are returned as values: a fatal problem (unknown magic, invalid
// header) is an error wrapping ErrUnrecognized, ErrMalformed or
// ErrTruncated; a bad record is skipped and reported as a Diagnostic
// (folded per kind, with a count); a cut-off tail keeps every packet before
// it plus a DiagTruncated diagnostic. Options.Strict makes record-level
// problems fatal.
//
// Example:
//
//	src, err := ingest.OpenCaptures([]string{"a.pcapng", "b.pcap.gz"}, ingest.Options{})
//	if err != nil {
//		return err
//	}
//	defer src.Close()
//	var p ingest.Packet
//	for {
//		if err := src.Next(&p); err == io.EOF {
//			break
//		} else if err != nil {
//			return err
//		}
//		// use p (copy p.Payload if it must outlive this iteration)
//	}
//	diags := src.Diagnostics()
package ingest
