// SPDX-License-Identifier: GPL-2.0
/*
 * Passing a pointer to the pointer (which would publish the pointer's
 * bytes): must not compile.
 */
#include "typed.h"

int publish_pointer(struct pcb_topic_point *t, struct point *p);

int publish_pointer(struct pcb_topic_point *t, struct point *p)
{
	return pcb_publish_typed(t, &p, 0, 0, NULL);
}
