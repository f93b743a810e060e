/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Tracepoints of the bus: pcb:*.  Every field is a scalar or the topic
 * name; callers compute anything costly only when the event is enabled
 * (trace_pcb_*_enabled()).  Times are in nanoseconds.
 */
#undef TRACE_SYSTEM
#define TRACE_SYSTEM pcb

#if !defined(_PCB_TRACE_H) || defined(TRACE_HEADER_MULTI_READ)
#define _PCB_TRACE_H

#include <linux/tracepoint.h>

#include "compat.h"
#include "internal.h"

/* A message accepted: @ns from entry into the kernel to the last commit. */
TRACE_EVENT(pcb_publish,
	    TP_PROTO(const struct pcb_topic *t, const struct pcb_pub *pub, u64 ns),
	    TP_ARGS(t, pub, ns),
	    TP_STRUCT__entry(__field(u32, topic_id)
			     __string(topic, t->name)
			     __field(u64, msg_id)
			     __field(u64, seq)
			     __field(u32, len)
			     __field(u16, nr_deps)
			     __field(u64, key)
			     __field(u32, delivered)
			     __field(u64, cycles)
			     __field(u64, ns)),
	    TP_fast_assign(__entry->topic_id = t->id;
			   pcb_assign_str(topic, t->name);
			   __entry->msg_id = pub->msg_id;
			   __entry->seq = pub->seq;
			   __entry->len = pub->msg.len;
			   __entry->nr_deps = pub->nr_deps;
			   __entry->key = pub->msg.key;
			   __entry->delivered = pub->fates[PCB_FATE_WRITE];
			   __entry->cycles = pub->commit_ts - pub->tsc;
			   __entry->ns = ns;),
	    TP_printk("topic=%u name=%s msg_id=%llu seq=%llu len=%u deps=%u key=%llu delivered=%u cycles=%llu ns=%llu",
		      __entry->topic_id, __get_str(topic), __entry->msg_id,
		      __entry->seq, __entry->len, __entry->nr_deps, __entry->key,
		      __entry->delivered, __entry->cycles, __entry->ns));

/* Tell tracers outside the kernel the names of the reason values. */
TRACE_DEFINE_ENUM(PCB_FATE_WRITE);
TRACE_DEFINE_ENUM(PCB_FATE_REJECT);
TRACE_DEFINE_ENUM(PCB_FATE_MISS);
TRACE_DEFINE_ENUM(PCB_FATE_SKIP);

/* One subscription and one message: delivered, filtered out, dropped. */
DECLARE_EVENT_CLASS(pcb_sub_msg,
		    TP_PROTO(const struct pcb_topic *t, u64 ep_id,
			     enum pcb_fate fate, const struct pcb_pub *pub,
			     u64 ns),
		    TP_ARGS(t, ep_id, fate, pub, ns),
		    TP_STRUCT__entry(__field(u32, topic_id)
				     __string(topic, t->name)
				     __field(u64, endpoint)
				     __field(u64, msg_id)
				     __field(u64, seq)
				     __field(u32, len)
				     __field(u32, reason)
				     __field(u64, ns)),
		    TP_fast_assign(__entry->topic_id = t->id;
				   pcb_assign_str(topic, t->name);
				   __entry->endpoint = ep_id;
				   __entry->msg_id = pub->msg_id;
				   __entry->seq = pub->seq;
				   __entry->len = pub->msg.len;
				   __entry->reason = fate;
				   __entry->ns = ns;),
		    TP_printk("topic=%u name=%s endpoint=%llu msg_id=%llu seq=%llu len=%u reason=%s ns=%llu",
			      __entry->topic_id, __get_str(topic), __entry->endpoint,
			      __entry->msg_id, __entry->seq, __entry->len,
			      __print_symbolic(__entry->reason,
					       { PCB_FATE_WRITE, "delivered" },
					       { PCB_FATE_REJECT, "filtered" },
					       { PCB_FATE_MISS, "full" },
					       { PCB_FATE_SKIP, "broken" }),
			      __entry->ns));

/* @ns: from entry into the kernel to this commit. */
DEFINE_EVENT(pcb_sub_msg, pcb_deliver,
	     TP_PROTO(const struct pcb_topic *t, u64 ep_id, enum pcb_fate fate,
		      const struct pcb_pub *pub, u64 ns),
	     TP_ARGS(t, ep_id, fate, pub, ns));

/* reason: full (lossy ring) or broken; ns is 0. */
DEFINE_EVENT(pcb_sub_msg, pcb_drop,
	     TP_PROTO(const struct pcb_topic *t, u64 ep_id, enum pcb_fate fate,
		      const struct pcb_pub *pub, u64 ns),
	     TP_ARGS(t, ep_id, fate, pub, ns));

