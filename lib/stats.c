// SPDX-License-Identifier: LGPL-2.1-or-later OR MIT
/*
 * The bus's statistics (PCB_IOC_STATS) and its publish-path histograms.
 */
#include "internal.h"

PCB_EXPORT int pcb_stats(struct pcb *bus, uint32_t topic_id,
			 struct pcb_stats *out)
{
	struct pcb_stats_query q = { 0 };
	int ret;

	if (!bus || !out)
		return -EINVAL;
	/* What an older kernel does not fill stays 0. */
	memset(out, 0, sizeof(*out));
	q.stats = (uintptr_t)out;
	q.size = sizeof(*out);
	q.topic_id = topic_id;
	ret = pcb_ioctl(bus, PCB_IOC_STATS, &q);
	if (ret)
		return ret;
	if (q.size < PCB_STATS_SIZE_V1 || q.size > sizeof(*out) ||
	    !out->version)
		return -EPROTO;
	return 0;
}

PCB_EXPORT uint64_t pcb_hist_bucket_max(unsigned int i)
{
	if (i >= PCB_HIST_BUCKETS - 1)
		return UINT64_MAX;
	return i ? (1ULL << i) - 1 : 0;
}

static uint64_t bucket_min(unsigned int i)
{
	return i ? 1ULL << (i - 1) : 0;
}

PCB_EXPORT uint64_t pcb_hist_total(const struct pcb_hist *h)
{
	uint64_t n = 0;
	unsigned int i;

	if (!h)
		return 0;
	for (i = 0; i < PCB_HIST_BUCKETS; i++)
		n += h->buckets[i];
	return n;
}

PCB_EXPORT uint64_t pcb_hist_percentile(const struct pcb_hist *h, double p)
{
	uint64_t total = pcb_hist_total(h), rank, seen = 0, v;
	unsigned int i;

	if (!total)
		return 0;
	rank = pcb_percentile_rank(total, p);
	for (i = 0; i < PCB_HIST_BUCKETS - 1; i++) {
		seen += h->buckets[i];
		if (seen >= rank)
			break;
	}
	/*
	 * The bucket's top, but not above the largest value seen; not below
	 * the bucket's bottom either, should @max_ns lag behind the buckets
	 * (they are summed while publishers add to them).
	 */
	v = pcb_hist_bucket_max(i);
	if (v > h->max_ns)
		v = h->max_ns;
	return v < bucket_min(i) ? bucket_min(i) : v;
}
