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

int pcb_check_name(const char *name)
{
	size_t len = strnlen(name, PCB_NAME_MAX);
	size_t i;

	if (len == PCB_NAME_MAX)
		return -ENAMETOOLONG;
	if (!len || name[0] == '.')
		return -EINVAL;
	for (i = 0; i < len; i++)
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

/* @mask: 4 to subscribe, 2 to publish; the rules of file permissions. */
bool pcb_topic_permitted(const struct pcb_topic *t, int mask)
{
	umode_t mode = t->mode;

	if (uid_eq(current_fsuid(), t->uid))
		mode >>= 6;
	else if (in_group_p(t->gid))
		mode >>= 3;
	if ((mode & mask) == mask)
		return true;
	/* Root of a child user namespace is no one special here. */
	return ns_capable(t->bus->user_ns, CAP_IPC_OWNER);
}

void pcb_topic_get(struct pcb_topic *t)
{
	refcount_inc(&t->ref);
}

/* From an RCU callback: softirq, so nothing that takes pcb_acct_lock. */
static void topic_free(struct pcb_topic *t)
{
	pcb_stats_free(t->stats);
	kfree(t);
}

static void topic_free_rcu(struct rcu_head *rcu)
{
	topic_free(container_of(rcu, struct pcb_topic, rcu));
}

void pcb_topic_put(struct pcb_topic *t)
{
	/* RCU readers (handle lookups, wake-up walks) may still look at it. */
	if (refcount_dec_and_test(&t->ref))
		call_rcu(&t->rcu, topic_free_rcu);
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

/* Caller holds bus->lock. */
static int topic_insert(struct pcb_bus *bus, struct pcb_topic *t)
{
	int ret;

	if (pcb_topic_find(bus, t->name))
		return -EEXIST;
	if (!bus->next_topic_id)
		return -ENOSPC;
	/* max_topics counts over all buses, and each user's fair share. */
	ret = pcb_quota_charge(t->creator, PCB_QUOTA_TOPICS);
	if (ret)
		return ret;
	ret = pcb_should_fail() ? -ENOMEM :
	      xa_insert(&bus->topics, bus->next_topic_id, t, GFP_KERNEL);
	if (ret) {
		pcb_quota_uncharge(t->creator, PCB_QUOTA_TOPICS);
		return ret == -EBUSY ? -ENOSPC : ret;
	}
	t->id = bus->next_topic_id++;
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
