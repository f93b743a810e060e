/* SPDX-License-Identifier: GPL-2.0 */
/*
 * pcb internals shared by the module's files.
 *
 * Locking, outermost first:
 *
 *   pcb_buses_lock (mutex)  the list of buses and their use counts (bus.c)
 *   pcb_bus.lock (mutex)    the topic namespace and every subscription list
 *                           change (subscribe, unsubscribe, topic delete,
 *                           endpoint release)
 *   pcb_topic.lock (spin)   one publish of the topic at a time: sequence
 *                           numbers, ids and ring reservations of a topic
 *                           are made in one order; also held to add or
 *                           remove a subscription, or to change its filter
 *                           or read its counters, so that a publish sees a
 *                           stable list, and one filter per subscription,
 *                           through all its passes.  What it covers is
 *                           bounded by the topic's subscriptions (module
 *                           parameter max_subscribers), never by a size
 *                           or count a user chooses: README.md states the
 *                           worst case
 *   pcb_ring.lock (spin)    reservations in one ring (prod_pos, pending),
 *                           its header flags and drop counter; leaf lock
 *   pcb_acct_lock (spin)    users and their quota counts (limits.c); leaf,
 *                           process context only (never from RCU callbacks)
 *   pcb_endpoint.restart_lock (spin)  the endpoint's restart slots; leaf
 *
 * RCU protects what is read without those locks: the handle table lookup
 * of a topic, the topic's subscription list walked for wake-ups after the
 * topic lock is dropped and by atomic batches to run filters before it is
 * taken, a subscription's filter, a topic's statistics (gone at delete),
 * and the endpoint's subscription list walked by NOTIFY.  Topics,
 * subscriptions, filters and endpoints are freed after a grace period,
 * rings through an rcu_work once their last reference is dropped.
 */
#ifndef _PCB_INTERNAL_H
#define _PCB_INTERNAL_H

#include <linux/hashtable.h>
#include <linux/ktime.h>
#include <linux/list.h>
#include <linux/mm.h>
#include <linux/mutex.h>
#include <linux/refcount.h>
#include <linux/slab.h>
#include <linux/spinlock.h>
#include <linux/types.h>
#include <linux/uaccess.h>
#include <linux/uidgid.h>
#include <linux/wait.h>
#include <linux/workqueue.h>
#include <linux/xarray.h>
#include <linux/pcb.h>
#include <asm/tsc.h>

struct file;
struct ipc_namespace;
struct pid_namespace;
struct seq_file;
struct user_namespace;
struct user_struct;
struct vm_area_struct;

/* The largest record header: PCB_MAX_DEPS dependencies. */
#define PCB_REC_HDR_MAX	(sizeof(struct pcb_record) + PCB_MAX_DEPS * sizeof(u64))

/*
 * Payloads up to this size are copied on the stack and written into every
 * ring under the topic lock; larger ones are copied into the heap and
 * written after the lock is dropped.  Bounds the work under the lock to
 * max_subscribers records of this size.
 */
#define PCB_PAYLOAD_INLINE	256

/* Module parameters (main.c). */
extern unsigned int pcb_max_topics;
extern unsigned int pcb_max_subscribers;
extern unsigned int pcb_max_msg_size;
extern unsigned int pcb_max_ring_size;
extern unsigned int pcb_max_endpoints;
extern unsigned int pcb_max_endpoints_per_user;
extern unsigned int pcb_max_subscriptions_per_user;
extern unsigned int pcb_max_handles_per_user;
extern unsigned int pcb_max_buses_per_user;

extern struct workqueue_struct *pcb_wq;

/* clock.c: the bus clock, PCB_CLOCK_*, chosen at load. */
extern u32 pcb_clock;
extern u32 pcb_clock_khz;
int pcb_clock_init(void);
u64 pcb_clock_ns(u64 delta);

static inline u64 pcb_clock_now(void)
{
	return pcb_clock == PCB_CLOCK_TSC ? rdtsc_ordered() : ktime_get_ns();
}

