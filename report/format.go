package report

import (
	"fmt"
	"math"
)

// formatter renders volumes and rates for text formats: volumes in bytes
// with SI prefixes (k = 1000), rates in bits/s (default) or bytes/s.
type formatter struct{ bits bool }

func (f formatter) rateUnit() string {
	if f.bits {
		return "bits/s"
	}
	return "bytes/s"
}

func si(v float64, unit string) string {
	prefixes := []string{"", "k", "M", "G", "T", "P"}
	i := 0
	for math.Abs(v) >= 999.95 && i < len(prefixes)-1 {
		v /= 1000
		i++
	}
	if i == 0 {
		return fmt.Sprintf("%.0f %s", v, unit)
	}
	return fmt.Sprintf("%.1f %s%s", v, prefixes[i], unit)
}

func (f formatter) bytes(b int64) string { return si(float64(b), "B") }

// rate formats a rate given in bytes/s.
func (f formatter) rate(bps float64) string {
	if f.bits {
		return si(bps*8, "b/s")
	}
	return si(bps, "B/s")
}

func fmtPct(x float64) string {
	if x > 0 && x < 0.001 {
		return "<0.1%"
	}
	return fmt.Sprintf("%.1f%%", x*100)
}

func fmtDuration(s float64) string {
	switch {
	case s < 120:
		return fmt.Sprintf("%.1f s", s)
	case s < 7200:
		return fmt.Sprintf("%.1f min", s/60)
	}
	return fmt.Sprintf("%.1f h", s/3600)
}
