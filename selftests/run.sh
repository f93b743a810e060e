#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Runs every pcb selftest binary next to this script (and compile_fail/run.sh
# when present) and prints one TAP stream in the kselftest runner's format:
# each program's own TAP output indented with "# ", then one "ok"/"not ok"
# line per program.  A program that outlives PCB_TEST_TIMEOUT seconds
# (default 300) is killed and reported as "not ok ... # TIMEOUT".
#
# PCB_TEST_ONLY and PCB_TEST_EXCLUDE (below) choose the programs.
#
# Works as root and as an unprivileged user (whose HOME may not exist): it
# writes nothing but its output.  Exits 0 when every program passed (skips
# count as passes), 1 otherwise.

cd "$(dirname "$0")" || exit 1

timeout_s=${PCB_TEST_TIMEOUT:-300}
# The nested harness output must not start a second TAP stream.
export KSFT_TAP_LEVEL=1

# Programs to leave out, by name, space-separated (default: none).
excluded=" ${PCB_TEST_EXCLUDE-} "
# Programs to run, by name, space-separated, in this order (default: all).
# A name given here that is not built is a failure, not a skip: a lane
# that names its tests must not lose one silently.
only=${PCB_TEST_ONLY-}

progs=()
if [[ -n ${only// } ]]; then
	for t in $only; do
		[[ $excluded == *" $t "* ]] && continue
		if [[ $t == compile_fail ]]; then
			progs+=(compile_fail/run.sh)
		else
			progs+=("./$t")
		fi
	done
else
	for t in ./*_test; do
		[[ $excluded == *" ${t#./} "* ]] && continue
		[[ -f $t && -x $t ]] && progs+=("$t")
	done
	[[ -x compile_fail/run.sh ]] && progs+=(compile_fail/run.sh)
fi

echo "TAP version 13"
echo "1..${#progs[@]}"

n=0
failed=0
for t in "${progs[@]}"; do
	n=$((n + 1))
	name=${t#./}
	if [[ ! -f $t || ! -x $t ]]; then
		echo "# selftests: pcb: $name (uid $(id -u))"
		echo "# $name: not built"
		echo "not ok $n selftests: pcb: $name # not built"
		failed=1
		continue
	fi
	start=$(date +%s%N)
	echo "# selftests: pcb: $name (uid $(id -u))"
	timeout --kill-after=10 "$timeout_s" "$t" 2>&1 | sed -u 's/^/# /'
	rc=${PIPESTATUS[0]}
	ms=$((($(date +%s%N) - start) / 1000000))
	time_s=$((ms / 1000)).$(printf '%03d' $((ms % 1000)))
	if [[ $rc -eq 0 ]]; then
		echo "ok $n selftests: pcb: $name # ${time_s}s"
	elif [[ $rc -eq 4 ]]; then
		echo "ok $n selftests: pcb: $name # SKIP ${time_s}s"
	elif [[ $rc -eq 124 || $rc -eq 137 ]]; then
		echo "not ok $n selftests: pcb: $name # TIMEOUT ${timeout_s} seconds"
		failed=1
	else
		echo "not ok $n selftests: pcb: $name # exit=$rc ${time_s}s"
		failed=1
	fi
done

exit $failed
