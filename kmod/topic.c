// SPDX-License-Identifier: GPL-2.0
/*
 * Topics: creation, lookup, listing, deletion and their permission checks.
 * A topic lives from TOPIC_CREATE until TOPIC_DELETE (or module unload),
 * independently of the endpoints that use it; publish handles and
 * subscriptions hold references, so its memory outlives its name.
 */
#include <linux/capability.h>
#include <linux/cred.h>
#include <linux/slab.h>
#include <linux/string.h>
#include <linux/stringhash.h>
#include <linux/uaccess.h>
#include <linux/user_namespace.h>

#include "internal.h"

static bool name_char_ok(char c)
{
	/* ASCII only: the kernel's isalnum() takes Latin-1 letters too. */
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c >= '0' && c <= '9') || c == '.' || c == '_' || c == ':' ||
	       c == '/' || c == '-';
}

/*
 * A user's name, "~UID/rest": the offset of "rest", and the uid in *@uid
 * (UINT_MAX: not a user's name).  -EINVAL when "~" starts no valid one.
 */
static int user_name_prefix(const char *name, u32 *uid)
{
	u64 n = 0;
	int i = 1;

	*uid = UINT_MAX;
	if (name[0] != '~')
		return 0;
	/* Decimal, no leading zero, below (uid_t)-1, which is no uid. */
	if (name[1] == '0' && name[2] != '/')
		return -EINVAL;
	while (name[i] >= '0' && name[i] <= '9' && n < UINT_MAX)
		n = n * 10 + (name[i++] - '0');
	if (i == 1 || name[i] != '/' || n >= UINT_MAX)
		return -EINVAL;
	*uid = n;
	return i + 1;
}

int pcb_check_name(const char *name)
{
	size_t len = strnlen(name, PCB_NAME_MAX);
	size_t i;
	int start;
	u32 uid;

	if (len == PCB_NAME_MAX)
		return -ENAMETOOLONG;
	start = user_name_prefix(name, &uid);
	if (start < 0)
		return start;
	if (start == len || name[start] == '.')
		return -EINVAL;
	for (i = start; i < len; i++)
		if (!name_char_ok(name[i]))
			return -EINVAL;
	return 0;
}

static u32 name_hash(const char *name)
{
	return full_name_hash(NULL, name, strlen(name));
}

/* Caller holds bus->lock. */
struct pcb_topic *pcb_topic_find(struct pcb_bus *bus, const char *name)
{
	struct pcb_topic *t;

	lockdep_assert_held(&bus->lock);
	hash_for_each_possible(bus->names, t, name_node, name_hash(name))
		if (!strcmp(t->name, name))
			return t;
	return NULL;
}

/* The mode alone: the @mask bits of the class the caller falls in. */
static bool mode_permits(const struct pcb_topic *t, int mask)
{
	umode_t mode = t->mode;

	if (uid_eq(current_fsuid(), t->uid))
		mode >>= 6;
	else if (in_group_p(t->gid))
		mode >>= 3;
	return (mode & mask) == mask;
}

/*
 * @mask: 4 to subscribe (4 | 1 reliably), 2 to publish; the rules of file
 * permissions, with CAP_IPC_OWNER where the bus lives as the override
 * (root of a child user namespace is no one special here).  For the
 * caller's credentials: /proc readers have theirs overridden by the
 * opener's (proc.c).
 */
bool pcb_topic_permitted(const struct pcb_topic *t, int mask)
{
	return mode_permits(t, mask) ||
	       ns_capable(t->bus->user_ns, CAP_IPC_OWNER);
}

/*
 * Whether the caller may see the topic's traffic: its owner, a reader,
 * CAP_IPC_OWNER.  Asked of every topic a listing shows, so a refusal is
 * not audited.
 */
bool pcb_topic_may_see(const struct pcb_topic *t)
{
	return uid_eq(current_fsuid(), t->uid) || mode_permits(t, 4) ||
	       ns_capable_noaudit(t->bus->user_ns, CAP_IPC_OWNER);
}

void pcb_topic_get(struct pcb_topic *t)
{
	refcount_inc(&t->ref);
}

/*
 * Also from an RCU callback (topic_stats_free_rcu()): softirq, so nothing
 * that takes pcb_acct_lock, and no module code left to run after a grace
 * period, so that module unload's rcu_barrier() waits for everything.
 */
