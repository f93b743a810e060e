// SPDX-License-Identifier: GPL-2.0
/* Every typed-topic operation with the right types: must compile cleanly. */
#include "typed.h"

int use_typed(struct pcb *bus, struct pcb *rx);

int use_typed(struct pcb *bus, struct pcb *rx)
{
	struct pcb_topic_point tx, sub;
	const struct point cp = { 1, 2 };
	struct point p = { 3, 4 }, copy;
	const struct point *view;
	struct pcb_msg msg;
	uint64_t id;
	int ret;

	ret = pcb_topic_point_create(bus, "p", NULL);
	ret = ret ?: pcb_topic_point_open(&tx, bus, "p");
	ret = ret ?: pcb_topic_point_subscribe(&sub, rx, "p", 0);
	ret = ret ?: pcb_publish_typed(&tx, &p, 0, 0, &id);
	/* Qualifiers of the message do not matter. */
	ret = ret ?: pcb_publish_typed(&tx, &cp, 0, 0, NULL);
	ret = ret ?: pcb_try_publish_typed(&tx, &p, 0, NULL);
	if (ret)
		return ret;
	if (pcb_receive(rx, &msg, 0) == 1) {
		view = pcb_msg_typed(&sub, &msg);
		ret = pcb_msg_read_typed(&sub, &msg, &copy);
		pcb_release(rx, &msg);
		if (!view)
			return -1;
	}
	return ret ?: pcb_topic_point_close(&tx);
}
