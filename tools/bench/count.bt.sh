#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Prints the bpftrace program that counts, for each measured run of
# pcb-bench, what happens per message.
#
# Usage: tools/bench/count.bt.sh PCB-BENCH [--stacks]
#
# A run is the interval between pcbb_steady(1) and pcbb_steady(0) in the
# pcb-bench binary (a uprobe on each); runs are numbered from 0 in the order
# they end, the order of "runs" in pcb-bench --json.  Every map is keyed by
# that number:
#   @sys_pub[run, id], @sys_sub[run, id]  system calls of the pcbb-pub* and
#                                         pcbb-sub* threads, by number
#   @kmalloc, @kmalloc_node, @kmem_cache_alloc, @kmem_cache_alloc_node,
#   @pages[run]                           allocations in the benchmark's
#                                         process (any of its threads,
#                                         io_uring's SQPOLL thread included)
#   @heap_hot[run]                        the heap allocations of those made
#                                         by pcbb-* and iou-sqp-* threads:
#                                         the hot path, not the set-up
#   @wake_sub[run]                        sched_wakeup of a pcbb-sub* thread
#   @pcb_wakeup[run]                      pcb:pcb_wakeup, any process
#   @stack_*[run, kstack]                 with --stacks: where they allocate
# The first uprobe hit of a process maps its out-of-line stepping area (or
# the uretprobe trampoline): that is the tracer's own allocation, a few
# kmalloc and kmem_cache_alloc calls by the thread that first calls
# pcbb_steady(1), counted in run 0; @heap_hot leaves it out.
# Tracepoints the running kernel lacks (the _node variants went away in
# 6.1) are left out.

set -euo pipefail

bin=${1:?usage: count.bt.sh PCB-BENCH [--stacks]}
stacks=
[ "${2:-}" = --stacks ] && stacks=1

tracefs=/sys/kernel/tracing
[ -d $tracefs/events ] || tracefs=/sys/kernel/debug/tracing

have() { [ -d "$tracefs/events/$1" ]; }

cat <<EOT
BEGIN { @on = 0; @run = 0; }

uprobe:$bin:pcbb_steady /pid == cpid/
{
	@on = arg0;
	if (arg0 == 0) {
		@run = @run + 1;
	}
}

tracepoint:raw_syscalls:sys_enter
/@on && pid == cpid && strncmp(comm, "pcbb-pub", 8) == 0/
{ @sys_pub[@run, args->id] = count(); }

tracepoint:raw_syscalls:sys_enter
/@on && pid == cpid && strncmp(comm, "pcbb-sub", 8) == 0/
{ @sys_sub[@run, args->id] = count(); }

tracepoint:sched:sched_wakeup
/@on && strncmp(args->comm, "pcbb-sub", 8) == 0/
{ @wake_sub[@run] = count(); }
EOT

if have pcb/pcb_wakeup; then
	cat <<EOT

tracepoint:pcb:pcb_wakeup /@on/ { @pcb_wakeup[@run] = count(); }
EOT
fi

for ev in kmalloc kmalloc_node kmem_cache_alloc kmem_cache_alloc_node mm_page_alloc; do
	have "kmem/$ev" || continue
	map=$ev
	[ $ev = mm_page_alloc ] && map=pages
	echo
	echo "tracepoint:kmem:$ev /@on && pid == cpid/"
	echo "{"
	echo "	@${map}[@run] = count();"
	[ -z "$stacks" ] || echo "	@stack_${map}[@run, comm, kstack(12)] = count();"
	[ $ev = mm_page_alloc ] ||
		echo "	if (strncmp(comm, \"pcbb-\", 5) == 0 || strncmp(comm, \"iou-sqp\", 7) == 0) { @heap_hot[@run] = count(); }"
	echo "}"
done

cat <<EOT

END { clear(@on); clear(@run); }
EOT
