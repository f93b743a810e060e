#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# The figures of bench/PUBLISH-MODES.md: for each publish mode, messages per
# second as a ratio to single-message ioctl in the same run, and system calls
# per published message, counted.
#
# Usage: tools/pubmodes/run.sh [--count N] [--reps N] [--out DIR] [KVER...]
#
# On the host it boots each KVER (default: every supported kernel installed,
# tools/vm/kernels) in the test VM (tools/vm/run) and runs itself there; the
# table of each kernel is printed and kept in DIR/KVER.md (default
# build/pubmodes).  Build first: make modules-all tools.
#
# In the guest ($PCB_VM set), or on a host that can load modules, with
# --here: load build/KVER/pcb.ko unless /dev/pcb exists, then
#  1. timing, without any tracer: each mode runs --reps times, each time
#     right next to a run of single-message ioctl (before it on odd
#     repetitions, after it on even ones); the ratio of the two rates is
#     one sample, and the table shows the median sample and the range.
#     Pairs keep the ratios meaningful when the emulation's speed drifts
#     (other work on the host slows a TCG guest down);
#  2. counting: every mode once more under bpftrace, which counts the
#     raw_syscalls:sys_enter events of the publishing thread while it is
#     named "pcb-pub" (pubmodes names it so for the timed phase only).  The
#     prctl() that ends the phase is the one call counted that is not
#     publishing; it is subtracted.  The tracer's overhead never reaches
#     the rates: those come from step 1.

set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
prog=$here/pubmodes

count=102400
reps=7
outdir=$top/build/pubmodes
here_mode=
kvers=()

die() { echo "pubmodes: $*" >&2; exit 1; }

while [ $# -gt 0 ]; do
	case $1 in
	--count) count=$2; shift 2 ;;
	--reps)  reps=$2; shift 2 ;;
	--out)   outdir=$2; shift 2 ;;
	--here)  here_mode=1; shift ;;
	-h|--help) sed -n 's/^# \{0,1\}//; /^Usage:/,/^$/p' "$0"; exit 0 ;;
	-*)      die "unknown option $1" ;;
	*)       kvers+=("$1"); shift ;;
	esac
done

# label|pubmodes arguments
modes=(
	"ioctl, 1 message per call|--mode ioctl"
	"batch N=1|--mode batch --batch 1"
	"batch N=16|--mode batch --batch 16"
	"batch N=256|--mode batch --batch 256"
	"io_uring, 32 SQEs per submit|--mode uring --group 32"
	"io_uring SQPOLL|--mode sqpoll --group 32"
)

# --- host: one VM per kernel --------------------------------------------

