#!/usr/bin/env bash
# make bench: the measurements of issue 6, side by side, as one table.
# Needs `make build lapi` first (the Makefile's bench target does both).
# Loopback only; takes several minutes. Not part of `make test`.
#
# Knobs for shorter development runs (defaults are the issue's):
#   BENCH_SIZES=10000,100000  list sizes of the full-sync comparison
#   BENCH_ADDS=200            `cscli decisions add` runs timed, then scaled
#   BENCH_GOFLAGS=            extra flags for `go test -bench`
#   BENCH_MIRROR_N=100000     entries of the mirror benchmark
#   BENCH_CLUSTER=            flags for benchcluster (scale-out: PostgreSQL,
#                             bouncer streams), e.g. "-size 10000 -rounds 1";
#                             BENCH_CLUSTER=skip leaves it out
#   BENCH_KERNELFLAGS=        extra flags for benchkernel, e.g.
#                             "-apply-rounds 1 -pps-rounds 1 -pps-time 1s"
set -euo pipefail
cd "$(dirname "$0")/../.."

GO=${GO:-go}
BRIDGE=${BRIDGE:-bin/crowdsec-apiban-bridge}
SIZES=${BENCH_SIZES:-10000,100000}
ADDS=${BENCH_ADDS:-200}

[ -x "$BRIDGE" ] || { echo "run.sh: $BRIDGE missing: run make build" >&2; exit 1; }

echo "== machine"
echo "date:   $(date -u +%Y-%m-%dT%H:%M:%SZ)"
echo "cpu:    $(nproc) x $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)"
echo "memory: $(awk '/MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo)"
echo "kernel: $(uname -sr)"
echo "go:     $($GO version)"
echo "load:   $(cut -d' ' -f1-3 /proc/loadavg) (other processes share this machine when load > 0)"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# Items 2 and 5 (engine CPU, state file): Go benchmarks, no LAPI needed.
echo "== go test -bench (bridge, bridge/state, bridge/lapi: the per-sync check against a real LAPI; bouncer: one poll of the stream)"
$GO test -run '^$' -bench . -benchmem -count 1 ${BENCH_GOFLAGS:-} \
	./bridge/ ./bridge/state/ ./bridge/lapi/ ./bouncer/ | tee "$work/gobench.txt"

# Items 3 and 4 (kernel apply, per-packet cost): the embedded bouncer's
# backends against `nft -f`, 200-element transactions, `ipset restore` and
# one-rule-per-IP iptables, in network namespaces of benchkernel's own
# (deleted afterwards, also on failure; veth only). Needs root. Its rows go
# into the one table through benchsync -kernel; if it fails, the table says
# so and make bench fails after printing it.
kernel_rc=0
echo "== benchkernel (root, network namespaces; about 1.5 minutes)"
not_measured() {
	printf '3\tkernel apply of 100,000 decisions\tnot measured: %s\twithin 1.5x of `nft -f`\tpending\n4\tUDP packets/s into a "pbx" namespace\tnot measured: %s\t\tpending\n' "$1" "$1" >"$work/kernel.txt"
}
if [ "$(id -u)" -eq 0 ]; then
	echo "load:   $(cut -d' ' -f1-3 /proc/loadavg) (before benchkernel)"
	not_measured "benchkernel did not finish" # it replaces this with its rows
	$GO run ./test/bench/cmd/benchkernel -rows "$work/kernel.txt" ${BENCH_KERNELFLAGS:-} || kernel_rc=$?
else
	echo "benchkernel: skipped, needs root (network namespaces, nftables, iptables)" >&2
	not_measured "make bench was not run as root"
fi

# Items 1, 2, 5 and 6 end to end: real LAPI, simulated APIBAN, the bridge
# binary, cscli; every result is checked before it is printed.
echo "== benchsync (sizes $SIZES, $ADDS timed cscli decisions add)"
$GO run ./test/bench/cmd/benchsync -bridge "$BRIDGE" -sizes "$SIZES" -adds "$ADDS" \
	-gobench "$work/gobench.txt" -kernel "$work/kernel.txt"
# Issue 13: the APIBAN-compatible mirror under 50 concurrent clients
# pulling 100,000 entries, beside static files served by http.FileServer.
echo "== benchmirror (${BENCH_MIRROR_N:-100000} entries, 50 clients)"
$GO run ./test/bench/cmd/benchmirror -bridge "$BRIDGE" -n "${BENCH_MIRROR_N:-100000}" -clients 50

# Scale-out (docs/scale-out.md): a full sync of 100,000 into LAPI on
# PostgreSQL against `cscli decisions import` (median of 3), and embedded
# bouncers pulling a 100,000-decision stream against plain go-cs-bouncer
# clients. Root (a network namespace of its own) and Debian's postgresql.
if [ "${BENCH_CLUSTER:-}" != skip ]; then
	if [ "$(id -u)" -eq 0 ]; then
		echo "== benchcluster (root, PostgreSQL 15; about 3 minutes)"
		$GO run ./test/bench/cmd/benchcluster -bridge "$BRIDGE" ${BENCH_CLUSTER:-}
	else
		echo "benchcluster: skipped, needs root (network namespace, PostgreSQL as the postgres user)" >&2
	fi
fi

if [ "$kernel_rc" -ne 0 ]; then
	echo "run.sh: benchkernel failed (exit $kernel_rc): items 3 and 4 not measured" >&2
	exit "$kernel_rc"
fi
