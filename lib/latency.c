// SPDX-License-Identifier: LGPL-2.1-or-later OR MIT
/*
 * The bus clock and one-way latency: what record->tsc counts, how far a
 * record is from now, and a consumer-side histogram of those distances.
 *
 * The histogram is log-linear, like an HDR histogram with one significant
 * hex digit: values below PCB_LAT_SUB each have a bucket of their own;
 * above, every power of two [2^e, 2^(e+1)) is split into PCB_LAT_SUB
 * buckets of width 2^(e - PCB_LAT_SUB_BITS).  A bucket is then never
 * wider than 1/PCB_LAT_SUB of the values it holds.
 */
#include <stdio.h>
#include <time.h>

#include "internal.h"

PCB_EXPORT uint32_t pcb_tsc_khz(const struct pcb *bus)
{
	if (!bus || !bus->hdr)
		return 0;
	return __atomic_load_n(&bus->hdr->tsc_khz, __ATOMIC_RELAXED);
}

PCB_EXPORT uint32_t pcb_clock(const struct pcb *bus)
{
	uint32_t clock;

	if (!bus || !bus->hdr)
		return 0;
	clock = __atomic_load_n(&bus->hdr->clock, __ATOMIC_RELAXED);
	/* Before the header had @clock, a non-zero tsc_khz meant the TSC. */
	if (!clock && pcb_tsc_khz(bus))
		return PCB_CLOCK_TSC;
	return clock;
}

/*
 * A time namespace shifts CLOCK_MONOTONIC for the processes in it, but
 * not the kernel's clock that record->tsc counts.  The shift is in
 * /proc/self/timens_offsets ("monotonic SECS NSECS"), absent on kernels
 * without time namespaces.
 */
int64_t pcb_mono_offset_ns(void)
{
	long long secs, nsecs;
	char line[128];
	int64_t off = 0;
	FILE *f;

	f = fopen("/proc/self/timens_offsets", "re");
	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "monotonic %lld %lld", &secs, &nsecs) == 2)
			off = (int64_t)secs * 1000000000 + nsecs;
	fclose(f);
	return off;
}

static uint64_t monotonic_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

/* Now on the bus clock: 0 when this process cannot read it. */
static uint64_t clock_now(const struct pcb *bus, uint32_t clock)
{
	switch (clock) {
	case PCB_CLOCK_TSC:
		return pcb_tsc();
	case PCB_CLOCK_MONO:
		return monotonic_ns() - (uint64_t)bus->mono_offset_ns;
	default:
		return 0;
	}
}

PCB_EXPORT int pcb_msg_latency_ns(const struct pcb *bus,
				  const struct pcb_msg *msg, uint64_t *ns)
{
	uint32_t clock = pcb_clock(bus);
	uint64_t khz = pcb_tsc_khz(bus);
	uint64_t now, delta;

	if (!msg || !ns)
		return -EINVAL;
	/* Read the clock after the record: pcb_tsc() has the lfence. */
	now = clock_now(bus, clock);
	if (!now || (clock == PCB_CLOCK_TSC && !khz))
		return -EOPNOTSUPP;
	if (now < msg->rec->tsc)
		return -ERANGE;
	delta = now - msg->rec->tsc;
	if (clock == PCB_CLOCK_MONO) {
		*ns = delta;
		return 0;
	}
	/* Split so that cycles * 10^6 cannot overflow. */
	*ns = delta / khz * 1000000 + delta % khz * 1000000 / khz;
	return 0;
}

/* ------------------------------------------------------------------ */
/* The consumer-side histogram                                        */
/* ------------------------------------------------------------------ */

static unsigned int lat_bucket(uint64_t ns)
{
	unsigned int e, shift;

	if (ns < PCB_LAT_SUB)
		return (unsigned int)ns;
	e = 63 - (unsigned int)__builtin_clzll(ns);	/* PCB_LAT_SUB_BITS .. 63 */
	shift = e - PCB_LAT_SUB_BITS;
	return PCB_LAT_SUB + shift * PCB_LAT_SUB +
	       (unsigned int)((ns >> shift) & (PCB_LAT_SUB - 1));
}

/* The smallest and the largest value bucket @i holds. */
static void lat_bucket_range(unsigned int i, uint64_t *lo, uint64_t *hi)
{
	unsigned int shift;
	uint64_t sub;

	if (i < PCB_LAT_SUB) {
		*lo = *hi = i;
		return;
	}
	shift = (i - PCB_LAT_SUB) / PCB_LAT_SUB;
	sub = (i - PCB_LAT_SUB) % PCB_LAT_SUB;
	*lo = (PCB_LAT_SUB + sub) << shift;
	*hi = *lo + ((1ULL << shift) - 1);
}

