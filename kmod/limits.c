// SPDX-License-Identifier: GPL-2.0
/*
 * Limits and accounting: what each user holds (topics, endpoints,
 * subscriptions, publish handles), the fair-share rule, locked-memory
 * charges of rings, the usage counters of /proc/pcb/usage and the fail_nth
 * fault injection of set-up paths.
 */
#include <linux/capability.h>
#include <linux/cred.h>
#include <linux/hashtable.h>
#include <linux/moduleparam.h>
#include <linux/sched/signal.h>
#include <linux/sched/user.h>
#include <linux/seq_file.h>
#include <linux/slab.h>
#include <linux/spinlock.h>

#include "internal.h"

unsigned int pcb_max_endpoints = 16384;
module_param_named(max_endpoints, pcb_max_endpoints, uint, 0644);
MODULE_PARM_DESC(max_endpoints, "Open endpoints over all buses at most (ENFILE beyond)");

unsigned int pcb_max_endpoints_per_user = 4096;
module_param_named(max_endpoints_per_user, pcb_max_endpoints_per_user, uint, 0644);
MODULE_PARM_DESC(max_endpoints_per_user, "Open endpoints of one user at most (EMFILE beyond)");

unsigned int pcb_max_subscriptions_per_user = 4096;
module_param_named(max_subscriptions_per_user, pcb_max_subscriptions_per_user,
		   uint, 0644);
MODULE_PARM_DESC(max_subscriptions_per_user, "Subscriptions of the rings of one user at most (EDQUOT beyond)");

unsigned int pcb_max_handles_per_user = 16384;
module_param_named(max_handles_per_user, pcb_max_handles_per_user, uint, 0644);
MODULE_PARM_DESC(max_handles_per_user, "Publish handles open by one user at most (EDQUOT beyond)");

unsigned int pcb_max_buses_per_user = 64;
module_param_named(max_buses_per_user, pcb_max_buses_per_user, uint, 0644);
MODULE_PARM_DESC(max_buses_per_user, "Buses (IPC namespaces' first opens) one user makes at most (EDQUOT beyond)");

/*
 * Users holding something, by kuid.  @pcb_acct_lock covers the table, each
 * user's reference count and quota counts, and pcb_quota_used[]: charges
 * are rare (open, topic create), so one lock for all is enough.
 */
static DEFINE_HASHTABLE(pcb_users, 6);
static DEFINE_SPINLOCK(pcb_acct_lock);
static unsigned int pcb_quota_used[PCB_NR_QUOTAS];

struct pcb_user {
	struct hlist_node node;		/* pcb_users, under pcb_acct_lock */
	kuid_t uid;
	unsigned int ref;		/* under pcb_acct_lock */
	unsigned int held[PCB_NR_QUOTAS];	/* under pcb_acct_lock */
};

atomic_long_t pcb_usage[PCB_NR_USAGE];

static const char * const pcb_usage_names[PCB_NR_USAGE] = {
	[PCB_USAGE_BUSES]	= "buses",
	[PCB_USAGE_TOPICS]	= "topics",
	[PCB_USAGE_ENDPOINTS]	= "endpoints",
	[PCB_USAGE_SUBS]	= "subscriptions",
	[PCB_USAGE_HANDLES]	= "handles",
	[PCB_USAGE_RINGS]	= "rings",
	[PCB_USAGE_RING_PAGES]	= "ring_pages",
	[PCB_USAGE_FILTERS]	= "filters",
	[PCB_USAGE_USERS]	= "users",
};

/* --- fault injection -------------------------------------------------- */

/*
 * fail_nth: the Nth allocation of a set-up path from now on fails.  Writing
 * the parameter restarts the count; the failure resets it to 0, so that
 * reading it back tells whether it happened.
 */
static unsigned int pcb_fail_nth;
static atomic_t pcb_fail_seen;

