/* SPDX-License-Identifier: GPL-2.0 */
/* What pcbtop's BPF program counts, shared with its userspace side. */
#ifndef PCBTOP_H
#define PCBTOP_H

#include <linux/types.h>

/* Topics tracked at once; the module's max_topics is far below this. */
#define PCBTOP_MAX_TOPICS	16384

/* The kernel's name buffer (PCB_NAME_MAX), NUL included. */
#define PCBTOP_NAME_MAX		64

/*
 * Latency buckets as in struct pcb_hist: bucket 0 counts 0 ns, bucket i
 * the values in [2^(i-1), 2^i), the last one everything above.
 */
#define PCBTOP_HIST_BUCKETS	40

/* Per topic and per CPU: the map is a per-CPU hash keyed by topic id. */
struct pcbtop_counts {
	__u64	published;
	__u64	bytes;
	__u64	delivered;
	__u64	rejected;
	__u64	dropped_full;
	__u64	dropped_broken;
	__u64	blocked;
	__u64	timeouts;
	__u64	wakeups;
	__u64	lat_sum_ns;
	__u64	lat[PCBTOP_HIST_BUCKETS];	/* pcb_publish's ns */
};

struct pcbtop_name {
	char	name[PCBTOP_NAME_MAX];
};

#endif /* PCBTOP_H */
