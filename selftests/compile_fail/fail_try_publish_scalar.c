// SPDX-License-Identifier: GPL-2.0
/* pcb_try_publish_typed() of an int on a struct point topic: must not compile. */
#include "typed.h"

int try_publish_wrong(struct pcb_topic_point *t);

int try_publish_wrong(struct pcb_topic_point *t)
{
	int x = 1;

	return pcb_try_publish_typed(t, &x, 0, NULL);
}
