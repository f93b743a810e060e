// SPDX-License-Identifier: GPL-2.0
/*
 * Endpoints: one per open file of /dev/pcb.  The file operations, the
 * ioctl dispatch, publish handles, ring set-up and waiting.
 */
#include <linux/fs.h>
#include <linux/hrtimer.h>
#include <linux/log2.h>
#include <linux/mm.h>
#include <linux/pid.h>
#include <linux/poll.h>
#include <linux/slab.h>
#include <linux/uaccess.h>
#include <linux/wait.h>

#include "internal.h"

/* A new endpoint, charged to the caller's user, on the caller's bus. */
static struct pcb_endpoint *endpoint_alloc(void)
{
	struct pcb_endpoint *ep;
	int ret = -ENOMEM;

	ep = pcb_zalloc(sizeof(*ep));
	if (!ep)
		return ERR_PTR(-ENOMEM);
	ep->user = pcb_user_get();
	if (!ep->user)
		goto err_free;
	ret = pcb_quota_charge(ep->user, PCB_QUOTA_ENDPOINTS);
	if (ret)
		goto err_user;
	ep->bus = pcb_bus_get(true);
	if (IS_ERR(ep->bus)) {
		ret = PTR_ERR(ep->bus);
		goto err_uncharge;
	}
	return ep;

err_uncharge:
	pcb_quota_uncharge(ep->user, PCB_QUOTA_ENDPOINTS);
err_user:
	pcb_user_put(ep->user);
err_free:
	kfree(ep);
	return ERR_PTR(ret);
}

static int pcb_open(struct inode *inode, struct file *file)
{
	struct pcb_endpoint *ep = endpoint_alloc();

	if (IS_ERR(ep))
		return PTR_ERR(ep);
	mutex_init(&ep->ring_lock);
	spin_lock_init(&ep->restart_lock);
	xa_init_flags(&ep->handles, XA_FLAGS_ALLOC);
	INIT_LIST_HEAD(&ep->subs);
	ep->owner = get_pid(task_tgid(current));

	mutex_lock(&ep->bus->lock);
	ep->id = ep->bus->next_ep_id++;
	list_add_tail(&ep->bus_node, &ep->bus->endpoints);
	mutex_unlock(&ep->bus->lock);
	file->private_data = ep;
	return 0;
}

/* Drop a publish handle's topic and its charge. */
static void handle_put(struct pcb_endpoint *ep, struct pcb_topic *t)
{
	pcb_topic_put(t);
	pcb_quota_uncharge(ep->user, PCB_QUOTA_HANDLES);
}

/* The last fd is closed and no mapping of the ring is left. */
static int pcb_release(struct inode *inode, struct file *file)
{
	struct pcb_endpoint *ep = file->private_data;
	struct pcb_topic *t;
	unsigned long handle;

	pcb_endpoint_unsubscribe_all(ep);
	mutex_lock(&ep->bus->lock);
	list_del(&ep->bus_node);
	mutex_unlock(&ep->bus->lock);
	put_pid(ep->owner);
	xa_for_each(&ep->handles, handle, t)
		handle_put(ep, t);
	xa_destroy(&ep->handles);
	/* Publishers still writing into it hold their own references. */
	if (ep->ring)
		pcb_ring_put(ep->ring);
	mutex_destroy(&ep->ring_lock);
	pcb_batch_block_free(ep);
	/* Last: nothing above touches the bus or the charges any more. */
	pcb_bus_put(ep->bus);
	pcb_quota_uncharge(ep->user, PCB_QUOTA_ENDPOINTS);
	pcb_user_put(ep->user);
	/* NOTIFY walks and the like may still read it under RCU. */
	kfree_rcu(ep, rcu);
	return 0;
}

static int check_ring_setup(const struct pcb_ring_setup *args)
{
	if (args->flags || args->reserved0 || args->reserved[0] ||
	    args->reserved[1])
		return -EINVAL;
	/* A chunk of records must fit the length bits of a len word. */
	if (!is_power_of_2(args->data_size) ||
	    args->data_size < max_t(u32, PCB_RING_MIN_SIZE, PAGE_SIZE) ||
	    args->data_size > pcb_max_ring_size ||
	    args->data_size > PCB_REC_LEN_MASK + 1)
		return -EINVAL;
	return 0;
}

