// SPDX-License-Identifier: LGPL-2.1-or-later OR MIT
/*
 * Publishing through a handle from pcb_topic_open().
 */
#include "internal.h"

/* What a publish takes besides the handle and the payload. */
struct pub_args {
	uint64_t key;
	uint64_t timeout_ns;
	uint32_t flags;
	unsigned int nr_deps;
	const uint64_t *deps;
};

static int publish(struct pcb *bus, int handle, const void *buf, size_t len,
		   const struct pub_args *a, uint64_t *msg_id)
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
	arg.flags = a->flags;
	arg.payload = (uintptr_t)buf;
	arg.len = (uint32_t)len;
	arg.key = a->key;
	arg.timeout_ns = a->timeout_ns;
	/* Too many: the kernel says EINVAL, which is documented. */
	arg.nr_deps = a->nr_deps;
	arg.deps = (uintptr_t)a->deps;

	ret = pcb_ioctl(bus, PCB_IOC_PUBLISH, &arg);
	if (!ret && msg_id)
		*msg_id = arg.msg_id;
	return ret;
}

PCB_EXPORT int pcb_publish(struct pcb *bus, int handle, const void *buf,
			   size_t len, uint64_t key, uint64_t timeout_ns,
			   uint64_t *msg_id)
{
	struct pub_args a = { .key = key, .timeout_ns = timeout_ns };

	return publish(bus, handle, buf, len, &a, msg_id);
}

PCB_EXPORT int pcb_try_publish(struct pcb *bus, int handle, const void *buf,
			       size_t len, uint64_t key, uint64_t *msg_id)
{
	struct pub_args a = { .key = key, .flags = PCB_PUB_NONBLOCK };

	return publish(bus, handle, buf, len, &a, msg_id);
}

PCB_EXPORT int pcb_publish_deps(struct pcb *bus, int handle, const void *buf,
				size_t len, uint64_t key, const uint64_t *deps,
				unsigned int nr_deps, uint64_t timeout_ns,
				uint64_t *msg_id)
{
	struct pub_args a = {
		.key = key,
		.timeout_ns = timeout_ns,
		.nr_deps = nr_deps,
		.deps = deps,
	};

	return publish(bus, handle, buf, len, &a, msg_id);
}

PCB_EXPORT int pcb_try_publish_deps(struct pcb *bus, int handle,
				    const void *buf, size_t len, uint64_t key,
				    const uint64_t *deps, unsigned int nr_deps,
				    uint64_t *msg_id)
{
	struct pub_args a = {
		.key = key,
		.flags = PCB_PUB_NONBLOCK,
		.nr_deps = nr_deps,
		.deps = deps,
	};

	return publish(bus, handle, buf, len, &a, msg_id);
}

PCB_EXPORT int pcb_publish_batch_deps(struct pcb *bus,
				      struct pcb_batch_entry *entries,
				      unsigned int count, uint32_t flags,
				      uint64_t timeout_ns,
				      const uint64_t *deps,
				      unsigned int nr_deps)
{
	struct pcb_publish_batch arg = { 0 };
	int ret;

	if (!bus)
		return -EINVAL;
	arg.entries = (uintptr_t)entries;
	arg.count = count;
	arg.flags = flags;
	arg.timeout_ns = timeout_ns;
	arg.nr_deps = nr_deps;
	arg.deps = (uintptr_t)deps;

	ret = pcb_ioctl(bus, PCB_IOC_PUBLISH_BATCH, &arg);
	/* At most PCB_BATCH_MAX: always fits. */
	return ret ? ret : (int)arg.published;
}

PCB_EXPORT int pcb_publish_batch(struct pcb *bus, struct pcb_batch_entry *entries,
				 unsigned int count, uint32_t flags,
				 uint64_t timeout_ns)
{
	return pcb_publish_batch_deps(bus, entries, count, flags, timeout_ns,
				      NULL, 0);
}
