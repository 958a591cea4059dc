#!/usr/bin/env bash
# bench/run.sh (make bench): offline analysis speed of flowblame against
# tcpdump and tshark, measured in ONE run so the ratios are meaningful on a
# shared machine (see spec/perf.md).
#
# Generates bench/data/bench-<N>.pcap once (N = $BENCH_N, default 20000000;
# snaplen 96, 200k 5-tuples, 10k remote hosts, 600 s) and a 2 M-packet cut
# for tshark, then prints a Markdown table: wall time, packets/s, MB/s of
# file read, peak RSS, and the ratio to tcpdump on the same file.
#
# Environment:
#   BENCH_N          packets in the big file (default 20000000)
#   BENCH_ANALYZER   analyzer command; the capture path is appended
#                    (default: the real `flowblame analyze --format json
#                    --local ...`). bench/analyzebench times the engine alone:
#                    BENCH_ANALYZER="bench/data/analyzebench -local 198.51.100.0/24,2001:db8:1::/64"
#   BENCH_SKIP_TSHARK=1  skip tshark (it needs ~1 GiB per 2 M packets)
#   BENCH_REPEAT     runs of each other tool, taken in turn; the median is
#                    reported (default 3)
#
# Needs: go, tcpdump, tshark + editcap (wireshark-common), GNU time
# (/usr/bin/time, Debian package "time").
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH=$PATH:/usr/local/go/bin

N=${BENCH_N:-20000000}
CUT=2000000
SMALLN=$(( N < CUT ? N : CUT ))
DATA=bench/data
BIG=$DATA/bench-$N.pcap
SMALL=$DATA/bench-$N-cut$CUT.pcap
mkdir -p "$DATA"

if [ ! -x /usr/bin/time ]; then
	echo "bench: GNU time missing: apt-get install -y time" >&2
	exit 1
fi
if [ ! -s "$BIG" ]; then
	echo "bench: generating $BIG ($N packets)..." >&2
	go run ./bench/gen -n "$N" -o "$BIG.tmp"
	mv "$BIG.tmp" "$BIG"
fi
if [ ! -s "$SMALL" ]; then
	if [ "$N" -le "$CUT" ]; then
		cp "$BIG" "$SMALL"
	else
		editcap -r "$BIG" "$SMALL.tmp" "1-$CUT"
		mv "$SMALL.tmp" "$SMALL"
	fi
fi

if [ -n "${BENCH_ANALYZER:-}" ]; then
	read -r -a ANALYZER <<<"$BENCH_ANALYZER"
	ANAME="${ANALYZER[*]}"
else
	# The real command: the whole analysis, findings and the JSON report.
	CGO_ENABLED=0 go build -o "$DATA/flowblame" ./cmd/flowblame
	ANALYZER=("$DATA/flowblame" analyze --format json --local 198.51.100.0/24,2001:db8:1::/64)
	ANAME="flowblame analyze --format json"
fi

# Warm the page cache so the first tool is not penalised.
cat "$BIG" "$SMALL" >/dev/null

declare -A WALL RSS CPU RUNS
measure() { # name file cmd...: one run, appended to RUNS[name] as "wall rss cpu;"
	local name=$1 file=$2
	shift 2
	/usr/bin/time -o "$DATA/time.out" -f "%e %M %U %S" "$@" >/dev/null 2>"$DATA/$name.stderr" ||
		echo "bench: $name failed, see $DATA/$name.stderr" >&2
	local w m u sy c
	read -r w m u sy < <(tail -1 "$DATA/time.out")
	c=$(awk -v u="$u" -v s="$sy" 'BEGIN { printf "%.2f", u + s }')
	RUNS[$name]+="$w $m $c;"
	echo "bench: $name: $w s, $c s CPU, $m KiB" >&2
}