/*
 * CLOCK_REALTIME at the moment of @now, a pcb_clock_now() reading: without
 * reading a clock again where the bus clock is CLOCK_MONOTONIC (the
 * offset alone), with one where it is the TSC.
 */
static inline u64 pcb_clock_real(u64 now)
{
	return pcb_clock == PCB_CLOCK_TSC ? ktime_get_real_ns() :
	       ktime_mono_to_real(now);
}

/* stats.c: what is counted, per topic and for the bus. */
enum pcb_counter {
	PCB_CNT_DELIVERED,		/* first four: by enum pcb_fate */
	PCB_CNT_REJECTED,
	PCB_CNT_DROPPED_FULL,
	PCB_CNT_DROPPED_BROKEN,
	PCB_CNT_PUBLISHED,
	PCB_CNT_BYTES,
	PCB_CNT_BLOCKED,
	PCB_CNT_TIMEOUTS,
	PCB_CNT_WOULD_BLOCK,
	PCB_CNT_WAKEUPS,
	PCB_NR_COUNTERS
};

struct pcb_cpu_stats;

/* One per IPC namespace. */
struct pcb_bus {
	struct list_head node;		/* pcb_buses, under pcb_buses_lock */
	unsigned int users;		/* endpoints and readers, same lock */
	struct ipc_namespace *ipc_ns;	/* a reference */
	struct user_namespace *user_ns;	/* owns @ipc_ns: ids and rights */
	struct pcb_user *creator;	/* charged for it until it is freed */
	struct mutex lock;		/* see the locking table above */
	DECLARE_HASHTABLE(names, 8);	/* name -> topic, under @lock */
	struct xarray topics;		/* id -> topic, under @lock; RCU */
	u32 next_topic_id;		/* cyclic allocation, under @lock */
	unsigned int nr_topics;		/* under @lock */
	struct list_head endpoints;	/* every endpoint, under @lock */
	u64 next_ep_id;			/* under @lock */
	u64 next_sub_id;		/* under @lock */
	struct pcb_cpu_stats __percpu *stats;
	/*
	 * The bus's hybrid logical clock: the last message id handed out.
	 * Every publish of the bus writes it, so it has its cache line.
	 */
	atomic64_t hlc_last ____cacheline_aligned_in_smp;
};

struct pcb_ring {
	struct pcb_ring_consumer *cons;	/* userspace-writable: hostile */
	struct user_struct *memlock_user; /* charged for @nr_pages, or NULL */
	struct pcb_ring_header *hdr;
	void *data;			/* data area, mapped twice in a row */
	u32 size;
	u32 mask;
	refcount_t ref;			/* the endpoint, writers after the lock */
	u64 ep_id;			/* its endpoint's, for tracing */
	/* Whose view records give of their publishers (RING_SETUP's caller). */
	struct pid_namespace *pid_ns;
	struct user_namespace *user_ns;
	spinlock_t lock;		/* see the locking table above */
	u64 prod;			/* kernel copy of hdr->prod_pos */
	u64 pending;			/* oldest record not committed, or prod */
	u64 cons_seen;			/* the consumer position last found valid */
	wait_queue_head_t data_wq;	/* consumers waiting for records */
	void *vaddr;
	struct page **pages;
	unsigned int nr_pages;
	struct rcu_work free_work;
};

struct pcb_topic {
	refcount_t ref;
	struct pcb_bus *bus;		/* outlives it while anyone publishes */
	struct pcb_user *creator;	/* charged and held while it is named */
	u32 id;
	char name[PCB_NAME_MAX];
	u64 schema_id;
	u32 max_msg_size;
	u32 flags;
	umode_t mode;
	kuid_t uid;
	kgid_t gid;
	struct hlist_node name_node;	/* bus->names, under bus->lock */
	struct rcu_head rcu;
	/*
	 * RCU: cleared at delete, freed a grace period later (through
	 * @stats_rcu and @dead_stats), so that a deleted topic kept by publish
	 * handles holds no per-CPU memory.  Read it with pcb_topic_stats().
	 */
	struct pcb_cpu_stats __percpu *stats;
	struct pcb_cpu_stats __percpu *dead_stats;
	struct rcu_head stats_rcu;

