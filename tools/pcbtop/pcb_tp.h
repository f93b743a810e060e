/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The records of the pcb:* tracepoints as the kernel lays them out, shared
 * by the BPF program and pcbtop.
 *
 * A module's tracepoint records are described by its BTF, which cannot be
 * generated against Debian's kernel headers, and never by vmlinux.h.  So
 * these structs are written from the format files
 * (/sys/kernel/tracing/events/pcb/EVENT/format), which are the same on
 * every kernel the module builds for; pcbtop compares them with the
 * running kernel's format files before it loads anything (see
 * tp_check_formats() in pcbtop.c), so a module whose events changed is
 * refused rather than misread.
 */
#ifndef PCB_TP_H
#define PCB_TP_H

#include <linux/types.h>

/* The fields every trace event record starts with. */
struct pcb_tp_common {
	__u16	common_type;
	__u8	common_flags;
	__u8	common_preempt_count;
	__s32	common_pid;
};

/*
 * A __data_loc field: the string lies at (loc & 0xffff) bytes from the
 * start of the record, (loc >> 16) bytes long with its NUL.
 */
#define PCB_TP_LOC_OFFSET(loc)	((loc) & 0xffff)

/* pcb:pcb_publish */
struct pcb_tp_publish {
	struct pcb_tp_common common;
	__u32	topic_id;
	__u32	topic;		/* __data_loc char[] */
	__u64	msg_id;
	__u64	seq;
	__u32	len;
	__u16	nr_deps;
	__u64	key;
	__u32	delivered;
	__u64	cycles;
	__u64	ns;		/* entry into the kernel to the last commit */
};

/* pcb:pcb_deliver, pcb:pcb_drop, pcb:pcb_filter_reject */
struct pcb_tp_sub_msg {
	struct pcb_tp_common common;
	__u32	topic_id;
	__u32	topic;
	__u64	endpoint;
	__u64	msg_id;
	__u64	seq;
	__u32	len;
	__u32	reason;		/* PCB_TP_FATE_* */
	__u64	ns;		/* deliver: entry into the kernel to this commit */
};

/* reason: the module's enum pcb_fate. */
#define PCB_TP_FATE_DELIVERED	0
#define PCB_TP_FATE_FILTERED	1
#define PCB_TP_FATE_FULL	2
#define PCB_TP_FATE_BROKEN	3

/* pcb:pcb_block, pcb:pcb_timeout */
struct pcb_tp_wait {
	struct pcb_tp_common common;
	__u32	topic_id;
	__u32	topic;
	__u32	len;
	__u64	ns;		/* timeout: how long the publisher waited */
};

/* pcb:pcb_subscribe, pcb:pcb_unsubscribe */
struct pcb_tp_sub_change {
	struct pcb_tp_common common;
	__u32	topic_id;
	__u32	topic;
	__u64	endpoint;
	__u32	flags;
	__u32	nr_preds;
	__u32	ring_size;
	__u64	delivered;
	__u64	dropped;
	__u64	rejected;
};

/* pcb:pcb_wakeup */
struct pcb_tp_wakeup {
	struct pcb_tp_common common;
	__u32	topic_id;
	__u32	topic;
	__u64	endpoint;
	__u64	seq;
};

#endif /* PCB_TP_H */