# median NAME: WALL/RSS/CPU of the run with the median wall time, and the
# range of the wall times.
declare -A RANGE
median() {
	local name=$1
	[ -n "${RUNS[$name]:-}" ] || return 0
	read -r w m c lo hi < <(tr ';' '\n' <<<"${RUNS[$name]}" | grep . | sort -n -k1,1 |
		awk '{ r[NR] = $0; w[NR] = $1 } END { split(r[int((NR + 1) / 2)], x, " "); print x[1], x[2], x[3], w[1], w[NR] }')
	WALL[$name]=$w RSS[$name]=$m CPU[$name]=$c RANGE[$name]="$lo–$hi"
}

# The machine is shared and its speed swings by 15-30% between minutes:
# the tools run in turn, BENCH_REPEAT times (default 3), and each row is
# the run with the median wall time (the ratios compare runs taken
# side by side). tshark runs once (about 20 s).
REPEAT=${BENCH_REPEAT:-3}
for ((r = 1; r <= REPEAT; r++)); do
	measure tcpdump-big "$BIG" tcpdump -nn -r "$BIG" -w /dev/null
	measure analyzer-big "$BIG" "${ANALYZER[@]}" "$BIG"
	measure tcpdump-small "$SMALL" tcpdump -nn -r "$SMALL" -w /dev/null
	measure analyzer-small "$SMALL" "${ANALYZER[@]}" "$SMALL"
done
if [ -z "${BENCH_SKIP_TSHARK:-}" ]; then
	measure tshark-small "$SMALL" tshark -n -q -r "$SMALL" -z conv,ip
fi
for n in tcpdump-big analyzer-big tcpdump-small analyzer-small tshark-small; do
	median "$n"
done

row() { # name label file packets base
	local name=$1 label=$2 file=$3 pk=$4 base=$5
	[ -n "${WALL[$name]:-}" ] || return 0
	awk -v l="$label" -v f="$(basename "$file")" -v w="${WALL[$name]}" -v m="${RSS[$name]}" -v c="${CPU[$name]}" \
		-v p="$pk" -v s="$(stat -L -c %s "$file")" -v b="${WALL[$base]}" 'BEGIN {
		if (w <= 0) w = 0.01
		printf "| %s | %s | %.2f | %.2f | %.2f M | %.0f | %.0f | %.2f× |\n", l, f, w, c, p / w / 1e6, s / w / 1e6, m / 1024, w / b
	}'
}

echo
echo "Offline analysis speed on $(nproc) CPUs, $(date -u +%Y-%m-%dT%H:%MZ), load $(cut -d' ' -f1-3 /proc/loadavg);"
echo "median of $REPEAT runs taken in turn (tshark: 1); wall time ranges: big tcpdump ${RANGE[tcpdump-big]} s, flowblame ${RANGE[analyzer-big]} s"
echo
echo "| tool | file | wall s | CPU s (user+sys) | packets/s | MB/s read | peak MB | wall vs tcpdump |"
echo "|---|---|---|---|---|---|---|---|"
row tcpdump-big "tcpdump -nn -r F -w /dev/null" "$BIG" "$N" tcpdump-big
row analyzer-big "$ANAME" "$BIG" "$N" tcpdump-big
row tcpdump-small "tcpdump -nn -r F -w /dev/null" "$SMALL" "$SMALLN" tcpdump-small
row analyzer-small "$ANAME" "$SMALL" "$SMALLN" tcpdump-small
row tshark-small "tshark -n -q -z conv,ip" "$SMALL" "$SMALLN" tcpdump-small

# The issue's targets as ratios, from the rows above.
if [ -n "${WALL[tshark-small]:-}" ] && [ -n "${WALL[analyzer-small]:-}" ]; then
	awk -v tb="${WALL[tcpdump-big]}" -v ab="${WALL[analyzer-big]}" -v ts="${WALL[tshark-small]}" \
		-v as="${WALL[analyzer-small]}" -v n="$N" -v sn="$SMALLN" 'BEGIN {
		printf "\nvs tcpdump (%d packets): %.2f× its wall time (target ≤ 1).\n", n, ab / tb
		printf "vs tshark: %.1f× faster on the same %d-packet cut (wall time); %.1f× its packets/s when\n", ts / as, sn, (n / ab) / (sn / ts)
		printf "flowblame reads the %d-packet file (target ≥ 100×).\n", n
	}'
fi