	/* Publish side, written under @lock. */
	spinlock_t lock ____cacheline_aligned_in_smp;
	u64 seq;
	/*
	 * Moves when a subscription comes or a filter changes: an atomic
	 * batch that took its snapshot before sees it has to take it again.
	 */
	u64 subs_gen;
	bool dead;			/* deleted; also read under RCU */
	struct list_head subs;		/* RCU list; see the locking table */
	unsigned int nr_subs;
	/*
	 * Publishers that found a reliable ring full sleep on @space_wq until
	 * @space_gen moves: NOTIFY from a consumer, an unsubscribe or the
	 * topic's deletion bump it (with WRITE_ONCE, then wake_up).
	 */
	wait_queue_head_t space_wq;
	atomic_long_t space_gen;
};

/* What one publish does with one subscription; indexes enum pcb_counter. */
enum pcb_fate {
	PCB_FATE_WRITE = PCB_CNT_DELIVERED,	/* a record goes into the ring */
	PCB_FATE_REJECT = PCB_CNT_REJECTED,	/* the filter does not want it */
	PCB_FATE_MISS = PCB_CNT_DROPPED_FULL,	/* lossy and full: a drop */
	PCB_FATE_SKIP = PCB_CNT_DROPPED_BROKEN,	/* the ring is broken */
};

struct pcb_sub {
	struct pcb_topic *topic;	/* holds a reference */
	struct pcb_ring *ring;		/* owned by @ep */
	struct pcb_endpoint *ep;	/* whose ring it is; not under RCU */
	u64 ep_id;			/* @ep's id, for RCU readers */
	u64 id;				/* unique on the bus, rising in list order */
	u32 flags;			/* PCB_SUB_* */
	struct list_head topic_node;	/* topic->subs */
	struct list_head ep_node;	/* endpoint->subs */
	struct rcu_head rcu;
	/*
	 * The filter, or NULL.  Replaced under topic->lock, so a publish uses
	 * one filter from its first pass to its last; atomic batches read it
	 * under RCU, with a reference, before taking the lock.  Read it with
	 * pcb_sub_filter().
	 */
	struct pcb_filter_prog __rcu *filter;
	/* Counters (struct pcb_sub_info), under topic->lock. */
	u64 delivered;
	u64 dropped;
	u64 rejected;
	/*
	 * Sequence number of the topic's last message written to the ring,
	 * under topic->lock; read locklessly by the wake-ups that follow a
	 * publish, to leave alone a consumer that got nothing.
	 */
	u64 last_seq;
	/* State of the publish in progress, valid under topic->lock only. */
	struct pcb_record *resv;
	enum pcb_fate fate;
	u16 run_accept;			/* a run's messages the filter takes */
	u32 run_bytes;			/* the bytes of their records */
};

/*
 * The deadline of a call that returned only to let its task run io_uring's
 * task work, for the call's restart to take back (pcb_call_begin()).
 */
struct pcb_restart {
	const struct task_struct *task;	/* compared, never dereferenced */
	u64 start_time;			/* of @task: tells a reused address */
	unsigned long stamp;		/* jiffies when left; stale after a while */
	unsigned int cmd;
	const void __user *arg;
	u64 timeout_ns;			/* as the call was given it */
	ktime_t deadline;
};

#define PCB_RESTARTS	8	/* per endpoint: its threads restarting at once */

/* A call that may wait, and its deadline (0: none). */
struct pcb_call {
	unsigned int cmd;
	const void __user *arg;
	u64 timeout_ns;
	ktime_t deadline;
};

