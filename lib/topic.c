// SPDX-License-Identifier: LGPL-2.1-or-later OR MIT
/*
 * Topics: create, delete, look up, list, open and close for publishing.
 */
#include "internal.h"

PCB_EXPORT int pcb_topic_create(struct pcb *bus, const char *name,
				const struct pcb_topic_opts *opts,
				uint32_t *topic_id)
{
	static const struct pcb_topic_opts defaults = PCB_TOPIC_OPTS_DEFAULT;
	struct pcb_topic_create arg = { 0 };
	int ret;

	if (!bus)
		return -EINVAL;
	ret = pcb_copy_name(arg.name, name);
	if (ret)
		return ret;
	if (!opts)
		opts = &defaults;
	arg.schema_id = opts->schema_id;
	arg.max_msg_size = opts->max_msg_size;
	arg.mode = opts->mode;
	arg.uid = opts->uid;
	arg.gid = opts->gid;
	arg.flags = opts->flags;

	ret = pcb_ioctl(bus, PCB_IOC_TOPIC_CREATE, &arg);
	if (!ret && topic_id)
		*topic_id = arg.topic_id;
	return ret;
}

PCB_EXPORT int pcb_topic_delete(struct pcb *bus, const char *name)
{
	struct pcb_topic_name arg = { 0 };
	int ret;

	if (!bus)
		return -EINVAL;
	ret = pcb_copy_name(arg.name, name);
	if (ret)
		return ret;
	return pcb_ioctl(bus, PCB_IOC_TOPIC_DELETE, &arg);
}

PCB_EXPORT int pcb_topic_info(struct pcb *bus, const char *name,
			      struct pcb_topic_info *info)
{
	struct pcb_topic_info arg = { 0 };
	int ret;

	if (!bus || !info)
		return -EINVAL;
	ret = pcb_copy_name(arg.name, name);
	if (ret)
		return ret;
	ret = pcb_ioctl(bus, PCB_IOC_TOPIC_INFO, &arg);
	if (!ret)
		*info = arg;
	return ret;
}

/* Topics fetched per TOPIC_LIST call: 32 entries are 5 KiB of stack. */
#define LIST_BATCH	32

PCB_EXPORT int pcb_topic_list(struct pcb *bus, pcb_topic_cb cb, void *arg)
{
	struct pcb_topic_info entries[LIST_BATCH];
	struct pcb_topic_list list = { 0 };
	int seen = 0;
	uint32_t i;
	int ret;

	if (!bus || !cb)
		return -EINVAL;
	list.start_id = 0;
	do {
		list.entries = (uintptr_t)entries;
		list.capacity = LIST_BATCH;
		ret = pcb_ioctl(bus, PCB_IOC_TOPIC_LIST, &list);
		if (ret)
			return ret;
		if (list.count > LIST_BATCH)
			return -EPROTO;
		for (i = 0; i < list.count; i++) {
			ret = cb(&entries[i], arg);
			if (ret)
				return ret;
			seen++;
		}
		/* A next_id that does not move forward would loop forever. */
		if (list.next_id && list.next_id <= list.start_id)
			return -EPROTO;
		list.start_id = list.next_id;
	} while (list.start_id);
	return seen;
}

PCB_EXPORT int pcb_topic_open(struct pcb *bus, const char *name,
			      uint64_t schema_id)
{
	struct pcb_topic_open arg = { 0 };
	int ret;

	if (!bus)
		return -EINVAL;
	ret = pcb_copy_name(arg.name, name);
	if (ret)
		return ret;
	arg.schema_id = schema_id;
	ret = pcb_ioctl(bus, PCB_IOC_TOPIC_OPEN, &arg);
	if (ret)
		return ret;
	/* Handles are below PCB_MAX_HANDLES, so they fit an int. */
	return (int)arg.handle;
}

PCB_EXPORT int pcb_topic_close(struct pcb *bus, int handle)
{
	struct pcb_topic_close arg = { 0 };

	if (!bus)
		return -EINVAL;
	/* A negative handle is never open: let the kernel say EBADF. */
	arg.handle = (uint32_t)handle;
	return pcb_ioctl(bus, PCB_IOC_TOPIC_CLOSE, &arg);
}
