// SPDX-License-Identifier: GPL-2.0
/*
 * pcb - Phase Coherence Bus: a local publish/subscribe message bus.
 * Module init and exit, the misc device and the module parameters.
 */
#include <linux/miscdevice.h>
#include <linux/module.h>
#include <linux/moduleparam.h>
#include <linux/rcupdate.h>
#include <linux/workqueue.h>

#include "internal.h"

unsigned int pcb_max_topics = 4096;
module_param_named(max_topics, pcb_max_topics, uint, 0644);
MODULE_PARM_DESC(max_topics, "Topics over all buses at most (ENOSPC beyond)");

unsigned int pcb_max_subscribers = 256;
module_param_named(max_subscribers, pcb_max_subscribers, uint, 0644);
MODULE_PARM_DESC(max_subscribers, "Subscriptions per topic at most (ENOSPC beyond)");

unsigned int pcb_max_msg_size = 1 << 20;
module_param_named(max_msg_size, pcb_max_msg_size, uint, 0644);
MODULE_PARM_DESC(max_msg_size, "Largest max_msg_size a topic may have, bytes");

unsigned int pcb_max_ring_size = 64 << 20;
module_param_named(max_ring_size, pcb_max_ring_size, uint, 0644);
MODULE_PARM_DESC(max_ring_size, "Largest ring data area, bytes");

/*
 * Frees rings after an RCU grace period (vunmap cannot run in softirq), and
 * reaps buses of dead IPC namespaces.
 */
struct workqueue_struct *pcb_wq;

static struct miscdevice pcb_misc = {
	.minor	= MISC_DYNAMIC_MINOR,
	.name	= "pcb",
	.fops	= &pcb_fops,
	/* Topics carry their own permissions; the shipped udev rule narrows it. */
	.mode	= 0666,
};

static int __init pcb_init(void)
{
	int ret;

	ret = pcb_clock_init();
	if (ret)
		return ret;
	pcb_wq = alloc_workqueue("pcb", WQ_UNBOUND, 0);
	if (!pcb_wq)
		return -ENOMEM;
	ret = pcb_proc_init();
	if (ret)
		goto err_wq;

	ret = misc_register(&pcb_misc);
	if (ret)
		goto err_proc;
	return 0;

err_proc:
	pcb_proc_exit();
err_wq:
	destroy_workqueue(pcb_wq);
	return ret;
}

static void __exit pcb_exit(void)
{
	misc_deregister(&pcb_misc);
	pcb_proc_exit();
	pcb_buses_destroy_all();
	/* Queued ring frees run from RCU callbacks: let them all finish. */
	rcu_barrier();
	destroy_workqueue(pcb_wq);
}

module_init(pcb_init);
module_exit(pcb_exit);

MODULE_DESCRIPTION("pcb: Phase Coherence Bus, a local publish/subscribe bus");
MODULE_LICENSE("GPL");
