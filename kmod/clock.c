// SPDX-License-Identifier: GPL-2.0
/*
 * The bus clock: the TSC where it is a clock, CLOCK_MONOTONIC elsewhere.
 * Records carry it (record->tsc) and the publish-path accounting uses it.
 */
#include <linux/math64.h>
#include <linux/moduleparam.h>
#include <linux/string.h>
#include <linux/ktime.h>
#include <asm/tsc.h>

#include "internal.h"

static char *pcb_clock_name = "auto";
module_param_named(clock, pcb_clock_name, charp, 0444);
MODULE_PARM_DESC(clock, "Bus clock: auto (TSC if usable), tsc or mono");

/* Set once at load, before the device exists. */
u32 pcb_clock __read_mostly;
u32 pcb_clock_khz __read_mostly;

/*
 * A TSC is a clock when it ticks at a constant rate, also in idle, and the
 * kernel has not found it unstable (e.g. out of step between CPUs).
 */
static bool tsc_usable(void)
{
	return boot_cpu_has(X86_FEATURE_CONSTANT_TSC) &&
	       boot_cpu_has(X86_FEATURE_NONSTOP_TSC) &&
	       !check_tsc_unstable() && tsc_khz;
}

int pcb_clock_init(void)
{
	bool tsc;

	if (!strcmp(pcb_clock_name, "auto"))
		tsc = tsc_usable();
	else if (!strcmp(pcb_clock_name, "tsc"))
		tsc = boot_cpu_has(X86_FEATURE_TSC) && tsc_khz;
	else if (!strcmp(pcb_clock_name, "mono"))
		tsc = false;
	else
		return -EINVAL;
	if (!tsc && !strcmp(pcb_clock_name, "tsc"))
		return -EINVAL;

	pcb_clock = tsc ? PCB_CLOCK_TSC : PCB_CLOCK_MONO;
	pcb_clock_khz = tsc ? tsc_khz : 0;
	pr_info("bus clock: %s%s\n", tsc ? "TSC" : "CLOCK_MONOTONIC",
		tsc || !strcmp(pcb_clock_name, "mono") ? "" :
		" (the TSC is not usable as a clock here)");
	return 0;
}

/* A difference of two pcb_clock_now() readings, in nanoseconds. */
u64 pcb_clock_ns(u64 delta)
{
	if (pcb_clock != PCB_CLOCK_TSC)
		return delta;
	return mul_u64_u32_div(delta, USEC_PER_SEC, pcb_clock_khz);
}