on_host()
{
	local k rc=0

	[ -x "$prog" ] || die "$prog is not built (make tools)"
	[ ${#kvers[@]} -gt 0 ] || mapfile -t kvers < <("$top/tools/vm/kernels")
	[ ${#kvers[@]} -gt 0 ] || die "no supported kernel installed"
	mkdir -p "$outdir"
	outdir=$(cd "$outdir" && pwd)
	for k in "${kvers[@]}"; do
		[ -f "$top/build/$k/pcb.ko" ] ||
			die "build/$k/pcb.ko is not built (make modules-all)"
		rm -f "$outdir/$k.md"
		echo "pubmodes: $k: in the VM (console: $outdir/$k.console.log)" >&2
		(cd "$top" && tools/vm/run --out "$outdir" \
			--log "$outdir/$k.console.log" "$k" -- \
			tools/pubmodes/run.sh --here --count "$count" \
			--reps "$reps" --out "$outdir") >/dev/null || rc=1
		if [ -s "$outdir/$k.md" ]; then
			cat "$outdir/$k.md"
		else
			echo "pubmodes: $k: no figures (see $outdir/$k.console.log)" >&2
			rc=1
		fi
	done
	return $rc
}

# --- guest: measure -------------------------------------------------------

# The number of x86-64 system call @1, from the installed uapi header.
syscall_names=
syscall_name()
{
	local hdr

	if [ -z "$syscall_names" ]; then
		for hdr in /usr/include/x86_64-linux-gnu/asm/unistd_64.h \
			   /usr/include/asm/unistd_64.h; do
			[ -r "$hdr" ] || continue
			syscall_names=$(sed -n 's/^#define __NR_\([a-z0-9_]*\) \([0-9]*\)$/\2 \1/p' "$hdr")
			break
		done
	fi
	awk -v n="$1" '$1 == n { print $2; found = 1 } END { if (!found) print "syscall_" n }' \
		<<<"$syscall_names"
}

# The rate of one untraced run.
rate_of()
{
	local out

	# shellcheck disable=SC2086 # the mode's arguments are words
	out=$("$prog" --count "$count" $1) || die "pubmodes $1 failed"
	sed -n 's/.* rate=\([0-9]*\)$/\1/p' <<<"$out"
}

# "total breakdown" of the publishing thread's system calls in one run.
count_of()
{
	local out line id n name total=0 marker=0 parts=()

	# shellcheck disable=SC2016 # bpftrace's own $ and @ names
	out=$(bpftrace -c "$prog --count $count $1" -e '
		tracepoint:raw_syscalls:sys_enter
		/pid == cpid && comm == "pcb-pub"/
		{ @calls[args->id] = count(); }') || die "bpftrace: pubmodes $1 failed"
	grep -q '^pubmodes: mode=' <<<"$out" || die "pubmodes $1 printed nothing"
	while read -r line; do
		id=$(sed -n 's/^@calls\[\([0-9]*\)\]: \([0-9]*\)$/\1/p' <<<"$line")
		n=$(sed -n 's/^@calls\[\([0-9]*\)\]: \([0-9]*\)$/\2/p' <<<"$line")
		[ -n "$id" ] || continue
		name=$(syscall_name "$id")
		# The prctl(PR_SET_NAME) that ends the phase.
		if [ "$name" = prctl ] && [ "$marker" = 0 ]; then
			marker=1
			n=$((n - 1))
		fi
		[ "$n" -gt 0 ] || continue
		total=$((total + n))
		parts+=("$name $n")
	done <<<"$out"
	[ "$marker" = 1 ] || die "pubmodes $1: the end-of-phase marker was not counted"
	[ ${#parts[@]} -gt 0 ] || parts=("none")
	local joined
	joined=$(IFS=,; echo "${parts[*]}")
	echo "$total ${joined//,/, }"
}

on_guest()
{
	local kver loaded='' i label r b x out
	local -a rates ratios counts

	kver=$(uname -r)
	[ -x "$prog" ] || die "$prog is not built (make tools)"
	command -v bpftrace >/dev/null || die "bpftrace is not installed"
	if [ ! -c /dev/pcb ]; then
		insmod "$top/build/$kver/pcb.ko" || die "insmod build/$kver/pcb.ko"
		loaded=1
		for _ in $(seq 50); do [ -c /dev/pcb ] && break; sleep 0.1; done
	fi

	for ((i = 0; i < ${#modes[@]}; i++)); do
		ratios[i]=
		rates[i]=
	done
	for ((r = 1; r <= reps; r++)); do
		for ((i = 1; i < ${#modes[@]}; i++)); do
			if ((r % 2)); then
				b=$(rate_of "${modes[0]#*|}")
				x=$(rate_of "${modes[i]#*|}")
			else
				x=$(rate_of "${modes[i]#*|}")
				b=$(rate_of "${modes[0]#*|}")
			fi
			rates[0]+="$b "
			rates[i]+="$x "
			ratios[i]+="$(awk -v x="$x" -v b="$b" 'BEGIN { printf "%.4f", x / b }') "
			echo "pubmodes: timing $r/$reps: ${modes[i]%%|*}: $x vs $b" >&2
		done
	done
	for ((i = 0; i < ${#modes[@]}; i++)); do
		counts[i]=$(count_of "${modes[i]#*|}")
		echo "pubmodes: counted: ${modes[i]%%|*}" >&2
	done
	[ -z "$loaded" ] || rmmod pcb

	out=$outdir/$kver.md
	{
		echo "### Linux $kver"
		echo
		echo "$(date -u '+%Y-%m-%d %H:%M UTC'); $(nproc) vCPUs, $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1);" \
		     "${PCB_VM:+QEMU TCG guest; }$count messages of 64 bytes per run;" \
		     "$reps paired runs per mode; $(bpftrace --version)."
		echo
		echo "| mode | msgs/s vs ioctl, median | range | system calls / message | system calls counted (publishing thread) |"
		echo "|---|---:|---:|---:|---|"
		for ((i = 0; i < ${#modes[@]}; i++)); do
			label=${modes[i]%%|*}
			awk -v l="$label" -v r="${ratios[i]:-1 }" -v n="$count" \
			    -v c="${counts[i]}" 'BEGIN {
				k = split(r, v, " ");
				for (a = 1; a <= k; a++)	# insertion sort
					for (b = a; b > 1 && v[b - 1] + 0 > v[b] + 0; b--) {
						t = v[b]; v[b] = v[b - 1]; v[b - 1] = t }
				med = k % 2 ? v[(k + 1) / 2] : (v[k / 2] + v[k / 2 + 1]) / 2;
				split(c, f, " "); rest = c; sub(/^[0-9]+ /, "", rest);
				printf "| %s | %.2f | %.2f-%.2f | %.4f | %s |\n",
				       l, med, v[1], v[k], f[1] / n, rest }'
		done
		echo
		echo "Rates of every run (msgs/s; only ratios within a pair mean anything):"
		echo
		for ((i = 0; i < ${#modes[@]}; i++)); do
			echo "- ${modes[i]%%|*}: ${rates[i]% }"
		done
		echo
	} >"$out.tmp"
	mv "$out.tmp" "$out"
	cat "$out"
}

if [ -n "${PCB_VM:-}" ] || [ -n "$here_mode" ]; then
	mkdir -p "$outdir"
	on_guest
else
	on_host
fi