static void ring_setup_result(struct pcb_ring_setup *args)
{
	u32 size = args->data_size;

	memset(args, 0, sizeof(*args));
	args->data_size = size;
	args->page_size = PAGE_SIZE;
	args->cons_offset = 0;
	args->header_offset = PAGE_SIZE;
	args->data_offset = 2 * PAGE_SIZE;
	args->mmap_size = 2 * PAGE_SIZE + 2ULL * size;
}

static int ring_setup(struct pcb_endpoint *ep, void __user *arg)
{
	struct pcb_ring_setup args;
	struct pcb_ring *ring;
	int ret;

	if (copy_from_user(&args, arg, sizeof(args)))
		return -EFAULT;
	ret = check_ring_setup(&args);
	if (ret)
		return ret;

	/*
	 * The answer depends on the size alone: write it before the ring
	 * exists, so that a caller who cannot read it gets no ring either.
	 */
	ring_setup_result(&args);
	if (copy_to_user(arg, &args, sizeof(args)))
		return -EFAULT;

	mutex_lock(&ep->ring_lock);
	if (ep->ring) {
		ret = -EBUSY;
		goto out_unlock;
	}
	ring = pcb_ring_create(args.data_size);
	if (IS_ERR(ring)) {
		ret = PTR_ERR(ring);
		goto out_unlock;
	}
	ring->ep_id = ep->id;
	/* The ring is complete before anyone can see it: pairs with pcb_ep_ring(). */
	smp_store_release(&ep->ring, ring);
out_unlock:
	mutex_unlock(&ep->ring_lock);
	return ret;
}

static int topic_open(struct pcb_endpoint *ep, void __user *arg)
{
	struct pcb_topic_open args;
	struct pcb_topic *t;
	u32 handle;
	int ret;

	if (copy_from_user(&args, arg, sizeof(args)))
		return -EFAULT;
	if (args.flags || args.reserved[0] || args.reserved[1])
		return -EINVAL;
	ret = pcb_check_name(args.name);
	if (ret)
		return ret;

	ret = pcb_quota_charge(ep->user, PCB_QUOTA_HANDLES);
	if (ret)
		return ret;
	mutex_lock(&ep->bus->lock);
	t = pcb_topic_find(ep->bus, args.name);
	if (!t)
		ret = -ENOENT;
	else if (t->schema_id != args.schema_id)
		ret = -EPROTOTYPE;
	else if (!pcb_topic_permitted(t, 2))
		ret = -EACCES;
	else
		pcb_topic_get(t);
	mutex_unlock(&ep->bus->lock);
	if (ret)
		goto out_uncharge;

	ret = pcb_should_fail() ? -ENOMEM :
	      xa_alloc(&ep->handles, &handle, t,
		       XA_LIMIT(0, PCB_MAX_HANDLES - 1), GFP_KERNEL_ACCOUNT);
	if (ret) {
		pcb_topic_put(t);
		ret = ret == -EBUSY ? -EMFILE : ret;
		goto out_uncharge;
	}

	args.handle = handle;
	args.topic_id = t->id;
	args.max_msg_size = t->max_msg_size;
	if (copy_to_user(arg, &args, sizeof(args))) {
		t = xa_erase(&ep->handles, handle);
		if (t)
			handle_put(ep, t);
		return -EFAULT;
	}
	return 0;

out_uncharge:
	pcb_quota_uncharge(ep->user, PCB_QUOTA_HANDLES);
	return ret;
}

static int topic_close(struct pcb_endpoint *ep, void __user *arg)
{
	struct pcb_topic_close args;
	struct pcb_topic *t;

	if (copy_from_user(&args, arg, sizeof(args)))
		return -EFAULT;
	if (args.reserved0 || args.reserved[0])
		return -EINVAL;
	/* Publishers that loaded it under RCU keep it until they leave. */
	t = xa_erase(&ep->handles, args.handle);
	if (!t)
		return -EBADF;
	handle_put(ep, t);
	return 0;
}

static bool ring_ready(struct pcb_ring *ring)
{
	return pcb_ring_readable(ring) || pcb_ring_is_broken(ring);
}

