// SPDX-License-Identifier: GPL-2.0
/* Reading a struct point topic's message into a struct other: must not compile. */
#include "typed.h"

int read_wrong(struct pcb_topic_point *t, const struct pcb_msg *msg);

int read_wrong(struct pcb_topic_point *t, const struct pcb_msg *msg)
{
	struct other o;

	return pcb_msg_read_typed(t, msg, &o);
}
