package report

import (
	"bufio"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/flowblame/flowblame/analyze"
)

// iftopHostWidth is tui.c's PRINT_WIDTH: the host column.
const iftopHostWidth = 40

// iftopRule is the 92-column divider.
var iftopRule = strings.Repeat("-", iftopHostWidth+52)

// RenderIftop writes what `iftop -t -s S -n -N` writes to stdout for the
// screen s: the "Listening on <if>" line, then one 92-column text block
// (tui_print in iftop 1.0pre4). Rates are in bits (×8) unless s.Bytes;
// cumulative columns are always bytes. Numbers go through iftop's float32
// readable_size with base 1024.
func RenderIftop(w io.Writer, s *analyze.IftopScreen) error {
	bw := bufio.NewWriter(w)
	fmt.Fprintf(bw, "Listening on %s\n", s.Interface)
	renderIftopBlock(bw, s)
	return bw.Flush()
}

func renderIftopBlock(w *bufio.Writer, s *analyze.IftopScreen) {
	label := fmt.Sprintf("%-*s", iftopHostWidth, "Host name (port/service if enabled)")[:iftopHostWidth-1]
	fmt.Fprintf(w, "%s %s     %10s %10s %10s %10s\n", "   #", label, "last 2s", "last 10s", "last 40s", "cumulative")
	w.WriteString(iftopRule + "\n")
	for i, l := range s.Lines {
		host1 := iftopHost(l.V6, analyze.InetNtop(l.Src), l.SrcPort)
		host2 := iftopHost(l.V6, analyze.InetNtop(l.Dst), l.DstPort)
		fmt.Fprintf(w, "%4d %s%s", i+1, host1, " =>")
		for _, v := range l.Sent {
			fmt.Fprintf(w, " %10s", iftopSize(v, s.Bytes))
		}
		fmt.Fprintf(w, " %10s\n", iftopSize(float32(l.CumSent), true))
		fmt.Fprintf(w, "     %s%s", host2, " <=")
		for _, v := range l.Recv {
			fmt.Fprintf(w, " %10s", iftopSize(v, s.Bytes))
		}
		fmt.Fprintf(w, " %10s\n", iftopSize(float32(l.CumRecv), true))
	}
	w.WriteString(iftopRule + "\n")
	totals := func(name string, v [3]float32) {
		fmt.Fprintf(w, "%s ", iftopLabel(name))
		for j, x := range v {
			sep := byte(' ')
			if j == len(v)-1 {
				sep = '\n'
			}
			fmt.Fprintf(w, "%10s%c", iftopSize(x, s.Bytes), sep)
		}
	}
	totals("Total send rate:", s.SentRate)
	totals("Total receive rate:", s.RecvRate)
	totals("Total send and receive rate:", s.TotalRate)
	w.WriteString(iftopRule + "\n")
	fmt.Fprintf(w, "%s %10s %10s %10s\n", iftopLabel("Peak rate (sent/received/total):"),
		iftopSize(float32(s.PeakSent), s.Bytes), iftopSize(float32(s.PeakRecv), s.Bytes), iftopSize(float32(s.PeakTotal), s.Bytes))
	fmt.Fprintf(w, "%s %10s %10s %10s\n", iftopLabel("Cumulative (sent/received/total):"),
		iftopSize(float32(s.CumSent), true), iftopSize(float32(s.CumRecv), true), iftopSize(float32(s.CumSent+s.CumRecv), true))
	w.WriteString(strings.Repeat("=", iftopHostWidth+52) + "\n\n")
}

// iftopLabel is a totals label: left-justified in 48 columns
// (snprintf(labellong, PRINT_WIDTH + 9, "%-*s", PRINT_WIDTH + 9, ...)).
func iftopLabel(s string) string {
	return fmt.Sprintf("%-*s", iftopHostWidth+9, s)[:iftopHostWidth+8]
}

// iftopHost is sprint_host with -n -N: the address, ":port" when the port
// is non-zero, IPv6 with a port in brackets; padded to 40 columns, and when
// too long the ":port" overwrites the end so that it ends at column 40.
func iftopHost(v6 bool, host string, port uint16) string {
	const L = iftopHostWidth
	service := ""
	if port != 0 {
		service = ":" + strconv.Itoa(int(port))
	}
	left := len(host)
	var line string
	if port == 0 || !v6 {
		line = fmt.Sprintf("%-*s", L, host)
	} else {
		h := host
		if len(h) > L-2 {
			h = h[:L-2]
		}
		line = "[" + h + "]"
		left += 2
	}
	if left > L-len(service) {
		left = max(L-len(service), 0)
	}
	return line[:left] + fmt.Sprintf("%-*s", L-left, service)
}

// iftopSize is readable_size(n, buf, 10, 1024, bytes) in float32: ×8 for
// bits, units b/Kb/Mb/Gb (or B/KB/MB/GB) with base 1024, %4.0f below 1000
// of a unit, %4.2f below 10, %4.1f below 100; at most 9 characters.
func iftopSize(n float32, bytes bool) string {
	units := [4]string{"b", "Kb", "Mb", "Gb"}
	if bytes {
		units = [4]string{"B", "KB", "MB", "GB"}
	} else {
		n *= 8
	}
	i := 0
	size := float32(1)
	var s string
	for {
		if n < size*1000 || i >= len(units)-1 {
			s = fmt.Sprintf(" %4.0f%s", float64(n/size), units[i])
			break
		}
		i++
		size *= 1024
		if n < size*10 {
			s = fmt.Sprintf(" %4.2f%s", float64(n/size), units[i])
			break
		} else if n < size*100 {
			s = fmt.Sprintf(" %4.1f%s", float64(n/size), units[i])
			break
		}
	}
	if len(s) > 9 {
		s = s[:9]
	}
	return s
}
