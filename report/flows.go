package report

import (
	"bufio"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/flowblame/flowblame/analyze"
	"github.com/flowblame/flowblame/ingest"
)

// FlowRecord is one line of `flowblame export --flows`: one flow in one
// interval, with its owner and the remote's location.
type FlowRecord struct {
	Start      string  `json:"start"` // RFC 3339, UTC
	End        string  `json:"end"`
	Proto      string  `json:"proto"`
	A          string  `json:"a"` // local side when oriented
	B          string  `json:"b"`
	Oriented   bool    `json:"oriented"`
	OutPackets int64   `json:"out_packets"`
	OutBytes   int64   `json:"out_wire_bytes"`
	InPackets  int64   `json:"in_packets"`
	InBytes    int64   `json:"in_wire_bytes"`
	OutIP      int64   `json:"out_ip_bytes"`
	InIP       int64   `json:"in_ip_bytes"`
	PID        int     `json:"pid"` // 0 when unattributed
	ProcStart  string  `json:"proc_start,omitempty"`
	Comm       string  `json:"comm"`
	Method     string  `json:"method"`
	Confidence string  `json:"confidence"`
	Cause      string  `json:"cause,omitempty"`
	Where      string  `json:"remote_where"`
	Country    string  `json:"remote_country,omitempty"`
	ASN        uint    `json:"remote_asn,omitempty"`
	Seconds    float64 `json:"seconds"` // first to last packet in the interval
}

// FlowRecords turns flow intervals into export records (geo may be nil).
func FlowRecords(ivs []analyze.FlowInterval, geo analyze.GeoLookup) []FlowRecord {
	out := make([]FlowRecord, 0, len(ivs))
	ts := func(ns int64) string { return time.Unix(0, ns).UTC().Format(time.RFC3339Nano) }
	for _, iv := range ivs {
		loc := analyze.Locate(geo, iv.Key.B.Addr())
		r := FlowRecord{Start: ts(iv.Start), End: ts(iv.End), Proto: ingest.ProtoName(iv.Key.Proto), A: iv.Key.A.String(), B: iv.Key.B.String(),
			Oriented: iv.Key.Oriented, OutPackets: iv.Out.Packets, OutBytes: iv.Out.Wire, InPackets: iv.In.Packets, InBytes: iv.In.Wire,
			OutIP: iv.Out.IP, InIP: iv.In.IP, PID: iv.Owner.Proc.PID, Comm: iv.Owner.Comm, Method: string(iv.Owner.Method),
			Confidence: string(iv.Owner.Confidence), Cause: string(iv.Owner.Cause), Where: loc.String(), Country: loc.Country, ASN: loc.ASN,
			Seconds: float64(iv.Last-iv.First) / 1e9}
		if iv.Owner.Proc.Start != 0 {
			r.ProcStart = ts(iv.Owner.Proc.Start)
		}
		out = append(out, r)
	}
	return out
}

// FlowWriter writes export records as JSON lines or CSV (a header line,
// then a row per record), a batch at a time.
type FlowWriter struct {
	bw     *bufio.Writer
	enc    *json.Encoder
	cw     *csv.Writer
	header bool
}

// NewFlowWriter writes to w in format "jsonl" or "csv".
func NewFlowWriter(w io.Writer, format string) *FlowWriter {
	if format == "csv" {
		return &FlowWriter{cw: csv.NewWriter(w)}
	}
	bw := bufio.NewWriterSize(w, 1<<16)
	enc := json.NewEncoder(bw)
	enc.SetEscapeHTML(false)
	return &FlowWriter{bw: bw, enc: enc}
}

// flowCSVHeader names the CSV columns (the JSON field names).
var flowCSVHeader = []string{"start", "end", "proto", "a", "b", "oriented", "out_packets", "out_wire_bytes", "in_packets",
	"in_wire_bytes", "out_ip_bytes", "in_ip_bytes", "pid", "proc_start", "comm", "method", "confidence", "cause",
	"remote_where", "remote_country", "remote_asn", "seconds"}

// Write writes recs.
func (fw *FlowWriter) Write(recs []FlowRecord) error {
	if fw.enc != nil {
		for i := range recs {
			if err := fw.enc.Encode(&recs[i]); err != nil {
				return err
			}
		}
		return nil
	}
	if !fw.header {
		fw.header = true
		if err := fw.cw.Write(flowCSVHeader); err != nil {
			return err
		}
	}
	i64 := func(v int64) string { return strconv.FormatInt(v, 10) }
	for _, r := range recs {
		asn := ""
		if r.ASN != 0 {
			asn = fmt.Sprint(r.ASN)
		}
		if err := fw.cw.Write([]string{r.Start, r.End, r.Proto, r.A, r.B, strconv.FormatBool(r.Oriented), i64(r.OutPackets), i64(r.OutBytes),
			i64(r.InPackets), i64(r.InBytes), i64(r.OutIP), i64(r.InIP), strconv.Itoa(r.PID), r.ProcStart, r.Comm, r.Method,
			r.Confidence, r.Cause, r.Where, r.Country, asn, strconv.FormatFloat(r.Seconds, 'f', 6, 64)}); err != nil {
			return err
		}
	}
	return nil
}

// Close writes the CSV header if no record came, and flushes.
func (fw *FlowWriter) Close() error {
	if fw.cw == nil {
		return fw.bw.Flush()
	}
	if !fw.header {
		if err := fw.Write(nil); err != nil {
			return err
		}
	}
	fw.cw.Flush()
	return fw.cw.Error()
}
