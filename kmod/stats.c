// SPDX-License-Identifier: GPL-2.0
/*
 * Statistics: per-CPU counters and latency histograms, per topic and for
 * the whole bus, summed when someone asks (PCB_IOC_STATS, /proc/pcb).
 *
 * A publish adds to its CPU's copies only, with preemption disabled, so no
 * cache line is shared between CPUs for the sake of counting.  Readers sum
 * the copies without stopping anyone: a sum may miss the very last adds.
 *
 * A topic's figures are its traffic: only those who may see it (its owner,
 * its readers, CAP_IPC_OWNER) get them, alone or through the bus's totals.
 */
#include <linux/capability.h>
#include <linux/log2.h>
#include <linux/percpu.h>
#include <linux/slab.h>
#include <linux/uaccess.h>

#include "internal.h"

struct pcb_cpu_stats {
	u64 counters[PCB_NR_COUNTERS];
	u64 hist_count;
	u64 hist_sum;
	u64 hist_max;
	u64 buckets[PCB_HIST_BUCKETS];
};

struct pcb_cpu_stats __percpu *pcb_stats_alloc(void)
{
	return alloc_percpu_gfp(struct pcb_cpu_stats, GFP_KERNEL_ACCOUNT);
}

void pcb_stats_free(struct pcb_cpu_stats __percpu *stats)
{
	free_percpu(stats);
}

static unsigned int hist_bucket(u64 ns)
{
	return min_t(unsigned int, fls64(ns), PCB_HIST_BUCKETS - 1);
}

/* Only the counters a publish moves: the fates, messages and bytes. */
static void cpu_stats_publish(struct pcb_cpu_stats *s, const u32 *fates,
			      u64 nr, u64 bytes, u64 cost_ns)
{
	unsigned int i;

	/* The fates are the first counters: see enum pcb_fate. */
	for (i = 0; i <= PCB_FATE_SKIP; i++)
		s->counters[i] += fates[i];
	s->counters[PCB_CNT_PUBLISHED] += nr;
	s->counters[PCB_CNT_BYTES] += bytes;
	s->hist_count++;
	s->hist_sum += cost_ns;
	s->hist_max = max(s->hist_max, cost_ns);
	s->buckets[hist_bucket(cost_ns)]++;
}

/*
 * After a publish of @nr messages of @bytes to @t: the subscriptions by
 * fate (@fates, indexed by enum pcb_fate), and @cost_ns for the
 * histogram, to @t's and the bus's figures.
 */
void pcb_stats_publish(struct pcb_topic *t, const u32 *fates, u64 nr,
		       u64 bytes, u64 cost_ns)
{
	struct pcb_cpu_stats __percpu *stats;
	struct pcb_cpu_stats *s;

	rcu_read_lock();	/* a deleted topic's go a grace period later */
	stats = pcb_topic_stats(t);
	s = get_cpu_ptr(t->bus->stats);
	if (stats)
		cpu_stats_publish(this_cpu_ptr(stats), fates, nr, bytes,
				  cost_ns);
	cpu_stats_publish(s, fates, nr, bytes, cost_ns);
	put_cpu_ptr(t->bus->stats);
	rcu_read_unlock();
}

/* One counter, one event, no histogram. */
void pcb_stats_inc(struct pcb_topic *t, enum pcb_counter c)
{
	struct pcb_cpu_stats __percpu *stats;

	rcu_read_lock();
	stats = pcb_topic_stats(t);
	if (stats)
		this_cpu_inc(stats->counters[c]);
	this_cpu_inc(t->bus->stats->counters[c]);
	rcu_read_unlock();
}

static void stats_sum(struct pcb_cpu_stats __percpu *stats, struct pcb_stats *out)
{
	u64 *dst[PCB_NR_COUNTERS] = {
		[PCB_CNT_PUBLISHED] = &out->published,
		[PCB_CNT_BYTES] = &out->bytes,
		[PCB_CNT_DELIVERED] = &out->delivered,
		[PCB_CNT_DROPPED_FULL] = &out->dropped_full,
		[PCB_CNT_DROPPED_BROKEN] = &out->dropped_broken,
		[PCB_CNT_REJECTED] = &out->rejected,
		[PCB_CNT_BLOCKED] = &out->blocked,
		[PCB_CNT_TIMEOUTS] = &out->timeouts,
		[PCB_CNT_WOULD_BLOCK] = &out->would_block,
		[PCB_CNT_WAKEUPS] = &out->wakeups,
	};
	struct pcb_hist *h = &out->publish_ns;
	unsigned int i;
	int cpu;

	for_each_possible_cpu(cpu) {
		const struct pcb_cpu_stats *s = per_cpu_ptr(stats, cpu);

		for (i = 0; i < PCB_NR_COUNTERS; i++)
			*dst[i] += READ_ONCE(s->counters[i]);
		h->count += READ_ONCE(s->hist_count);
		h->sum_ns += READ_ONCE(s->hist_sum);
		h->max_ns = max(h->max_ns, READ_ONCE(s->hist_max));
		for (i = 0; i < PCB_HIST_BUCKETS; i++)
			h->buckets[i] += READ_ONCE(s->buckets[i]);
	}
}

