#!/usr/bin/env bash
# bench/collect.sh — `make bench-collect`: flowblame collect against
# `tcpdump -s 96 -w` at the same loads, in one run, across a veth pair
# between two network namespaces this script creates (198.51.100.0/24).
#
# For each load (iperf3 TCP bulk; iperf3 UDP with 64-byte datagrams) and each
# capturer it reports: packets captured vs offered (the veth's kernel
# counters), kernel drops, capturer CPU, peak RSS (VmHWM) and bytes written per
# minute, as a Markdown table. CPU is the capturer's on-CPU time from the
# scheduler (/proc/PID/task/*/schedstat, nanoseconds; /proc/PID/stat's 10 ms
# ticks are too coarse for a process using 1 % of a core). Every load runs
# REPS times with the capturers interleaved (tcpdump, flowblame, ...,
# tcpdump, ...), so that the machine's background load hits all of them
# alike; a summary table gives each capturer's median and its ratio to
# tcpdump's median. Compare rows of one run only: the machine may be shared.
#
# Needs root, iproute2, iperf3, tcpdump, capinfos (wireshark-common), Go.
# Tunables: SECS (load seconds, default 10), REPS (default 5), TCP_RATE
# (default 1G), UDP_RATE (default 20M: ~39 kpps of 64-byte datagrams),
# UDP_RATE_HIGH (default 100M: as fast as iperf3 manages here).
set -euo pipefail

SECS=${SECS:-10}
REPS=${REPS:-5}
UDP_RATE_HIGH=${UDP_RATE_HIGH:-100M}
TCP_RATE=${TCP_RATE:-1G}
UDP_RATE=${UDP_RATE:-20M}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
ID=$$
NSA=fbbA$ID NSB=fbbB$ID VA=fbbvA$ID VB=fbbvB$ID
A=198.51.100.1 B=198.51.100.2
WORK=$(mktemp -d /tmp/flowblame-bench-collect.XXXXXX)

[ "$(id -u)" = 0 ] || { echo "bench-collect needs root" >&2; exit 1; }
for t in ip iperf3 tcpdump capinfos go; do
	command -v $t >/dev/null || { echo "missing $t" >&2; exit 1; }
done

cleanup() {
	pkill -P $$ 2>/dev/null || true
	ip netns del $NSA 2>/dev/null || true
	ip netns del $NSB 2>/dev/null || true
	rm -rf "$WORK"
}
trap cleanup EXIT

(cd "$ROOT" && CGO_ENABLED=0 go build -o "$WORK/flowblame" ./cmd/flowblame)

ip netns add $NSA
ip netns add $NSB
ip link add $VA netns $NSA type veth peer name $VB netns $NSB
for x in "$NSA $VA $A" "$NSB $VB $B"; do
	set -- $x
	ip netns exec $1 sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
	ip -n $1 addr add $3/24 dev $2
	ip -n $1 link set lo up
	ip -n $1 link set $2 up
done
# Offloads off (when ethtool is installed): 1500-byte packets, a realistic
# packet rate, as in spec/collector.md.
OFFLOADS=on
if command -v ethtool >/dev/null; then
	ip netns exec $NSA ethtool -K $VA tso off gso off gro off >/dev/null 2>&1 &&
		ip netns exec $NSB ethtool -K $VB tso off gso off gro off >/dev/null 2>&1 && OFFLOADS=off
fi
ip -n $NSB route get $A | grep -q "dev $VB" || { echo "route to $A not via $VB" >&2; exit 1; }