void pcb_topic_put(struct pcb_topic *t)
{
	if (!refcount_dec_and_test(&t->ref))
		return;
	/* Statistics left only by a topic that was never named. */
	pcb_stats_free(t->stats);
	/* RCU readers (handle lookups, wake-up walks) may still look at it. */
	kfree_rcu(t, rcu);
}

/* A grace period after delete: no publisher reads the statistics now. */
static void topic_stats_free_rcu(struct rcu_head *rcu)
{
	struct pcb_topic *t = container_of(rcu, struct pcb_topic, stats_rcu);

	pcb_stats_free(t->dead_stats);
	t->dead_stats = NULL;
	pcb_topic_put(t);
}

/*
 * Free the statistics of a deleted topic: publish handles may keep the
 * topic itself, and it should cost them little.  Readers find NULL from
 * now on (pcb_topic_stats()).
 */
static void topic_drop_stats(struct pcb_topic *t)
{
	t->dead_stats = t->stats;
	WRITE_ONCE(t->stats, NULL);
	pcb_topic_get(t);	/* until topic_stats_free_rcu() */
	call_rcu(&t->stats_rcu, topic_stats_free_rcu);
}

void pcb_topic_kick_publishers(struct pcb_topic *t)
{
	/*
	 * Room made (a consumer position stored, a subscription gone) before
	 * the new generation: pairs with the smp_rmb() after the generation
	 * is read in publish_once().
	 */
	smp_mb__before_atomic();
	atomic_long_inc(&t->space_gen);
	wake_up_all(&t->space_wq);
}

static int topic_owner(struct pcb_bus *bus,
		       const struct pcb_topic_create *args, kuid_t *uid,
		       kgid_t *gid)
{
	struct user_namespace *ns = current_user_ns();

	*uid = args->uid == PCB_OWNER_CALLER ? current_fsuid() :
					       make_kuid(ns, args->uid);
	*gid = args->gid == PCB_OWNER_CALLER ? current_fsgid() :
					       make_kgid(ns, args->gid);
	if (!uid_valid(*uid) || !gid_valid(*gid))
		return -EINVAL;
	/*
	 * As chown(2): own uid and groups are fine; giving away needs
	 * CAP_CHOWN where the bus lives, to ids that exist there.
	 */
	if (uid_eq(*uid, current_fsuid()) && in_group_p(*gid))
		return 0;
	if (!ns_capable(bus->user_ns, CAP_CHOWN) ||
	    !kuid_has_mapping(bus->user_ns, *uid) ||
	    !kgid_has_mapping(bus->user_ns, *gid))
		return -EPERM;
	return 0;
}

/* A user's name "~UID/..." only ever names a topic owned by UID. */
static int topic_check_user_name(struct pcb_bus *bus, const char *name,
				 kuid_t owner)
{
	u32 uid;

	/* pcb_check_name() passed: the prefix is well formed. */
	user_name_prefix(name, &uid);
	if (uid == UINT_MAX)
		return 0;
	return uid_eq(make_kuid(bus->user_ns, uid), owner) ? 0 : -EPERM;
}

static u32 topic_max_msg_size(void)
{
	/* A record, padded, must fit the length bits of its first word. */
	return min_t(u32, pcb_max_msg_size,
		     PCB_REC_LEN_MASK - PCB_REC_HDR_MAX - PCB_REC_ALIGN);
}

static int topic_check_create(const struct pcb_topic_create *args)
{
	int i;

	for (i = 0; i < ARRAY_SIZE(args->reserved); i++)
		if (args->reserved[i])
			return -EINVAL;
	if (args->flags || args->mode & ~PCB_MODE_MASK || !args->max_msg_size ||
	    args->max_msg_size > topic_max_msg_size())
		return -EINVAL;
	return pcb_check_name(args->name);
}

