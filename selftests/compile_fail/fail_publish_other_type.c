// SPDX-License-Identifier: GPL-2.0
/* Publishing a struct other on a struct point topic: must not compile. */
#include "typed.h"

int publish_wrong(struct pcb_topic_point *t);

int publish_wrong(struct pcb_topic_point *t)
{
	struct other o = { 1 };

	return pcb_publish_typed(t, &o, 0, 0, NULL);
}