struct pcb_endpoint {
	struct pcb_bus *bus;		/* a use of it */
	struct pcb_user *user;		/* charged for it and its subscriptions */
	u64 id;				/* for /proc and tracing, never reused */
	struct pid *owner;		/* the process that opened it */
	struct list_head bus_node;	/* bus->endpoints, under bus->lock */
	struct mutex ring_lock;		/* serializes RING_SETUP */
	/* Set once under @ring_lock (store-release, read with acquire). */
	struct pcb_ring *ring;
	struct xarray handles;		/* handle -> topic (a reference) */
	struct list_head subs;		/* RCU list, changed under bus->lock */
	spinlock_t restart_lock;	/* guards the three below */
	unsigned int nr_restarts;	/* live ones; read without the lock */
	unsigned int restart_next;	/* the slot to take when none is free */
	struct pcb_restart restarts[PCB_RESTARTS];
	/* A plain batch's working memory, kept for the next (batch.c). */
	struct pcb_batch_block *batch_block;
	struct rcu_head rcu;
};

/* The endpoint's ring, or NULL before RING_SETUP. */
static inline struct pcb_ring *pcb_ep_ring(struct pcb_endpoint *ep)
{
	/* Pairs with the store-release in ring_setup(). */
	return smp_load_acquire(&ep->ring);
}

/* bus.c */
struct pcb_bus *pcb_bus_get(bool create);
void pcb_bus_put(struct pcb_bus *bus);
bool pcb_buses_reap(void);
void pcb_buses_destroy_all(void);
u64 pcb_hlc_next_n(struct pcb_bus *bus, u32 n, u64 now, u64 floor);
int pcb_hlc_check_deps(struct pcb_bus *bus, const u64 *deps, u32 nr, u64 *max);

/* topic.c */
int pcb_topic_create(struct pcb_bus *bus, void __user *arg);
int pcb_topic_delete(struct pcb_bus *bus, void __user *arg);
int pcb_topic_info(struct pcb_bus *bus, void __user *arg);
int pcb_topic_list(struct pcb_bus *bus, void __user *arg);
struct pcb_topic *pcb_topic_find(struct pcb_bus *bus, const char *name);
bool pcb_topic_permitted(const struct pcb_topic *t, int mask);
bool pcb_topic_may_see(const struct pcb_topic *t);
void pcb_topic_get(struct pcb_topic *t);
void pcb_topic_put(struct pcb_topic *t);
void pcb_topic_kick_publishers(struct pcb_topic *t);
void pcb_topic_destroy_all(struct pcb_bus *bus);
int pcb_check_name(const char *name);

/* The topic's statistics, NULL once deleted; under RCU or topic->lock. */
static inline struct pcb_cpu_stats __percpu *
pcb_topic_stats(const struct pcb_topic *t)
{
	return READ_ONCE(t->stats);
}

/* endpoint.c */
extern const struct file_operations pcb_fops;

/* subscribe.c */
int pcb_subscribe(struct pcb_endpoint *ep, void __user *arg);
int pcb_unsubscribe(struct pcb_endpoint *ep, void __user *arg);
int pcb_set_filter(struct pcb_endpoint *ep, void __user *arg);
int pcb_sub_info(struct pcb_endpoint *ep, void __user *arg);
void pcb_sub_unlink(struct pcb_sub *sub);
void pcb_endpoint_unsubscribe_all(struct pcb_endpoint *ep);
void pcb_endpoint_notify(struct pcb_endpoint *ep);
struct pcb_filter_prog *pcb_sub_filter(const struct pcb_sub *sub);

/* ring.c */
struct pcb_ring *pcb_ring_create(u32 data_size);
void pcb_ring_get(struct pcb_ring *ring);
void pcb_ring_put(struct pcb_ring *ring);
int pcb_ring_mmap(struct pcb_ring *ring, struct vm_area_struct *vma);
struct pcb_record *pcb_ring_reserve(struct pcb_ring *ring, u32 len,
				    bool mark_waiting);