static struct pcb_topic *topic_alloc(struct pcb_bus *bus,
				     const struct pcb_topic_create *args)
{
	struct pcb_topic *t = pcb_zalloc(sizeof(*t));

	if (!t)
		return NULL;
	t->stats = pcb_should_fail() ? NULL : pcb_stats_alloc();
	if (!t->stats)
		goto err_free;
	t->creator = pcb_user_get();
	if (!t->creator)
		goto err_stats;
	refcount_set(&t->ref, 1);	/* the namespace's reference */
	t->bus = bus;
	strscpy(t->name, args->name, sizeof(t->name));
	t->schema_id = args->schema_id;
	t->max_msg_size = args->max_msg_size;
	t->mode = args->mode;
	spin_lock_init(&t->lock);
	INIT_LIST_HEAD(&t->subs);
	init_waitqueue_head(&t->space_wq);
	atomic_long_set(&t->space_gen, 0);
	return t;

err_stats:
	pcb_stats_free(t->stats);
err_free:
	kfree(t);
	return NULL;
}

/*
 * Caller holds bus->lock.  Ids go round from 1 to U32_MAX, skipping those
 * in use: a long-lived bus never runs out, and an id comes back only
 * after every other one has been handed out since.
 */
static int topic_insert(struct pcb_bus *bus, struct pcb_topic *t)
{
	u32 id;
	int ret;

	if (pcb_topic_find(bus, t->name))
		return -EEXIST;
	/* max_topics counts over all buses, and each user's fair share. */
	ret = pcb_quota_charge(t->creator, PCB_QUOTA_TOPICS);
	if (ret)
		return ret;
	ret = pcb_should_fail() ? -ENOMEM :
	      xa_alloc_cyclic(&bus->topics, &id, t, XA_LIMIT(1, U32_MAX),
			      &bus->next_topic_id, GFP_KERNEL);
	if (ret < 0) {
		pcb_quota_uncharge(t->creator, PCB_QUOTA_TOPICS);
		return ret == -EBUSY ? -ENOSPC : ret;
	}
	t->id = id;
	hash_add(bus->names, &t->name_node, name_hash(t->name));
	bus->nr_topics++;
	return 0;
}

/* Caller holds bus->lock: the name goes, publishers and subscribers too. */
static void topic_unlink(struct pcb_bus *bus, struct pcb_topic *t)
{
	struct pcb_sub *sub, *tmp;

	hash_del(&t->name_node);
	xa_erase(&bus->topics, t->id);
	bus->nr_topics--;
	pcb_quota_uncharge(t->creator, PCB_QUOTA_TOPICS);
	pcb_user_put(t->creator);
	t->creator = NULL;

	spin_lock(&t->lock);
	WRITE_ONCE(t->dead, true);
	spin_unlock(&t->lock);
	list_for_each_entry_safe(sub, tmp, &t->subs, topic_node)
		pcb_sub_unlink(sub);
	pcb_topic_kick_publishers(t);
	topic_drop_stats(t);
}

int pcb_topic_create(struct pcb_bus *bus, void __user *arg)
{
	struct pcb_topic_create args;
	struct pcb_topic *t;
	int ret;

	if (copy_from_user(&args, arg, sizeof(args)))
		return -EFAULT;
	ret = topic_check_create(&args);
	if (ret)
		return ret;

	t = topic_alloc(bus, &args);
	if (!t)
		return -ENOMEM;
	ret = topic_owner(bus, &args, &t->uid, &t->gid);
	if (!ret)
		ret = topic_check_user_name(bus, t->name, t->uid);
	if (!ret) {
		mutex_lock(&bus->lock);
		ret = topic_insert(bus, t);
		if (!ret)
			pcb_topic_get(t);	/* ours, for the copy-out below */
		mutex_unlock(&bus->lock);
	}
	if (ret) {
		/* Never named: the creator's reference goes now, not in RCU. */
		pcb_user_put(t->creator);
		goto out_put;
	}

	args.topic_id = t->id;
	if (copy_to_user(arg, &args, sizeof(args))) {
		/* Undo rather than leave a topic its creator was not told of. */
		mutex_lock(&bus->lock);
		if (!t->dead) {
			topic_unlink(bus, t);
			pcb_topic_put(t);
		}
		mutex_unlock(&bus->lock);
		ret = -EFAULT;
	}
out_put:
	pcb_topic_put(t);
	return ret;
}