static int fail_nth_set(const char *val, const struct kernel_param *kp)
{
	unsigned int n;
	int ret;

	ret = kstrtouint(val, 0, &n);
	if (ret)
		return ret;
	atomic_set(&pcb_fail_seen, 0);
	/* The count is reset before a new N can be seen: pairs with below. */
	smp_store_release(&pcb_fail_nth, n);
	return 0;
}

static const struct kernel_param_ops fail_nth_ops = {
	.set	= fail_nth_set,
	.get	= param_get_uint,
};
module_param_cb(fail_nth, &fail_nth_ops, &pcb_fail_nth, 0600);
MODULE_PARM_DESC(fail_nth, "Testing: make the Nth set-up allocation from now on fail (0: off)");

bool pcb_should_fail(void)
{
	/* Pairs with the store-release in fail_nth_set(). */
	unsigned int n = smp_load_acquire(&pcb_fail_nth);

	if (likely(!n))
		return false;
	if (atomic_inc_return(&pcb_fail_seen) != n)
		return false;
	/* Only the allocation that hit N clears it. */
	return cmpxchg(&pcb_fail_nth, n, 0) == n;
}

void *pcb_zalloc(size_t size)
{
	if (pcb_should_fail())
		return NULL;
	return kzalloc(size, GFP_KERNEL_ACCOUNT);
}

/* --- users and quotas ------------------------------------------------- */

static struct pcb_user *user_find(kuid_t uid)
{
	struct pcb_user *u;

	lockdep_assert_held(&pcb_acct_lock);
	hash_for_each_possible(pcb_users, u, node, __kuid_val(uid))
		if (uid_eq(u->uid, uid))
			return u;
	return NULL;
}

/* The caller's real user, with a reference; NULL when memory is short. */
struct pcb_user *pcb_user_get(void)
{
	kuid_t uid = current_uid();
	struct pcb_user *u, *new;

	spin_lock(&pcb_acct_lock);
	u = user_find(uid);
	if (u)
		u->ref++;
	spin_unlock(&pcb_acct_lock);
	if (u)
		return u;

	new = pcb_zalloc(sizeof(*new));
	if (!new)
		return NULL;
	new->uid = uid;
	new->ref = 1;

	spin_lock(&pcb_acct_lock);
	u = user_find(uid);
	if (u) {
		u->ref++;
	} else {
		hash_add(pcb_users, &new->node, __kuid_val(uid));
		atomic_long_inc(&pcb_usage[PCB_USAGE_USERS]);
		u = new;
		new = NULL;
	}
	spin_unlock(&pcb_acct_lock);
	kfree(new);
	return u;
}

void pcb_user_put(struct pcb_user *u)
{
	bool last;

	spin_lock(&pcb_acct_lock);
	last = !--u->ref;
	if (last) {
		hash_del(&u->node);
		atomic_long_dec(&pcb_usage[PCB_USAGE_USERS]);
	}
	spin_unlock(&pcb_acct_lock);
	if (last)
		kfree(u);
}

/*
 * The fair share: one more only while the user holds fewer than remain
 * free, i.e. at most half of what remains, so that one user can never take
 * all of a resource.  @held and @used are counted before the new one.
 */
bool pcb_fair_share(unsigned int held, unsigned int used, unsigned int max)
{
	return used < max && held < max - used;
}

/* Exempt from the fair share (not from the limits). */
bool pcb_fair_share_exempt(void)
{
	/* noaudit: asked on every charge, whether it matters or not. */
	return ns_capable_noaudit(&init_user_ns, CAP_SYS_RESOURCE);
}

