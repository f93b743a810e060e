// SPDX-License-Identifier: GPL-2.0
/*
 * Subscriptions: the link between a topic and an endpoint's ring.
 *
 * A subscription is on two lists: its topic's (walked by publishers) and
 * its endpoint's (walked by NOTIFY and at release).  Both change only under
 * bus->lock; the topic's list also under topic->lock, so that a publish in
 * progress sees the same list in each of its passes.
 */
#include <linux/rculist.h>
#include <linux/slab.h>
#include <linux/string.h>
#include <linux/uaccess.h>

#include "internal.h"
#include "trace.h"

/*
 * The filter of @sub: under its topic's lock, the bus lock, or RCU (and
 * then only to take a reference, pcb_filter_get()).
 */
struct pcb_filter_prog *pcb_sub_filter(const struct pcb_sub *sub)
{
	return rcu_dereference_check(sub->filter,
				     lockdep_is_held(&sub->topic->lock) ||
				     lockdep_is_held(&sub->topic->bus->lock));
}

static struct pcb_sub *ep_find_sub(struct pcb_endpoint *ep, u32 topic_id)
{
	struct pcb_sub *sub;

	lockdep_assert_held(&ep->bus->lock);
	list_for_each_entry(sub, &ep->subs, ep_node)
		if (sub->topic->id == topic_id)
			return sub;
	return NULL;
}

/* Subscriptions of @t whose ring belongs to @ep's user. */
static unsigned int subs_held(struct pcb_topic *t, struct pcb_endpoint *ep)
{
	struct pcb_sub *sub;
	unsigned int n = 0;

	lockdep_assert_held(&ep->bus->lock);
	list_for_each_entry(sub, &t->subs, topic_node)
		n += sub->ep->user == ep->user;
	return n;
}

/*
 * max_subscribers, and the fair share of them for users other than the
 * topic's owner: a reader cannot lock the others out.
 */
static int sub_check_room(struct pcb_endpoint *ep, struct pcb_topic *t,
			  bool exempt)
{
	unsigned int max = READ_ONCE(pcb_max_subscribers);

	if (t->nr_subs >= max)
		return -ENOSPC;
	if (exempt || uid_eq(current_fsuid(), t->uid))
		return 0;
	return pcb_fair_share(subs_held(t, ep), t->nr_subs, max) ? 0 : -EDQUOT;
}

static int sub_check(struct pcb_endpoint *ep, struct pcb_ring *ring,
		     struct pcb_topic *t, const struct pcb_subscribe *args,
		     bool exempt)
{
	if (!t)
		return -ENOENT;
	if (t->schema_id != args->schema_id)
		return -EPROTOTYPE;
	/* Read, and for the right to make publishers wait, execute. */
	if (!pcb_topic_permitted(t,
				 args->flags & PCB_SUB_LOSSY ? 4 : 4 | 1))
		return -EACCES;
	if (ep_find_sub(ep, t->id))
		return -EALREADY;
	if (PCB_REC_SIZE(pcb_record_len(PCB_REC_HDR_MAX, t->max_msg_size)) >
	    ring->size)
		return -ENOSPC;
	return sub_check_room(ep, t, exempt);
}

/*
 * Caller holds bus->lock.  Subscriptions join the tail of their topic's
 * list with ids that only grow: the list is in id order, which atomic
 * batches rely on to find their snapshot of it again.
 */
static void sub_link(struct pcb_endpoint *ep, struct pcb_sub *sub)
{
	struct pcb_topic *t = sub->topic;

	sub->id = ep->bus->next_sub_id++;
	spin_lock(&t->lock);
	list_add_tail_rcu(&sub->topic_node, &t->subs);
	WRITE_ONCE(t->nr_subs, t->nr_subs + 1);
	t->subs_gen++;
	spin_unlock(&t->lock);
	list_add_tail_rcu(&sub->ep_node, &ep->subs);
}