static int ring_wait(struct pcb_endpoint *ep, void __user *arg)
{
	struct pcb_call call = { .cmd = PCB_IOC_WAIT, .arg = arg };
	struct pcb_ring *ring = pcb_ep_ring(ep);
	struct pcb_wait args;
	ktime_t left;
	int ret;

	if (copy_from_user(&args, arg, sizeof(args)))
		return -EFAULT;
	if (args.flags || args.reserved0 || args.reserved[0] ||
	    args.reserved[1])
		return -EINVAL;
	if (!ring)
		return -EBADFD;

	pcb_endpoint_notify(ep);
	pcb_ring_want_wakeup(ring);
	/* From KTIME_MAX on, a timeout is no limit. */
	call.timeout_ns = args.timeout_ns < KTIME_MAX ? args.timeout_ns : 0;
	pcb_call_begin(ep, &call);
	if (pcb_call_when(&call)) {
		left = max_t(ktime_t, ktime_sub(call.deadline, ktime_get()), 0);
		ret = wait_event_interruptible_hrtimeout(ring->data_wq,
							 ring_ready(ring),
							 left);
	} else {
		ret = wait_event_interruptible(ring->data_wq, ring_ready(ring));
	}

	if (ret == -ETIME)
		return -ETIMEDOUT;
	if (ret)
		return pcb_call_end(ep, &call, -EINTR);
	return pcb_ring_is_broken(ring) ? -EPIPE : 0;
}

static int ring_notify(struct pcb_endpoint *ep, unsigned long arg)
{
	if (arg)
		return -EINVAL;
	if (!pcb_ep_ring(ep))
		return -EBADFD;
	pcb_endpoint_notify(ep);
	return 0;
}

static long pcb_ioctl(struct file *file, unsigned int cmd, unsigned long arg)
{
	struct pcb_endpoint *ep = file->private_data;
	void __user *uarg = (void __user *)arg;

	switch (cmd) {
	case PCB_IOC_PUBLISH:
		return pcb_publish(ep, uarg);
	case PCB_IOC_TOPIC_CREATE:
		return pcb_topic_create(ep->bus, uarg);
	case PCB_IOC_TOPIC_DELETE:
		return pcb_topic_delete(ep->bus, uarg);
	case PCB_IOC_TOPIC_INFO:
		return pcb_topic_info(ep->bus, uarg);
	case PCB_IOC_TOPIC_LIST:
		return pcb_topic_list(ep->bus, uarg);
	case PCB_IOC_TOPIC_OPEN:
		return topic_open(ep, uarg);
	case PCB_IOC_TOPIC_CLOSE:
		return topic_close(ep, uarg);
	case PCB_IOC_RING_SETUP:
		return ring_setup(ep, uarg);
	case PCB_IOC_SUBSCRIBE:
		return pcb_subscribe(ep, uarg);
	case PCB_IOC_UNSUBSCRIBE:
		return pcb_unsubscribe(ep, uarg);
	case PCB_IOC_WAIT:
		return ring_wait(ep, uarg);
	case PCB_IOC_NOTIFY:
		return ring_notify(ep, arg);
	case PCB_IOC_PUBLISH_BATCH:
		return pcb_publish_batch(ep, uarg);
	case PCB_IOC_SET_FILTER:
		return pcb_set_filter(ep, uarg);
	case PCB_IOC_SUB_INFO:
		return pcb_sub_info(ep, uarg);
	case PCB_IOC_STATS:
		return pcb_stats_ioctl(ep->bus, uarg);
	default:
		return -ENOTTY;
	}
}

static __poll_t pcb_poll(struct file *file, poll_table *wait)
{
	struct pcb_endpoint *ep = file->private_data;
	struct pcb_ring *ring = pcb_ep_ring(ep);

	if (!ring)
		return EPOLLERR;

	poll_wait(file, &ring->data_wq, wait);
	/* A consumer about to sleep has presumably made room. */
	pcb_endpoint_notify(ep);
	pcb_ring_want_wakeup(ring);
	if (pcb_ring_is_broken(ring))
		return EPOLLERR;
	return pcb_ring_readable(ring) ? EPOLLIN | EPOLLRDNORM : 0;
}

static int pcb_mmap(struct file *file, struct vm_area_struct *vma)
{
	struct pcb_endpoint *ep = file->private_data;
	struct pcb_ring *ring = pcb_ep_ring(ep);

	if (!ring)
		return -EBADFD;
	return pcb_ring_mmap(ring, vma);
}

const struct file_operations pcb_fops = {
	.owner		= THIS_MODULE,
	.open		= pcb_open,
	.release	= pcb_release,
	.unlocked_ioctl	= pcb_ioctl,
	.compat_ioctl	= compat_ptr_ioctl,
	.poll		= pcb_poll,
	.mmap		= pcb_mmap,
	.uring_cmd	= pcb_uring_cmd,
	.llseek		= noop_llseek,
};