static int quota_check(const struct pcb_user *u, enum pcb_quota q,
		       bool exempt)
{
	unsigned int used = pcb_quota_used[q];
	unsigned int held = u->held[q];

	switch (q) {
	case PCB_QUOTA_TOPICS:
		if (used >= READ_ONCE(pcb_max_topics))
			return -ENOSPC;
		if (!exempt && !pcb_fair_share(held, used,
					       READ_ONCE(pcb_max_topics)))
			return -EDQUOT;
		return 0;
	case PCB_QUOTA_ENDPOINTS:
		if (used >= READ_ONCE(pcb_max_endpoints))
			return -ENFILE;
		if (held >= READ_ONCE(pcb_max_endpoints_per_user) ||
		    (!exempt && !pcb_fair_share(held, used,
						READ_ONCE(pcb_max_endpoints))))
			return -EMFILE;
		return 0;
	case PCB_QUOTA_SUBS:
		return held < READ_ONCE(pcb_max_subscriptions_per_user) ?
		       0 : -EDQUOT;
	case PCB_QUOTA_HANDLES:
		return held < READ_ONCE(pcb_max_handles_per_user) ?
		       0 : -EDQUOT;
	default:
		return held < READ_ONCE(pcb_max_buses_per_user) ? 0 : -EDQUOT;
	}
}

/* Charge one of @q to @u: 0, or the errno of the limit hit. */
int pcb_quota_charge(struct pcb_user *u, enum pcb_quota q)
{
	bool exempt = pcb_fair_share_exempt();
	int ret;

	spin_lock(&pcb_acct_lock);
	ret = quota_check(u, q, exempt);
	if (!ret) {
		pcb_quota_used[q]++;
		u->held[q]++;
	}
	spin_unlock(&pcb_acct_lock);
	return ret;
}

void pcb_quota_uncharge(struct pcb_user *u, enum pcb_quota q)
{
	spin_lock(&pcb_acct_lock);
	pcb_quota_used[q]--;
	u->held[q]--;
	spin_unlock(&pcb_acct_lock);
}

/* --- locked memory ---------------------------------------------------- */

/*
 * Charge @pages of ring memory to the caller's user against its
 * RLIMIT_MEMLOCK, as io_uring charges its rings; CAP_IPC_LOCK is not
 * limited and not charged.  Returns the user to uncharge later (with a
 * reference), NULL for none, or an ERR_PTR.
 */
struct user_struct *pcb_memlock_charge(unsigned long pages)
{
	unsigned long limit = rlimit(RLIMIT_MEMLOCK) >> PAGE_SHIFT;
	struct user_struct *user = current_user();
	long cur, next;

	if (capable(CAP_IPC_LOCK))
		return NULL;
	cur = atomic_long_read(&user->locked_vm);
	do {
		next = cur + pages;
		if (next > limit)
			return ERR_PTR(-ENOMEM);
	} while (!atomic_long_try_cmpxchg(&user->locked_vm, &cur, next));
	return get_uid(user);
}

void pcb_memlock_uncharge(struct user_struct *user, unsigned long pages)
{
	if (!user)
		return;
	atomic_long_sub(pages, &user->locked_vm);
	free_uid(user);
}

/* --- /proc/pcb/usage ---------------------------------------------------- */

int pcb_usage_show(struct seq_file *m, void *v)
{
	long count[PCB_NR_USAGE];
	int i;

	/* Buses of dead namespaces would otherwise show until the reaper runs. */
	pcb_buses_reap();
	for (i = 0; i < PCB_NR_USAGE; i++)
		count[i] = atomic_long_read(&pcb_usage[i]);
	/* What the quotas count already. */
	spin_lock(&pcb_acct_lock);
	count[PCB_USAGE_TOPICS] = pcb_quota_used[PCB_QUOTA_TOPICS];
	count[PCB_USAGE_ENDPOINTS] = pcb_quota_used[PCB_QUOTA_ENDPOINTS];
	count[PCB_USAGE_SUBS] = pcb_quota_used[PCB_QUOTA_SUBS];
	count[PCB_USAGE_HANDLES] = pcb_quota_used[PCB_QUOTA_HANDLES];
	spin_unlock(&pcb_acct_lock);
	for (i = 0; i < PCB_NR_USAGE; i++)
		seq_printf(m, "%s %ld\n", pcb_usage_names[i], count[i]);
	return 0;
}