static void ring_fill(struct pcb_ring *ring, struct pcb_stats *out)
{
	u64 used = pcb_ring_used_now(ring);

	out->ring_used += used;
	out->ring_size += ring->size;
	out->ring_fill_max = max_t(u32, out->ring_fill_max,
				   div_u64(used * 1000, ring->size));
}

/* Add @t's figures to @out.  Caller holds bus->lock: @t is live. */
static void topic_stats_add(struct pcb_topic *t, struct pcb_stats *out)
{
	struct pcb_sub *sub;

	out->nr_subscriptions += READ_ONCE(t->nr_subs);
	/* The list changes under bus->lock only, which we hold. */
	list_for_each_entry(sub, &t->subs, topic_node)
		ring_fill(sub->ring, out);
	stats_sum(t->stats, out);
}

/* Caller holds bus->lock. */
static int topic_stats(struct pcb_topic *t, struct pcb_stats *out)
{
	if (!pcb_topic_may_see(t))
		return -EACCES;
	out->topic_id = t->id;
	out->nr_topics = 1;
	topic_stats_add(t, out);
	return 0;
}

/*
 * The bus's own figures for those who may see every topic; for anyone
 * else the sums over the topics they may see.  Caller holds bus->lock.
 */
static void bus_stats(struct pcb_bus *bus, struct pcb_stats *out)
{
	struct pcb_endpoint *ep;
	struct pcb_topic *t;
	unsigned long id;

	out->nr_topics = bus->nr_topics;
	if (!ns_capable_noaudit(bus->user_ns, CAP_IPC_OWNER)) {
		out->flags |= PCB_STATS_PARTIAL;
		xa_for_each(&bus->topics, id, t)
			if (pcb_topic_may_see(t))
				topic_stats_add(t, out);
		return;
	}
	xa_for_each(&bus->topics, id, t)
		out->nr_subscriptions += READ_ONCE(t->nr_subs);
	list_for_each_entry(ep, &bus->endpoints, bus_node)
		if (pcb_ep_ring(ep))
			ring_fill(pcb_ep_ring(ep), out);
	stats_sum(bus->stats, out);
}

static int check_stats_query(const struct pcb_stats_query *q)
{
	if (q->flags || q->reserved0 || q->reserved[0] || q->reserved[1] ||
	    q->size < PCB_STATS_SIZE_V1 || q->size > PCB_STATS_SIZE_MAX)
		return -EINVAL;
	return 0;
}

int pcb_stats_ioctl(struct pcb_bus *bus, void __user *arg)
{
	struct pcb_stats_query q;
	struct pcb_stats *out;
	struct pcb_topic *t;
	u32 size;
	int ret = 0;

	BUILD_BUG_ON(sizeof(struct pcb_stats) != PCB_STATS_SIZE_V1);
	if (copy_from_user(&q, arg, sizeof(q)))
		return -EFAULT;
	ret = check_stats_query(&q);
	if (ret)
		return ret;
	out = kzalloc(sizeof(*out), GFP_KERNEL);
	if (!out)
		return -ENOMEM;
	out->version = PCB_STATS_VERSION;
	out->clock = pcb_clock;
	out->tsc_khz = pcb_clock_khz;

	mutex_lock(&bus->lock);
	if (!q.topic_id) {
		bus_stats(bus, out);
	} else {
		t = xa_load(&bus->topics, q.topic_id);
		ret = t ? topic_stats(t, out) : -ENOENT;
	}
	mutex_unlock(&bus->lock);
	if (ret)
		goto out;

	/* What we know, then zeroes for what a later version would say. */
	size = min_t(u32, q.size, sizeof(*out));
	if (copy_to_user(u64_to_user_ptr(q.stats), out, size) ||
	    clear_user(u64_to_user_ptr(q.stats) + size, q.size - size))
		ret = -EFAULT;
	q.size = size;
	if (!ret && copy_to_user(arg, &q, sizeof(q)))
		ret = -EFAULT;
out:
	kfree(out);
	return ret;
}