void pcb_ring_commit(struct pcb_record *rec, u32 len);
void pcb_ring_discard(struct pcb_ring *ring, struct pcb_record *rec, u32 len);
bool pcb_ring_has_room(struct pcb_ring *ring, u64 need, bool mark_waiting);
bool pcb_ring_is_broken(const struct pcb_ring *ring);
bool pcb_ring_readable(struct pcb_ring *ring);
void pcb_ring_count_drops(struct pcb_ring *ring, u64 n);
bool pcb_ring_wake_consumer(struct pcb_ring *ring);
bool pcb_ring_wake_consumer_after_mb(struct pcb_ring *ring);
bool pcb_ring_clear_pub_waiting(struct pcb_ring *ring);
void pcb_ring_want_wakeup(struct pcb_ring *ring);
u64 pcb_ring_used_now(struct pcb_ring *ring);

/* publish.c */
struct iov_iter;

/* A message as the kernel holds it: its own copy of the payload. */
struct pcb_msg {
	const void *data;
	u32 len;
	u64 key;
};

/* A publisher as one ring's owner sees it (record pid and uid). */
struct pcb_ident {
	u32 pid;
	u32 uid;
};

/* Where a payload comes from: user memory, or a registered buffer. */
struct pcb_src {
	const void __user *uptr;
	struct iov_iter *iter;		/* pinned pages, or NULL */
};

/* The kernel's copy of one payload: inline when small. */
struct pcb_stage {
	void *heap;
	u8 buf[PCB_PAYLOAD_INLINE] __aligned(8);
};

/*
 * A stack object of the publish path that is written before it is read
 * (in full, or read only as far as written), and never copied out whole:
 * spared the zeroing CONFIG_INIT_STACK_ALL_ZERO gives every stack
 * variable, some 600 bytes per publish that the path overwrites anyway.
 */
#define PCB_NOINIT	__uninitialized

/* One message on its way in.  A new field needs a line in pcb_pub_init(). */
struct pcb_pub {
	struct pcb_bus *bus;
	struct pcb_msg msg;		/* data: the kernel's copy, once staged */
	u16 nr_deps;
	u16 hdr_len;			/* record header and dependencies */
	const u64 *deps;		/* checked, in kernel memory */
	u64 dep_max;			/* the greatest of them, or 0 */
	u64 tsc;			/* pcb_clock_now() at entry */
	u64 real_ns;			/* CLOCK_REALTIME then, for the id */
	struct pid *tgid;		/* the publisher, for each ring's view */
	kuid_t euid;
	/* The last view asked for, to translate once per namespace pair. */
	const struct pid_namespace *id_pid_ns;
	const struct user_namespace *id_user_ns;
	struct pcb_ident id;
	bool nonblock;
	bool retried_later;		/* io_uring's first try: EAGAIN is ours */
	/* out */
	u64 msg_id;
	u64 seq;
	u64 commit_ts;			/* bus clock after the last commit */
	u32 fates[PCB_FATE_SKIP + 1];	/* subscriptions by enum pcb_fate */
};

/*
 * Copy in something small (a payload that fits the stage buffer, an ioctl
 * argument, a batch's entries) in 8-byte words inside one user access
 * window, into @dst, which is 8-byte aligned.  copy_from_user() of a few
 * dozen bytes is mostly its own set-up (and, without FSRM, a "rep movsb"
 * from 64 bytes on, which emulators run a byte at a time).  Unaligned
 * user words only where the CPU loads them as they are; elsewhere
 * copy_from_user().  Inline: no call on the publish path.
 */