/* ns is 0. */
DEFINE_EVENT(pcb_sub_msg, pcb_filter_reject,
	     TP_PROTO(const struct pcb_topic *t, u64 ep_id, enum pcb_fate fate,
		      const struct pcb_pub *pub, u64 ns),
	     TP_ARGS(t, ep_id, fate, pub, ns));

/* A publisher waits for room (@ns 0), or gave up after @ns (timeout). */
DECLARE_EVENT_CLASS(pcb_wait,
		    TP_PROTO(const struct pcb_topic *t, u32 len, u64 ns),
		    TP_ARGS(t, len, ns),
		    TP_STRUCT__entry(__field(u32, topic_id)
				     __string(topic, t->name)
				     __field(u32, len)
				     __field(u64, ns)),
		    TP_fast_assign(__entry->topic_id = t->id;
				   pcb_assign_str(topic, t->name);
				   __entry->len = len;
				   __entry->ns = ns;),
		    TP_printk("topic=%u name=%s len=%u ns=%llu", __entry->topic_id,
			      __get_str(topic), __entry->len, __entry->ns));

DEFINE_EVENT(pcb_wait, pcb_block,
	     TP_PROTO(const struct pcb_topic *t, u32 len, u64 ns),
	     TP_ARGS(t, len, ns));

DEFINE_EVENT(pcb_wait, pcb_timeout,
	     TP_PROTO(const struct pcb_topic *t, u32 len, u64 ns),
	     TP_ARGS(t, len, ns));

/* A subscription made or gone, with its counters when it goes. */
DECLARE_EVENT_CLASS(pcb_sub_change,
		    TP_PROTO(const struct pcb_sub *sub),
		    TP_ARGS(sub),
		    TP_STRUCT__entry(__field(u32, topic_id)
				     __string(topic, sub->topic->name)
				     __field(u64, endpoint)
				     __field(u32, flags)
				     __field(u32, nr_preds)
				     __field(u32, ring_size)
				     __field(u64, delivered)
				     __field(u64, dropped)
				     __field(u64, rejected)),
		    TP_fast_assign(__entry->topic_id = sub->topic->id;
				   pcb_assign_str(topic, sub->topic->name);
				   __entry->endpoint = sub->ep_id;
				   __entry->flags = sub->flags;
				   __entry->nr_preds = pcb_filter_nr_preds(pcb_sub_filter(sub));
				   __entry->ring_size = sub->ring->size;
				   __entry->delivered = sub->delivered;
				   __entry->dropped = sub->dropped;
				   __entry->rejected = sub->rejected;),
		    TP_printk("topic=%u name=%s endpoint=%llu flags=%#x preds=%u ring=%u delivered=%llu dropped=%llu rejected=%llu",
			      __entry->topic_id, __get_str(topic), __entry->endpoint,
			      __entry->flags, __entry->nr_preds, __entry->ring_size,
			      __entry->delivered, __entry->dropped, __entry->rejected));

DEFINE_EVENT(pcb_sub_change, pcb_subscribe,
	     TP_PROTO(const struct pcb_sub *sub),
	     TP_ARGS(sub));

DEFINE_EVENT(pcb_sub_change, pcb_unsubscribe,
	     TP_PROTO(const struct pcb_sub *sub),
	     TP_ARGS(sub));

/* A publish of @seq woke the consumer of endpoint @ep_id's ring. */
TRACE_EVENT(pcb_wakeup,
	    TP_PROTO(const struct pcb_topic *t, u64 ep_id, u64 seq),
	    TP_ARGS(t, ep_id, seq),
	    TP_STRUCT__entry(__field(u32, topic_id)
			     __string(topic, t->name)
			     __field(u64, endpoint)
			     __field(u64, seq)),
	    TP_fast_assign(__entry->topic_id = t->id;
			   pcb_assign_str(topic, t->name);
			   __entry->endpoint = ep_id;
			   __entry->seq = seq;),
	    TP_printk("topic=%u name=%s endpoint=%llu seq=%llu", __entry->topic_id,
		      __get_str(topic), __entry->endpoint, __entry->seq));

#endif /* _PCB_TRACE_H */

/* Out of the kernel tree: the header is found through -I, as ./trace.h. */
#undef TRACE_INCLUDE_PATH
#define TRACE_INCLUDE_PATH .
#undef TRACE_INCLUDE_FILE
#define TRACE_INCLUDE_FILE trace
#include <trace/define_trace.h>
