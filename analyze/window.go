package analyze

// RatesAt evaluates the clean window rates of the totals at instant t (Unix
// ns) from Result.Series: TX, RX and direction-unknown. See WindowRatesAt.
func (r *Result) RatesAt(t int64) (out, in, unknown WindowRates) {
	return WindowRatesAt(r.Series, t)
}

// WindowRatesAt evaluates 2/10/40-second window rates at instant t (Unix ns)
// over a per-second series sorted by Sec. With S = floor(t / 1 s), the N-second
// rate is the sum of the buckets with S-N < Sec ≤ S divided by N: the bytes of
// packets with timestamps in [S-N+1, S+1) seconds. Missing seconds count as 0.
func WindowRatesAt(series []SecondBucket, t int64) (out, in, unknown WindowRates) {
	return windowRatesAt(series, t)
}
