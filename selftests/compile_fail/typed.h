/* SPDX-License-Identifier: GPL-2.0 */
/* The typed topics the compile_fail programs use. */
#ifndef COMPILE_FAIL_TYPED_H
#define COMPILE_FAIL_TYPED_H

#include <libpcb.h>

struct point {
	int32_t x, y;
};

struct other {
	uint64_t v;
};

PCB_DEFINE_TOPIC(point, struct point, 0x706f696e74ULL)
PCB_DEFINE_TOPIC(other, struct other, 0x6f74686572ULL)

#endif