PCB_EXPORT void pcb_lat_hist_init(struct pcb_lat_hist *h)
{
	if (h)
		memset(h, 0, sizeof(*h));
}

PCB_EXPORT void pcb_lat_hist_add(struct pcb_lat_hist *h, uint64_t ns)
{
	if (!h)
		return;
	if (!h->count || ns < h->min_ns)
		h->min_ns = ns;
	if (ns > h->max_ns)
		h->max_ns = ns;
	if (__builtin_add_overflow(h->sum_ns, ns, &h->sum_ns))
		h->sum_ns = UINT64_MAX;
	h->count++;
	h->buckets[lat_bucket(ns)]++;
}

PCB_EXPORT int pcb_lat_hist_record(const struct pcb *bus,
				   struct pcb_lat_hist *h,
				   const struct pcb_msg *msg)
{
	uint64_t ns;
	int ret;

	if (!h)
		return -EINVAL;
	ret = pcb_msg_latency_ns(bus, msg, &ns);
	if (ret) {
		if (ret != -EINVAL)
			h->failed++;
		return ret;
	}
	pcb_lat_hist_add(h, ns);
	return 0;
}

PCB_EXPORT void pcb_lat_hist_merge(struct pcb_lat_hist *dst,
				   const struct pcb_lat_hist *src)
{
	unsigned int i;

	if (!dst || !src || dst == src)
		return;
	if (src->count) {
		if (!dst->count || src->min_ns < dst->min_ns)
			dst->min_ns = src->min_ns;
		if (src->max_ns > dst->max_ns)
			dst->max_ns = src->max_ns;
	}
	if (__builtin_add_overflow(dst->sum_ns, src->sum_ns, &dst->sum_ns))
		dst->sum_ns = UINT64_MAX;
	dst->count += src->count;
	dst->failed += src->failed;
	for (i = 0; i < PCB_LAT_HIST_BUCKETS; i++)
		dst->buckets[i] += src->buckets[i];
}

/*
 * The rank of the @p-th percentile among @count values, 1 .. @count
 * (nearest rank: the smallest value with at least p% of them at or
 * below it).  @p is taken to 4 decimals, in integers, so that 99.9% of
 * 1000 values is the 999th exactly.
 */
uint64_t pcb_percentile_rank(uint64_t count, double p)
{
	unsigned __int128 r;
	uint64_t ppm;

	if (!(p > 0))		/* also NaN */
		return 1;
	if (p >= 100)
		return count;
	ppm = (uint64_t)(p * 10000.0 + 0.5);	/* millionths */
	r = ((unsigned __int128)count * ppm + 999999) / 1000000;
	return r ? (uint64_t)r : 1;
}

PCB_EXPORT uint64_t pcb_lat_hist_percentile(const struct pcb_lat_hist *h,
					    double p)
{
	uint64_t rank, seen = 0, lo, hi;
	unsigned int i;

	if (!h || !h->count)
		return 0;
	rank = pcb_percentile_rank(h->count, p);
	/* The ends are known exactly. */
	if (rank == 1)
		return h->min_ns;
	if (rank == h->count)
		return h->max_ns;
	for (i = 0; i < PCB_LAT_HIST_BUCKETS; i++) {
		seen += h->buckets[i];
		if (seen >= rank)
			break;
	}
	if (i == PCB_LAT_HIST_BUCKETS)	/* buckets changed behind our back */
		return h->max_ns;
	lat_bucket_range(i, &lo, &hi);
	/* The bucket's top, but no further out than what was seen. */
	if (hi > h->max_ns)
		hi = h->max_ns;
	if (hi < h->min_ns)
		hi = h->min_ns;
	return hi < lo ? lo : hi;
}

PCB_EXPORT void pcb_lat_hist_summary(const struct pcb_lat_hist *h,
				     struct pcb_lat_summary *s)
{
	if (!s)
		return;
	memset(s, 0, sizeof(*s));
	if (!h || !h->count)
		return;
	s->count = h->count;
	s->min_ns = h->min_ns;
	s->mean_ns = h->sum_ns / h->count;
	s->p50_ns = pcb_lat_hist_percentile(h, 50);
	s->p90_ns = pcb_lat_hist_percentile(h, 90);
	s->p99_ns = pcb_lat_hist_percentile(h, 99);
	s->p999_ns = pcb_lat_hist_percentile(h, 99.9);
	s->max_ns = h->max_ns;
}