int pcb_topic_delete(struct pcb_bus *bus, void __user *arg)
{
	struct pcb_topic_name args;
	struct pcb_topic *t;
	int ret;

	if (copy_from_user(&args, arg, sizeof(args)))
		return -EFAULT;
	if (args.reserved[0] || args.reserved[1])
		return -EINVAL;
	ret = pcb_check_name(args.name);
	if (ret)
		return ret;

	mutex_lock(&bus->lock);
	t = pcb_topic_find(bus, args.name);
	if (!t) {
		ret = -ENOENT;
	} else if (!uid_eq(current_fsuid(), t->uid) &&
		   !ns_capable(bus->user_ns, CAP_IPC_OWNER)) {
		ret = -EPERM;
	} else {
		topic_unlink(bus, t);
		pcb_topic_put(t);
	}
	mutex_unlock(&bus->lock);
	return ret;
}

/* What anyone may know of a topic, and its traffic for those who may. */
static void topic_fill_info(const struct pcb_topic *t,
			    struct pcb_topic_info *info)
{
	struct user_namespace *ns = current_user_ns();

	memset(info, 0, sizeof(*info));
	strscpy(info->name, t->name, sizeof(info->name));
	info->schema_id = t->schema_id;
	info->max_msg_size = t->max_msg_size;
	info->mode = t->mode;
	info->uid = from_kuid_munged(ns, t->uid);
	info->gid = from_kgid_munged(ns, t->gid);
	info->flags = t->flags;
	info->topic_id = t->id;
	if (!pcb_topic_may_see(t)) {
		info->flags |= PCB_TOPIC_INFO_HIDDEN;
		return;
	}
	info->nr_subscribers = READ_ONCE(t->nr_subs);
	info->published = READ_ONCE(t->seq);
}

int pcb_topic_info(struct pcb_bus *bus, void __user *arg)
{
	struct pcb_topic_info info;
	struct pcb_topic *t;
	int i, ret;

	if (copy_from_user(&info, arg, sizeof(info)))
		return -EFAULT;
	if (info.reserved0)
		return -EINVAL;
	for (i = 0; i < ARRAY_SIZE(info.reserved); i++)
		if (info.reserved[i])
			return -EINVAL;
	ret = pcb_check_name(info.name);
	if (ret)
		return ret;

	mutex_lock(&bus->lock);
	t = pcb_topic_find(bus, info.name);
	if (t)
		topic_fill_info(t, &info);
	mutex_unlock(&bus->lock);
	if (!t)
		return -ENOENT;
	return copy_to_user(arg, &info, sizeof(info)) ? -EFAULT : 0;
}

/* The first topic with an id >= *id, its info in @info; false at the end. */
static bool topic_next(struct pcb_bus *bus, unsigned long *id,
		       struct pcb_topic_info *info)
{
	struct pcb_topic *t;

	mutex_lock(&bus->lock);
	t = xa_find(&bus->topics, id, U32_MAX, XA_PRESENT);
	if (t)
		topic_fill_info(t, info);
	mutex_unlock(&bus->lock);
	return t;
}

int pcb_topic_list(struct pcb_bus *bus, void __user *arg)
{
	struct pcb_topic_list args;
	struct pcb_topic_info info;
	struct pcb_topic_info __user *entries;
	unsigned long id;

	if (copy_from_user(&args, arg, sizeof(args)))
		return -EFAULT;
	if (args.reserved[0] || args.reserved[1])
		return -EINVAL;

	entries = u64_to_user_ptr(args.entries);
	id = args.start_id;
	args.count = 0;
	args.next_id = 0;
	/* One topic at a time: no user copy with bus->lock held. */
	while (topic_next(bus, &id, &info)) {
		if (args.count == args.capacity) {
			args.next_id = id;
			break;
		}
		if (copy_to_user(&entries[args.count], &info, sizeof(info)))
			return -EFAULT;
		args.count++;
		id++;
	}
	return copy_to_user(arg, &args, sizeof(args)) ? -EFAULT : 0;
}

/* The bus goes: no endpoint is open any more, so no subscription left. */
void pcb_topic_destroy_all(struct pcb_bus *bus)
{
	struct pcb_topic *t;
	unsigned long id;

	mutex_lock(&bus->lock);
	xa_for_each(&bus->topics, id, t) {
		topic_unlink(bus, t);
		pcb_topic_put(t);
	}
	mutex_unlock(&bus->lock);
}
