/* SPDX-License-Identifier: LGPL-2.1-or-later OR MIT */
/*
 * libpcb internals shared by the library's source files.
 */
#ifndef LIBPCB_INTERNAL_H
#define LIBPCB_INTERNAL_H

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <sys/ioctl.h>

#include "libpcb.h"

/* Everything else is hidden by -fvisibility=hidden. */
#define PCB_EXPORT	__attribute__((visibility("default")))

struct pcb {
	int fd;

	/* The ring, once pcb_ring_setup() has mapped it; NULL before. */
	struct pcb_ring_consumer *cons;		/* the one writable page */
	const struct pcb_ring_header *hdr;
	const unsigned char *data;		/* mapped twice in a row */
	uint64_t data_size;
	uint64_t mask;				/* data_size - 1 */

	/*
	 * The consumer position: this library is the only writer of
	 * cons->cons_pos, so it keeps its own copy and never reads it back.
	 */
	uint64_t cons_pos;
	/* prod_pos as last loaded, to skip the load while records remain. */
	uint64_t prod_seen;

	/* The receive filter (pcb_set_recv_filter()), or NULL. */
	pcb_recv_filter_fn recv_filter;
	void *recv_filter_arg;
	uint64_t recv_skipped;
	/*
	 * The position of the message pcb_peek() last returned, so that it
	 * is returned again without asking the filter twice; valid while
	 * @shown is true (positions only grow, so a stale one never matches
	 * cons_pos again).
	 */
	uint64_t shown_pos;
	bool shown;

	/*
	 * CLOCK_MONOTONIC of this process's time namespace minus the
	 * kernel's (which record->tsc counts in), read at ring setup.
	 */
	int64_t mono_offset_ns;

	void *cons_map;
	size_t cons_map_len;
	void *ro_map;
	size_t ro_map_len;
};

/* ioctl(2) with the result as 0 or a negative errno. */
static inline int pcb_ioctl(const struct pcb *bus, unsigned long req, void *arg)
{
	return ioctl(bus->fd, req, arg) < 0 ? -errno : 0;
}

/* Copy a topic name into an ABI name buffer: -ENAMETOOLONG if it won't fit. */
static inline int pcb_copy_name(char dst[PCB_NAME_MAX], const char *name)
{
	size_t len;

	if (!name)
		return -EINVAL;
	len = strnlen(name, PCB_NAME_MAX);
	if (len == PCB_NAME_MAX)
		return -ENAMETOOLONG;
	memcpy(dst, name, len + 1);
	return 0;
}

/*
 * latency.c: the rank of the @p-th percentile among @count values
 * (nearest rank, 1 .. @count), for both kinds of histogram.
 */
uint64_t pcb_percentile_rank(uint64_t count, double p);

/*
 * latency.c: how far this process's CLOCK_MONOTONIC is ahead of the
 * initial time namespace's, in ns (0 outside a time namespace).
 */
int64_t pcb_mono_offset_ns(void);

#endif /* LIBPCB_INTERNAL_H */