static __always_inline int
pcb_copy_in_small(void *dst, const void __user *src, u32 len)
{
	u64 *word = dst;
	u8 *tail;

	if (!IS_ENABLED(CONFIG_HAVE_EFFICIENT_UNALIGNED_ACCESS) &&
	    !IS_ALIGNED((unsigned long)src, sizeof(u64)))
		return copy_from_user(dst, src, len) ? -EFAULT : 0;
	if (!user_access_begin(src, len))
		return -EFAULT;
	for (; len >= sizeof(u64); len -= sizeof(u64), src += sizeof(u64))
		unsafe_get_user(*word++, (const u64 __user *)src, efault);
	for (tail = (u8 *)word; len; len--, src++)
		unsafe_get_user(*tail++, (const u8 __user *)src, efault);
	user_access_end();
	return 0;
efault:
	user_access_end();
	return -EFAULT;
}

/*
 * Write something small (an ioctl argument, 8-byte aligned at @src, a
 * multiple of 8 bytes long) back in 8-byte words in one user access
 * window, for the reason pcb_copy_in_small() gives.
 */
static __always_inline int
pcb_copy_out_small(void __user *dst, const void *src, u32 len)
{
	const u64 *word = src;

	if (!IS_ENABLED(CONFIG_HAVE_EFFICIENT_UNALIGNED_ACCESS) &&
	    !IS_ALIGNED((unsigned long)dst, sizeof(u64)))
		return copy_to_user(dst, src, len) ? -EFAULT : 0;
	if (!user_write_access_begin(dst, len))
		return -EFAULT;
	for (; len >= sizeof(u64); len -= sizeof(u64), dst += sizeof(u64))
		unsafe_put_user(*word++, (u64 __user *)dst, efault);
	user_write_access_end();
	return 0;
efault:
	user_write_access_end();
	return -EFAULT;
}

void pcb_pub_init(struct pcb_pub *pub, const struct pcb_endpoint *ep);
const struct pcb_ident *pcb_pub_ident(struct pcb_pub *pub,
				      const struct pcb_ring *ring);
int pcb_stage_copy(struct pcb_stage *st, struct pcb_msg *msg,
		   const struct pcb_src *src);

/* The common small message has no heap copy: then no call at all. */
static inline void pcb_stage_free(struct pcb_stage *st)
{
	if (unlikely(st->heap)) {
		kvfree(st->heap);
		st->heap = NULL;
	}
}

int pcb_probe_out(void __user *arg, const void *args, size_t size);
int pcb_restartable(int ret);
void pcb_call_begin(struct pcb_endpoint *ep, struct pcb_call *call);
ktime_t pcb_call_when(struct pcb_call *call);
int pcb_call_end(struct pcb_endpoint *ep, const struct pcb_call *call,
		 int ret);
int pcb_pub_deps(struct pcb_pub *pub, u64 *deps, u64 uaddr, u32 nr);
int pcb_publish(struct pcb_endpoint *ep, void __user *arg);
int pcb_publish_one(struct pcb_endpoint *ep, u32 handle, struct pcb_pub *pub,
		    const struct pcb_src *src, struct pcb_call *call);

/* The most messages of a plain batch published under one topic lock. */
#define PCB_RUN_MAX		16

/* What pcb_publish_run() says of each message it published. */
struct pcb_run_out {
	u64 msg_id;
	u64 seq;
};

u32 pcb_publish_run(struct pcb_endpoint *ep, u32 handle, struct pcb_pub *pub,
		    const struct pcb_msg *msgs, u32 n, struct pcb_run_out *out);
ktime_t pcb_deadline(u64 timeout_ns);
int pcb_wait_for_room(struct pcb_topic *t, unsigned long gen,
		      ktime_t deadline);

/* Called for every subscription of every publish: inline. */
static inline bool pcb_sub_is_reliable(const struct pcb_sub *sub)
{
	return !(sub->flags & PCB_SUB_LOSSY);
}

void pcb_record_write(struct pcb_record *rec, u32 topic_id,
		      const struct pcb_pub *pub, const struct pcb_msg *msg,
		      const struct pcb_ident *id, u64 msg_id, u64 seq);