counters() { # rx_packets + tx_packets of the veth in namespace A
	ip netns exec $NSA sh -c "echo \$(( \$(cat /sys/class/net/$VA/statistics/rx_packets) + \$(cat /sys/class/net/$VA/statistics/tx_packets) ))"
}
cpu_ns() { cat /proc/$1/task/*/schedstat | awk '{n += $1} END {print n}'; }
hwm_kb() { awk '/VmHWM/ {print $2}' /proc/$1/status; }
npackets() { # total packets in capture files
	local n=0 f
	for f in "$@"; do n=$((n + $(capinfos -c -M "$f" | awk -F': *' '/Number of packets/ {print $2}'))); done
	echo $n
}

RESULTS=$WORK/results.tsv
: >"$RESULTS"
echo "| load | capturer | offered pkts | captured | captured/offered | kernel drops | CPU % of 1 core | CPU µs / packet | peak RSS MiB | MB written / min | of which packets |"
echo "|---|---|---|---|---|---|---|---|---|---|---|"

run() { # run LOADNAME CAPTURER IPERF-ARGS...
	local load=$1 cap=$2; shift 2
	local out=$WORK/$load-$cap-$RANDOM$RANDOM pid
	ip netns exec $NSA iperf3 -s -1 -B $A >/dev/null 2>&1 &
	local srv=$!
	sleep 0.5
	local c0; c0=$(counters)
	case $cap in
	tcpdump)
		ip netns exec $NSA tcpdump -i $VA -s 96 -w $out.pcap -n 2>$out.err &
		pid=$!;;
	flowblame)
		ip netns exec $NSA "$WORK/flowblame" collect -i $VA --no-tar --min-free 0 -o $out >/dev/null 2>$out.err &
		pid=$!;;
	flowblame-capture-only)
		ip netns exec $NSA "$WORK/flowblame" collect -i $VA --no-tar --min-free 0 --no-sockets -o $out >/dev/null 2>$out.err &
		pid=$!;;
	esac
	sleep 1.5
	local t0; t0=$(date +%s.%N)
	local k0; k0=$(cpu_ns $pid)
	if [ "$load" = idle ]; then
		sleep $SECS
	else
		ip netns exec $NSB iperf3 -c $A -t $SECS "$@" >/dev/null 2>&1 || true
	fi
	sleep 1
	local k1; k1=$(cpu_ns $pid)
	local hwm; hwm=$(hwm_kb $pid)
	local t1; t1=$(date +%s.%N)
	kill -INT $pid
	wait $pid 2>/dev/null || true
	kill $srv 2>/dev/null || true # idle: no client came
	wait $srv 2>/dev/null || true
	local c1; c1=$(counters)
	local offered=$((c1 - c0)) captured drops bytes capbytes
	case $cap in
	tcpdump)
		captured=$(npackets $out.pcap)
		drops=$(awk '/dropped by kernel/ {print $1}' $out.err)
		bytes=$(stat -c %s $out.pcap)
		capbytes=$bytes;;
	flowblame*)
		captured=$(npackets $out/capture/*.pcapng)
		drops=$(python3 -c "import json,sys; m=json.load(open('$out/manifest.json')); print(sum(i['capture_dropped'] for i in m['interfaces'] if i['captured']))")
		bytes=$(du -sb $out | cut -f1)
		capbytes=$(du -sb $out/capture | cut -f1)
		[ -z "${VERBOSE:-}" ] || ls -l $out $out/capture >&2;;
	esac
	awk -v l="$load" -v c="$cap" -v o=$offered -v n=$captured -v d=${drops:-?} -v k=$((k1 - k0)) \
		-v t0=$t0 -v t1=$t1 -v r=$hwm -v b=$bytes -v cb=$capbytes -v res="$RESULTS" 'BEGIN {
		el = t1 - t0
		cpu = 100 * k / 1e9 / el
		us = (n ? k / 1e3 / n : 0)
		printf "| %s | %s | %d | %d | %.4f | %s | %.2f | %.3f | %.1f | %.1f | %.1f |\n", l, c, o, n, (o ? n / o : 0), d,
			cpu, us, r / 1024, b / 1e6 / (el + 1.5) * 60, cb / 1e6 / (el + 1.5) * 60
		printf "%s\t%s\t%.4f\t%.4f\t%s\t%d\t%d\n", l, c, cpu, us, d, n, o >>res }'
}

# runload LOADNAME IPERF-ARGS...: REPS rounds, the capturers interleaved.
runload() {
	local load=$1 rep cap; shift
	for rep in $(seq "$REPS"); do
		for cap in $CAPS; do
			run "$load" $cap "$@"
		done
	done
}

CAPS="tcpdump flowblame flowblame-capture-only"
runload idle
runload "tcp-bulk-$TCP_RATE" -b $TCP_RATE
runload "udp64-$UDP_RATE" -u -l 64 -b $UDP_RATE
runload "udp64-$UDP_RATE_HIGH" -u -l 64 -b $UDP_RATE_HIGH
echo
echo "Medians over $REPS interleaved runs (ratio = this capturer's median CPU / tcpdump's median CPU, same load):"
echo
echo "| load | capturer | median CPU % of 1 core | min–max | median µs / packet | ratio to tcpdump (CPU) | drops (all runs) | captured/offered (all runs) |"
echo "|---|---|---|---|---|---|---|---|"
awk -F'\t' '
function isort(a, k,   i, j, v) { for (i = 2; i <= k; i++) { v = a[i]; for (j = i - 1; j >= 1 && a[j] > v; j--) a[j + 1] = a[j]; a[j + 1] = v } }
function med(a, k) { isort(a, k); return (k % 2) ? a[(k + 1) / 2] : (a[k / 2] + a[k / 2 + 1]) / 2 }
function flush() {
	if (key == "") return
	m = med(cpu, k); mu = med(us, k)
	if (c == "tcpdump") base[l] = m
	order[++no] = key; M[key] = m; MU[key] = mu; LO[key] = cpu[1]; HI[key] = cpu[k]; D[key] = drops; N[key] = np; O[key] = off
	L[key] = l; C[key] = c
}
{
	if ($1 "\t" $2 != key) { flush(); key = $1 "\t" $2; l = $1; c = $2; k = 0; drops = 0; np = 0; off = 0 }
	k++; cpu[k] = $3; us[k] = $4; drops += $5; np += $6; off += $7
}
END {
	flush()
	for (i = 1; i <= no; i++) {
		x = order[i]; b = base[L[x]]
		printf "| %s | %s | %.2f | %.2f–%.2f | %.3f | %s | %d | %.4f |\n", L[x], C[x], M[x], LO[x], HI[x], MU[x],
			(b > 0 ? sprintf("%.2f×", M[x] / b) : "–"), D[x], (O[x] ? N[x] / O[x] : 0)
	}
}' <(sort -s -t$'\t' -k1,1 -k2,2 "$RESULTS")
echo
echo "offered = rx+tx packets of the captured veth end over the capture window (kernel counters);"
echo "CPU = capturer on-CPU time (schedstat, all threads) over the load window; flowblame includes its socket/process watcher"
echo "(flowblame-capture-only = collect --no-sockets: the capture path alone),"
echo "whose cost depends on the host's processes and sockets (see the idle row), not on the load;"
echo "flowblame bytes = whole bundle directory; \"of which packets\" = capture/*.pcapng."
echo "$(nproc) CPUs, kernel $(uname -r), ${SECS}s per run, veth offloads $OFFLOADS."