/* Caller holds bus->lock. */
void pcb_sub_unlink(struct pcb_sub *sub)
{
	struct pcb_topic *t = sub->topic;

	spin_lock(&t->lock);
	list_del_rcu(&sub->topic_node);
	WRITE_ONCE(t->nr_subs, t->nr_subs - 1);
	spin_unlock(&t->lock);
	list_del_rcu(&sub->ep_node);
	/* Unlinked: its counters are final. */
	trace_pcb_unsubscribe(sub);
	/* Atomic batches may hold references to it still. */
	pcb_filter_put(pcb_sub_filter(sub));
	pcb_quota_uncharge(sub->ep->user, PCB_QUOTA_SUBS);
	/* A publisher may have been waiting for room in this ring. */
	pcb_topic_kick_publishers(t);
	/*
	 * A publish that committed into the ring just before (under the
	 * lock taken above) walks the list for wake-ups after it, and may
	 * find this subscription gone: wake its consumer here.
	 */
	pcb_ring_wake_consumer(sub->ring);
	pcb_topic_put(t);
	/* Wake-up and NOTIFY walks may still hold it. */
	kfree_rcu(sub, rcu);
}

static int check_subscribe_args(const struct pcb_subscribe *args)
{
	if (args->reserved[0] || args->flags & ~PCB_SUB_FLAGS_ALL)
		return -EINVAL;
	return pcb_check_name(args->name);
}

/* Link @sub, with its filter in it already, under bus->lock. */
static int sub_create(struct pcb_endpoint *ep, struct pcb_ring *ring,
		      struct pcb_sub *sub, struct pcb_subscribe *args,
		      bool exempt)
{
	struct pcb_topic *t = pcb_topic_find(ep->bus, args->name);
	int ret;

	ret = sub_check(ep, ring, t, args, exempt);
	if (ret)
		return ret;
	/* The topic's max_msg_size bounds the filter's offsets. */
	if (!pcb_filter_fits(rcu_dereference_raw(sub->filter),
			     t->max_msg_size))
		return -EINVAL;
	ret = pcb_quota_charge(ep->user, PCB_QUOTA_SUBS);
	if (ret)
		return ret;

	pcb_topic_get(t);
	sub->topic = t;
	sub->ring = ring;
	sub->ep = ep;
	sub->ep_id = ep->id;
	sub->flags = args->flags;
	sub_link(ep, sub);
	trace_pcb_subscribe(sub);
	args->topic_id = t->id;
	return 0;
}

int pcb_subscribe(struct pcb_endpoint *ep, void __user *arg)
{
	struct pcb_ring *ring = pcb_ep_ring(ep);
	struct pcb_filter_prog *f;
	struct pcb_subscribe args;
	struct pcb_sub *sub;
	bool exempt;
	int ret;

	if (copy_from_user(&args, arg, sizeof(args)))
		return -EFAULT;
	ret = check_subscribe_args(&args);
	if (ret)
		return ret;
	if (!ring)
		return -EBADFD;
	if (pcb_ring_is_broken(ring))
		return -EPIPE;
	ret = pcb_probe_out(arg, &args, sizeof(args));
	if (ret)
		return ret;

	sub = pcb_zalloc(sizeof(*sub));
	if (!sub)
		return -ENOMEM;
	/* Copied before the bus lock: a slow fault must not hold up the bus. */
	f = pcb_filter_from_user(args.filter);
	if (IS_ERR(f)) {
		ret = PTR_ERR(f);
		goto out_free;
	}
	/* Not visible to anyone yet. */
	RCU_INIT_POINTER(sub->filter, f);

	exempt = pcb_fair_share_exempt();
	mutex_lock(&ep->bus->lock);
	ret = sub_create(ep, ring, sub, &args, exempt);
	mutex_unlock(&ep->bus->lock);
	if (ret) {
		pcb_filter_put(f);
		goto out_free;
	}
	/*
	 * Probed above; if a racing munmap() makes this fail anyway, the
	 * subscription stands: the caller can look the topic up and
	 * unsubscribe by its id.
	 */
	return copy_to_user(arg, &args, sizeof(args)) ? -EFAULT : 0;

out_free:
	kfree(sub);
	return ret;
}