void pcb_sub_count(struct pcb_sub *sub, u32 n, u64 seq, u32 *fates);
void pcb_topic_wake_consumers(struct pcb_topic *t, u64 from_seq);
void pcb_trace_fate(const struct pcb_topic *t, u64 ep_id, enum pcb_fate fate,
		    const struct pcb_pub *pub);
u64 pcb_account_publish(struct pcb_topic *t, const struct pcb_pub *pub,
			u64 nr, u64 bytes);
void pcb_account_block(struct pcb_topic *t, u32 len);
void pcb_account_timeout(struct pcb_topic *t, const struct pcb_pub *pub);

static inline u32 pcb_record_len(u32 hdr_len, u32 payload_len)
{
	return hdr_len + payload_len;
}

/* batch.c */
int pcb_publish_batch(struct pcb_endpoint *ep, void __user *arg);
void pcb_batch_block_free(struct pcb_endpoint *ep);

/* uring.c */
struct io_uring_cmd;
int pcb_uring_cmd(struct io_uring_cmd *cmd, unsigned int issue_flags);

/* stats.c */
struct pcb_cpu_stats __percpu *pcb_stats_alloc(void);
void pcb_stats_free(struct pcb_cpu_stats __percpu *stats);
void pcb_stats_publish(struct pcb_topic *t, const u32 *fates, u64 nr,
		       u64 bytes, u64 cost_ns);
void pcb_stats_inc(struct pcb_topic *t, enum pcb_counter c);
int pcb_stats_ioctl(struct pcb_bus *bus, void __user *arg);

/* proc.c */
int pcb_proc_init(void);
void pcb_proc_exit(void);

/* filter.c */
struct pcb_filter_prog;
struct pcb_filter_prog *pcb_filter_from_user(u64 uaddr);
bool pcb_filter_fits(const struct pcb_filter_prog *f, u32 max_msg_size);
bool pcb_filter_get(struct pcb_filter_prog *f);
void pcb_filter_put(struct pcb_filter_prog *f);
unsigned int pcb_filter_nr_preds(const struct pcb_filter_prog *f);
bool pcb_filter_match(const struct pcb_filter_prog *f,
		      const struct pcb_msg *msg, const struct pcb_ident *id);

/* limits.c */
enum pcb_quota {
	PCB_QUOTA_TOPICS,
	PCB_QUOTA_ENDPOINTS,
	PCB_QUOTA_SUBS,
	PCB_QUOTA_HANDLES,
	PCB_QUOTA_BUSES,
	PCB_NR_QUOTAS
};

/*
 * What /proc/pcb/usage counts, over all buses: pcb_usage[] but for what
 * limits.c's quotas count (topics, endpoints, subscriptions, handles).
 */
enum pcb_usage_counter {
	PCB_USAGE_BUSES,
	PCB_USAGE_TOPICS,
	PCB_USAGE_ENDPOINTS,
	PCB_USAGE_SUBS,
	PCB_USAGE_HANDLES,
	PCB_USAGE_RINGS,
	PCB_USAGE_RING_PAGES,
	PCB_USAGE_FILTERS,
	PCB_USAGE_USERS,
	PCB_NR_USAGE
};

extern atomic_long_t pcb_usage[PCB_NR_USAGE];

struct pcb_user;
bool pcb_should_fail(void);
void *pcb_zalloc(size_t size);
struct pcb_user *pcb_user_get(void);
void pcb_user_put(struct pcb_user *u);
bool pcb_fair_share(unsigned int held, unsigned int used, unsigned int max);
bool pcb_fair_share_exempt(void);
int pcb_quota_charge(struct pcb_user *u, enum pcb_quota q);
void pcb_quota_uncharge(struct pcb_user *u, enum pcb_quota q);
struct user_struct *pcb_memlock_charge(unsigned long pages);
void pcb_memlock_uncharge(struct user_struct *user, unsigned long pages);
int pcb_usage_show(struct seq_file *m, void *v);

#endif /* _PCB_INTERNAL_H */
