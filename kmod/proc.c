// SPDX-License-Identifier: GPL-2.0
/*
 * /proc/pcb: a read-only view of the bus for operators, one line per
 * topic (topics) and per subscription (subscriptions) of the reader's IPC
 * namespace's bus, like /proc/net/unix; and what the module holds over all
 * buses (usage, root only).  Owners and pids are shown as the reader's
 * namespaces see them.  A topic's traffic (its counts, its subscriptions)
 * is shown only to those who may see it, judged with the credentials that
 * opened the file.
 */
#include <linux/cred.h>
#include <linux/pid.h>
#include <linux/pid_namespace.h>
#include <linux/proc_fs.h>
#include <linux/seq_file.h>

#include "internal.h"

static struct proc_dir_entry *pcb_proc_dir;

static void topics_show_bus(struct seq_file *m, struct pcb_bus *bus)
{
	struct user_namespace *ns = seq_user_ns(m);
	const struct cred *old;
	struct pcb_topic *t;
	unsigned long id;

	/* Rights as the opener had them, not as whoever reads. */
	old = override_creds(m->file->f_cred);
	mutex_lock(&bus->lock);
	xa_for_each(&bus->topics, id, t) {
		seq_printf(m, "%u %s %#llx %u %04o %u %u ", t->id, t->name,
			   t->schema_id, t->max_msg_size, t->mode,
			   from_kuid_munged(ns, t->uid),
			   from_kgid_munged(ns, t->gid));
		if (pcb_topic_may_see(t))
			seq_printf(m, "%u %llu\n", READ_ONCE(t->nr_subs),
				   READ_ONCE(t->seq));
		else
			seq_puts(m, "- -\n");
	}
	mutex_unlock(&bus->lock);
	revert_creds(old);
}

static int topics_show(struct seq_file *m, void *v)
{
	struct pcb_bus *bus = pcb_bus_get(false);

	seq_puts(m, "id name schema max_msg_size mode uid gid subscriptions published\n");
	if (bus) {
		topics_show_bus(m, bus);
		pcb_bus_put(bus);
	}
	return 0;
}

static void sub_show(struct seq_file *m, struct pcb_sub *sub)
{
	struct pid_namespace *pid_ns = proc_pid_ns(file_inode(m->file)->i_sb);
	struct pcb_topic *t = sub->topic;
	u64 delivered, dropped, rejected;
	unsigned int nr_preds;

	/* One snapshot: the counters move under the topic's lock. */
	spin_lock(&t->lock);
	nr_preds = pcb_filter_nr_preds(pcb_sub_filter(sub));
	delivered = sub->delivered;
	dropped = sub->dropped;
	rejected = sub->rejected;
	spin_unlock(&t->lock);

	seq_printf(m, "%u %s %llu %d %s %u %u %llu %llu %llu %llu\n", t->id,
		   t->name, sub->ep->id, pid_nr_ns(sub->ep->owner, pid_ns),
		   pcb_sub_is_reliable(sub) ? "reliable" : "lossy", nr_preds,
		   sub->ring->size, pcb_ring_used_now(sub->ring), delivered,
		   dropped, rejected);
}

static int subscriptions_show(struct seq_file *m, void *v)
{
	struct pcb_bus *bus = pcb_bus_get(false);
	const struct cred *old;
	struct pcb_topic *t;
	struct pcb_sub *sub;
	unsigned long id;

	seq_puts(m, "topic name endpoint pid mode filter_preds ring_size ring_used delivered dropped rejected\n");
	if (!bus)
		return 0;
	/* Rights as the opener had them, not as whoever reads. */
	old = override_creds(m->file->f_cred);
	mutex_lock(&bus->lock);
	/* Subscription lists change under bus->lock only. */
	xa_for_each(&bus->topics, id, t) {
		if (!pcb_topic_may_see(t))
			continue;
		list_for_each_entry(sub, &t->subs, topic_node)
			sub_show(m, sub);
	}
	mutex_unlock(&bus->lock);
	revert_creds(old);
	pcb_bus_put(bus);
	return 0;
}

int pcb_proc_init(void)
{
	pcb_proc_dir = proc_mkdir("pcb", NULL);
	if (!pcb_proc_dir)
		return -ENOMEM;
	if (!proc_create_single("topics", 0444, pcb_proc_dir, topics_show) ||
	    !proc_create_single("subscriptions", 0444, pcb_proc_dir,
				subscriptions_show) ||
	    !proc_create_single("usage", 0400, pcb_proc_dir, pcb_usage_show)) {
		proc_remove(pcb_proc_dir);
		return -ENOMEM;
	}
	return 0;
}

void pcb_proc_exit(void)
{
	proc_remove(pcb_proc_dir);
}