int pcb_unsubscribe(struct pcb_endpoint *ep, void __user *arg)
{
	struct pcb_subscribe args;
	struct pcb_sub *sub;

	if (copy_from_user(&args, arg, sizeof(args)))
		return -EFAULT;
	if (args.reserved[0] || args.filter || args.flags)
		return -EINVAL;
	if (!pcb_ep_ring(ep))
		return -EBADFD;

	mutex_lock(&ep->bus->lock);
	sub = ep_find_sub(ep, args.topic_id);
	if (sub)
		pcb_sub_unlink(sub);
	mutex_unlock(&ep->bus->lock);
	return sub ? 0 : -ENOENT;
}

/* Swap @sub's filter for @f, under bus->lock; drops the old one. */
static void sub_swap_filter(struct pcb_sub *sub, struct pcb_filter_prog *f)
{
	struct pcb_topic *t = sub->topic;
	struct pcb_filter_prog *old;

	/*
	 * Single publishes read it under this lock, once per publish; atomic
	 * batches under RCU before they take it, for the whole batch: each
	 * message sees one filter.
	 */
	spin_lock(&t->lock);
	old = pcb_sub_filter(sub);
	rcu_assign_pointer(sub->filter, f);
	t->subs_gen++;
	spin_unlock(&t->lock);
	pcb_filter_put(old);
}

int pcb_set_filter(struct pcb_endpoint *ep, void __user *arg)
{
	struct pcb_filter_prog *f;
	struct pcb_sub_filter args;
	struct pcb_sub *sub;
	int ret = 0;

	if (copy_from_user(&args, arg, sizeof(args)))
		return -EFAULT;
	if (args.flags || args.reserved[0] || args.reserved[1])
		return -EINVAL;
	if (!pcb_ep_ring(ep))
		return -EBADFD;
	/* Copied before the bus lock: a slow fault must not hold up the bus. */
	f = pcb_filter_from_user(args.filter);
	if (IS_ERR(f))
		return PTR_ERR(f);

	mutex_lock(&ep->bus->lock);
	sub = ep_find_sub(ep, args.topic_id);
	if (!sub)
		ret = -ENOENT;
	else if (!pcb_filter_fits(f, sub->topic->max_msg_size))
		ret = -EINVAL;
	else
		sub_swap_filter(sub, f);	/* takes @f */
	mutex_unlock(&ep->bus->lock);
	if (ret)
		pcb_filter_put(f);
	return ret;
}

int pcb_sub_info(struct pcb_endpoint *ep, void __user *arg)
{
	struct pcb_sub_info args;
	struct pcb_sub *sub;

	if (copy_from_user(&args, arg, sizeof(args)))
		return -EFAULT;
	if (args.reserved0 || memchr_inv(args.reserved, 0, sizeof(args.reserved)))
		return -EINVAL;
	if (!pcb_ep_ring(ep))
		return -EBADFD;

	mutex_lock(&ep->bus->lock);
	sub = ep_find_sub(ep, args.topic_id);
	if (sub) {
		struct pcb_topic *t = sub->topic;

		args.flags = sub->flags;
		/* One snapshot: the counters move under this lock. */
		spin_lock(&t->lock);
		args.nr_preds = pcb_filter_nr_preds(pcb_sub_filter(sub));
		args.delivered = sub->delivered;
		args.dropped = sub->dropped;
		args.rejected = sub->rejected;
		spin_unlock(&t->lock);
	}
	mutex_unlock(&ep->bus->lock);
	if (!sub)
		return -ENOENT;
	return copy_to_user(arg, &args, sizeof(args)) ? -EFAULT : 0;
}

void pcb_endpoint_unsubscribe_all(struct pcb_endpoint *ep)
{
	struct pcb_sub *sub, *tmp;

	mutex_lock(&ep->bus->lock);
	list_for_each_entry_safe(sub, tmp, &ep->subs, ep_node)
		pcb_sub_unlink(sub);
	mutex_unlock(&ep->bus->lock);
}

/* The consumer made room (E): wake publishers of every subscribed topic. */
void pcb_endpoint_notify(struct pcb_endpoint *ep)
{
	struct pcb_ring *ring = pcb_ep_ring(ep);
	struct pcb_sub *sub;

	if (!ring || !pcb_ring_clear_pub_waiting(ring))
		return;
	rcu_read_lock();
	list_for_each_entry_rcu(sub, &ep->subs, ep_node)
		pcb_topic_kick_publishers(sub->topic);
	rcu_read_unlock();
}
