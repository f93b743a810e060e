// SPDX-License-Identifier: LGPL-2.1-or-later OR MIT
/*
 * Publishing through a handle from pcb_topic_open().
 */
#include "internal.h"

static int publish(struct pcb *bus, int handle, const void *buf, size_t len,
		   uint64_t key, uint64_t timeout_ns, uint32_t flags,
		   uint64_t *msg_id)
{
	struct pcb_publish arg = { 0 };
	int ret;

	if (!bus)
		return -EINVAL;
	/* The kernel would see a truncated length. */
	if (len > UINT32_MAX)
		return -EMSGSIZE;
	/* A negative handle is never open: let the kernel say EBADF. */
	arg.handle = (uint32_t)handle;
	arg.flags = flags;
	arg.payload = (uintptr_t)buf;
	arg.len = (uint32_t)len;
	arg.key = key;
	arg.timeout_ns = timeout_ns;

	ret = pcb_ioctl(bus, PCB_IOC_PUBLISH, &arg);
	if (!ret && msg_id)
		*msg_id = arg.msg_id;
	return ret;
}

PCB_EXPORT int pcb_publish(struct pcb *bus, int handle, const void *buf,
			   size_t len, uint64_t key, uint64_t timeout_ns,
			   uint64_t *msg_id)
{
	return publish(bus, handle, buf, len, key, timeout_ns, 0, msg_id);
}

PCB_EXPORT int pcb_try_publish(struct pcb *bus, int handle, const void *buf,
			       size_t len, uint64_t key, uint64_t *msg_id)
{
	return publish(bus, handle, buf, len, key, 0, PCB_PUB_NONBLOCK,
		       msg_id);
}

PCB_EXPORT int pcb_publish_batch(struct pcb *bus, struct pcb_batch_entry *entries,
				 unsigned int count, uint32_t flags,
				 uint64_t timeout_ns)
{
	struct pcb_publish_batch arg = { 0 };
	int ret;

	if (!bus)
		return -EINVAL;
	arg.entries = (uintptr_t)entries;
	arg.count = count;
	arg.flags = flags;
	arg.timeout_ns = timeout_ns;

	ret = pcb_ioctl(bus, PCB_IOC_PUBLISH_BATCH, &arg);
	/* At most PCB_BATCH_MAX: always fits. */
	return ret ? ret : (int)arg.published;
}
