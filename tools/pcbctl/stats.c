// SPDX-License-Identifier: GPL-2.0
/*
 * pcbctl stats: the bus's counters and publish-path latency
 * (PCB_IOC_STATS), as a table, as a table of rates refreshed every
 * interval (--watch), as one JSON document, or in the Prometheus text
 * exposition format.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <libpcb.h>

#include "pcbctl.h"

const char stats_usage[] =
"Usage: pcbctl stats [OPTION]... [TOPIC]...\n"
"Show the bus's statistics: a line for the whole bus, then one for each\n"
"TOPIC (default: every topic).  A topic's figures are its traffic: only\n"
"its owner, those with read permission on it and CAP_IPC_OWNER may see\n"
"them; for other topics every figure reads '-' (JSON: \"hidden\": true,\n"
"Prometheus: no series).  Without CAP_IPC_OWNER the bus line sums the\n"
"topics you may see only (the first line then says so; JSON: \"partial\":\n"
"true, Prometheus: pcb_stats_partial 1).\n"
"\n"
"  --watch [SECS]   refresh every SECS seconds (default 1, fractions\n"
"                   allowed), showing counters as rates per second over\n"
"                   the last interval; the first table comes after one\n"
"                   interval.  Ctrl-C stops.  A TOPIC that looks like a\n"
"                   number must then follow '--'\n"
"  --count N        with --watch: stop after N tables\n"
"  --json           print one JSON document (see JSON below)\n"
"  --prometheus     print the Prometheus text exposition format (see\n"
"                   PROMETHEUS below)\n"
"  -h, --help       show this help\n"
"\n"
"TABLE\n"
"  The first line names the bus clock and the number of topics.  The bus\n"
"  line, '(bus)', counts since the bus was created, topics deleted since\n"
"  included (when partial: the topics you may see, since their creation);\n"
"  a topic's line since its creation.  Columns:\n"
"    SUBS         subscriptions now (to the topic; bus: all)\n"
"    PUBLISHED    messages accepted, each with an id\n"
"    BYTES        their payload bytes\n"
"    DELIVERED    records written into subscribers' rings\n"
"    DROP-FULL    records lossy subscriptions missed, their ring full\n"
"    DROP-BROKEN  records not written because a ring is broken\n"
"    REJECTED     records subscriptions' filters rejected\n"
"    BLOCKED      publishes that waited for room in a reliable ring\n"
"    TIMEOUTS     publishes that gave up waiting (ETIMEDOUT)\n"
"    WOULD-BLOCK  nonblocking publishes refused for want of room (EAGAIN)\n"
"    WAKEUPS      wake-ups publishers gave consumers waiting for records\n"
"                 (in PCB_IOC_WAIT, poll() or epoll)\n"
"    FILL         fill level of the fullest ring subscribed (bus: of all)\n"
"    P50 P99 MAX  publish-path cost: from the publish call entering the\n"
"                 kernel to the message's commit into every ring, waits\n"
"                 for room included.  From the kernel's log2 histogram:\n"
"                 P50 and P99 are the top of their bucket (capped by MAX),\n"
"                 so at most twice the true value and never below it;\n"
"                 MAX is exact; '-' before the first publish.  One\n"
"                 value per publish: an atomic batch (pub --batch\n"
"                 --atomic) gives one per topic, whatever its size\n"
"  With --watch, the counters are rates per second over the interval,\n"
"  SUBS and FILL are as they are now, and P50, P99 and MAX come from the\n"
"  publishes of the interval (MAX: its highest bucket's top, capped by\n"
"  the all-time max).\n"
"\n"
"JSON\n"
"  {\"clock\": \"tsc\"|\"mono\", \"tsc_khz\": N, \"bus\": {\"partial\": BOOL,\n"
"   STATS...}, \"topics\": [{\"name\": NAME, \"id\": N, STATS...}, ...]}\n"
"  A topic whose traffic you may not see is {\"name\": NAME, \"id\": N,\n"
"  \"hidden\": true}.\n"
"  where STATS has the members nr_topics, nr_subscriptions, published,\n"
"  bytes, delivered, dropped_full, dropped_broken, rejected, blocked,\n"
"  timeouts, would_block, wakeups, ring_used, ring_size (bytes),\n"
"  ring_fill_max (per mille) and publish_ns: {count, sum, max, p50, p90,\n"
"  p99, buckets}, in nanoseconds.  buckets has 40 counts: bucket 0 counts\n"
"  values of 0, bucket i values from 2^(i-1) to 2^i - 1, the last one\n"
"  everything from 2^38 up.  count is the buckets' sum.\n"
"\n"
"PROMETHEUS\n"
"  The text exposition format (version 0.0.4).  Each topic's series carry\n"
"  a topic=\"NAME\" label; the bus's carry no topic label (so\n"
"  topic!=\"\" selects the topics: the bus also counts topics deleted\n"
"  since, and summing it with them would count messages twice).\n"
"    pcb_clock_info{clock=\"tsc\"|\"mono\",tsc_khz=\"N\"}  gauge, always 1\n"
"    pcb_stats_partial                gauge, bus only: 1 when the bus's\n"
"                                     series sum the visible topics only\n"
"    pcb_topics                       gauge, bus only\n"
"    pcb_subscriptions                gauge\n"
"    pcb_published_total              counter\n"
"    pcb_published_bytes_total        counter\n"
"    pcb_delivered_total              counter\n"
"    pcb_rejected_total               counter\n"
"    pcb_blocked_total                counter\n"
"    pcb_timeouts_total               counter\n"
"    pcb_would_block_total            counter\n"
"    pcb_wakeups_total                counter\n"
"    pcb_ring_used_bytes              gauge\n"
"    pcb_ring_size_bytes              gauge\n"
"    pcb_dropped_total{reason=\"full\"|\"broken\"}  counter\n"
"    pcb_ring_fill_max_ratio          gauge, 0 to 1\n"
"    pcb_publish_latency_seconds      histogram of the publish-path cost,\n"
"                                     with the kernel's buckets: le is\n"
"                                     2^i - 1 ns for i = 0 .. 38, then\n"
"                                     +Inf; _count is the buckets' sum\n"
"\n"
"Counters are summed over CPUs while publishers go on, so two of them\n"
"read together may be a few messages apart.\n";

/*
 * One line: the bus (@id 0, @name "") or a topic.  @hidden: a topic whose
 * traffic the caller may not see (PCB_IOC_STATS said EACCES), @s zero.
 */
struct row {
	char name[PCB_NAME_MAX];
	uint32_t id;
	bool hidden;
	struct pcb_stats s;
};

struct snapshot {
	struct row *rows;	/* rows[0] is the bus */
	size_t n, cap;
	uint64_t when_ns;	/* CLOCK_MONOTONIC */
};

#define ARRAY_SIZE(a)	(sizeof(a) / sizeof((a)[0]))

static const uint64_t NS_PER_SEC = 1000000000;

enum stats_format { FMT_TABLE, FMT_JSON, FMT_PROMETHEUS };

struct stats_opts {
	enum stats_format format;
	char **topics;		/* NULL: every topic */
	int nr_topics;
	uint64_t watch_ns;	/* 0 without --watch */
	uint64_t count;		/* --count, 0: no limit */
};

static uint64_t monotonic_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

/* ------------------------------------------------------------------ */
/* Collecting                                                         */
/* ------------------------------------------------------------------ */

static struct row *add_row(struct snapshot *snap, const char *name,
			   uint32_t id)
{
	struct row *r;

	if (snap->n == snap->cap) {
		size_t cap = snap->cap ? 2 * snap->cap : 16;
		void *v = realloc(snap->rows, cap * sizeof(*snap->rows));

		if (!v)
			return NULL;
		snap->rows = v;
		snap->cap = cap;
	}
	r = &snap->rows[snap->n++];
	memset(r, 0, sizeof(*r));
	snprintf(r->name, sizeof(r->name), "%s", name);
	r->id = id;
	return r;
}

static const struct row *find_row(const struct snapshot *snap, uint32_t id)
{
	size_t i;

	for (i = 0; i < snap->n; i++)
		if (snap->rows[i].id == id)
			return &snap->rows[i];
	return NULL;
}

static int list_topic(const struct pcb_topic_info *info, void *arg)
{
	char name[PCB_NAME_MAX];

	snprintf(name, sizeof(name), "%.*s", PCB_NAME_MAX - 1, info->name);
	return add_row(arg, name, info->topic_id) ? 0 : -ENOMEM;
}

static int name_topics(struct pcb *bus, const struct stats_opts *o,
		       struct snapshot *snap)
{
	struct pcb_topic_info ti;
	int i, ret;

	if (!o->topics) {
		ret = pcb_topic_list(bus, list_topic, snap);
		if (ret < 0)
			error("listing topics: %s", strerror(-ret));
		return ret < 0 ? ret : 0;
	}
	for (i = 0; i < o->nr_topics; i++) {
		ret = pcb_topic_info(bus, o->topics[i], &ti);
		if (ret) {
			error("topic '%s': %s", o->topics[i], topic_strerror(-ret));
			return ret;
		}
		/* Once each: a series appears once in Prometheus' format. */
		if (find_row(snap, ti.topic_id))
			continue;
		if (!add_row(snap, o->topics[i], ti.topic_id))
			return -ENOMEM;
	}
	return 0;
}

/* Why @r's statistics could not be read. */
static int stats_error(const struct row *r, int ret)
{
	if (ret == -ENOTTY)
		error("this pcb module keeps no statistics (PCB_IOC_STATS: %s)",
		      strerror(-ret));
	else if (r->id)
		error("topic '%s': statistics: %s", r->name, topic_strerror(-ret));
	else
		error("bus statistics: %s", strerror(-ret));
	return ret;
}

/*
 * The topics asked for, then the bus: read last, its counters are not
 * behind those of its topics.
 */
static int collect(struct pcb *bus, const struct stats_opts *o,
		   struct snapshot *snap)
{
	size_t i, kept = 1;
	int ret;

	snap->n = 0;
	if (!add_row(snap, "", 0))
		return -ENOMEM;
	ret = name_topics(bus, o, snap);
	if (ret)
		return ret;
	snap->when_ns = monotonic_ns();
	for (i = 1; i < snap->n; i++) {
		struct row *r = &snap->rows[i];

		ret = pcb_stats(bus, r->id, &r->s);
		/* A topic deleted since it was listed is no longer there. */
		if (ret == -ENOENT && !o->topics)
			continue;
		/* Someone else's traffic: the topic exists, its figures are not ours. */
		if (ret == -EACCES) {
			memset(&r->s, 0, sizeof(r->s));
			r->hidden = true;
			ret = 0;
		}
		if (ret)
			return stats_error(r, ret);
		if (kept != i)
			snap->rows[kept] = *r;
		kept++;
	}
	snap->n = kept;
	ret = pcb_stats(bus, 0, &snap->rows[0].s);
	return ret ? stats_error(&snap->rows[0], ret) : 0;
}

/* ------------------------------------------------------------------ */
/* Differences, for --watch                                           */
/* ------------------------------------------------------------------ */

static uint64_t minus(uint64_t now, uint64_t then)
{
	return now > then ? now - then : 0;
}

/*
 * What happened between @then and @now: counters and histogram buckets
 * as differences; gauges and max as they are now.  A topic new since
 * @then counts from 0.
 */
static void row_delta(struct pcb_stats *d, const struct pcb_stats *now,
		      const struct pcb_stats *then)
{
	static const struct pcb_stats zero;
	unsigned int i;

	if (!then)
		then = &zero;
	*d = *now;
	d->published = minus(now->published, then->published);
	d->bytes = minus(now->bytes, then->bytes);
	d->delivered = minus(now->delivered, then->delivered);
	d->dropped_full = minus(now->dropped_full, then->dropped_full);
	d->dropped_broken = minus(now->dropped_broken, then->dropped_broken);
	d->rejected = minus(now->rejected, then->rejected);
	d->blocked = minus(now->blocked, then->blocked);
	d->timeouts = minus(now->timeouts, then->timeouts);
	d->would_block = minus(now->would_block, then->would_block);
	d->wakeups = minus(now->wakeups, then->wakeups);
	d->publish_ns.count = minus(now->publish_ns.count, then->publish_ns.count);
	d->publish_ns.sum_ns = minus(now->publish_ns.sum_ns,
				     then->publish_ns.sum_ns);
	for (i = 0; i < PCB_HIST_BUCKETS; i++)
		d->publish_ns.buckets[i] = minus(now->publish_ns.buckets[i],
						 then->publish_ns.buckets[i]);
}

/* ------------------------------------------------------------------ */
/* The table                                                          */
/* ------------------------------------------------------------------ */

enum column {
	COL_NAME, COL_SUBS, COL_PUBLISHED, COL_BYTES, COL_DELIVERED,
	COL_DROP_FULL, COL_DROP_BROKEN, COL_REJECTED, COL_BLOCKED,
	COL_TIMEOUTS, COL_WOULD_BLOCK, COL_WAKEUPS, COL_FILL, COL_P50,
	COL_P99, COL_MAX, NR_COLS
};

static const char *const col_name[NR_COLS] = {
	"TOPIC", "SUBS", "PUBLISHED", "BYTES", "DELIVERED", "DROP-FULL",
	"DROP-BROKEN", "REJECTED", "BLOCKED", "TIMEOUTS", "WOULD-BLOCK",
	"WAKEUPS", "FILL", "P50", "P99", "MAX",
};

/* The counter columns, which --watch turns into rates. */
static bool is_rate_col(enum column c)
{
	return c >= COL_PUBLISHED && c <= COL_WAKEUPS;
}

#define CELL	32

struct table {
	char (*cells)[NR_COLS][CELL];
	size_t n;
	int width[NR_COLS];
};

static uint64_t counter(const struct pcb_stats *s, enum column c)
{
	switch (c) {
	case COL_PUBLISHED:	return s->published;
	case COL_BYTES:		return s->bytes;
	case COL_DELIVERED:	return s->delivered;
	case COL_DROP_FULL:	return s->dropped_full;
	case COL_DROP_BROKEN:	return s->dropped_broken;
	case COL_REJECTED:	return s->rejected;
	case COL_BLOCKED:	return s->blocked;
	case COL_TIMEOUTS:	return s->timeouts;
	case COL_WOULD_BLOCK:	return s->would_block;
	case COL_WAKEUPS:	return s->wakeups;
	default:		return 0;
	}
}

static void latency_cell(char *cell, const struct pcb_hist *h, double p)
{
	if (!pcb_hist_total(h))
		snprintf(cell, CELL, "-");
	else
		format_ns(cell, CELL, pcb_hist_percentile(h, p));
}

/* @secs > 0: @s holds differences over that many seconds. */
static void fill_cells(char cells[NR_COLS][CELL], const struct row *r,
		       const struct pcb_stats *s, double secs)
{
	int c;

	/* A topic's name may be wider than a cell: see cell_text(). */
	snprintf(cells[COL_NAME], CELL, "%s", r->id ? "" : "(bus)");
	if (r->hidden) {
		for (c = COL_SUBS; c < NR_COLS; c++)
			snprintf(cells[c], CELL, "-");
		return;
	}
	snprintf(cells[COL_SUBS], CELL, "%u", s->nr_subscriptions);
	for (c = COL_PUBLISHED; c <= COL_WAKEUPS; c++) {
		if (secs > 0)
			snprintf(cells[c], CELL, "%.1f",
				 (double)counter(s, c) / secs);
		else
			snprintf(cells[c], CELL, "%" PRIu64, counter(s, c));
	}
	snprintf(cells[COL_FILL], CELL, "%u.%u%%", s->ring_fill_max / 10,
		 s->ring_fill_max % 10);
	latency_cell(cells[COL_P50], &s->publish_ns, 50);
	latency_cell(cells[COL_P99], &s->publish_ns, 99);
	latency_cell(cells[COL_MAX], &s->publish_ns, 100);
}

/* A topic's name comes from its row: it may be wider than CELL. */
static const char *cell_text(const struct table *t, size_t i, int c,
			     const struct snapshot *snap)
{
	if (c == COL_NAME && i > 0 && snap->rows[i - 1].id)
		return snap->rows[i - 1].name;
	return t->cells[i][c];
}

static void print_table(const struct table *t, const struct snapshot *snap)
{
	size_t i;
	int c;

	for (i = 0; i <= snap->n; i++) {
		for (c = 0; c < NR_COLS; c++) {
			const char *text = cell_text(t, i, c, snap);

			if (c == COL_NAME)
				printf("%-*s", t->width[c], text);
			else
				printf(" %*s", t->width[c], text);
		}
		putchar('\n');
	}
}

/* Row 0 of the table is the header, row i + 1 the snapshot's row i. */
static int render_table(const struct snapshot *now,
			const struct snapshot *then, double secs)
{
	struct table t = { 0 };
	struct pcb_stats d;
	size_t i;
	int c;

	t.n = now->n + 1;
	t.cells = calloc(t.n, sizeof(*t.cells));
	if (!t.cells)
		return -ENOMEM;
	for (c = 0; c < NR_COLS; c++)
		snprintf(t.cells[0][c], CELL, "%s%s", col_name[c],
			 then && is_rate_col(c) ? "/s" : "");
	for (i = 0; i < now->n; i++) {
		const struct row *r = &now->rows[i];

		if (then) {
			const struct row *old = find_row(then, r->id);

			row_delta(&d, &r->s, old ? &old->s : NULL);
			fill_cells(t.cells[i + 1], r, &d, secs);
		} else {
			fill_cells(t.cells[i + 1], r, &r->s, 0);
		}
	}
	for (i = 0; i < t.n; i++)
		for (c = 0; c < NR_COLS; c++) {
			int w = (int)strlen(cell_text(&t, i, c, now));

			if (w > t.width[c])
				t.width[c] = w;
		}
	print_table(&t, now);
	free(t.cells);
	return 0;
}

static void print_clock_line(const struct pcb_stats *bus)
{
	printf("bus clock %s", clock_name(bus->clock));
	if (bus->clock == PCB_CLOCK_TSC)
		printf(" (%u kHz)", bus->tsc_khz);
	printf(", %u topic%s; P50/P99/MAX: publish-path cost, kernel entry to commit, waits included",
	       bus->nr_topics, bus->nr_topics == 1 ? "" : "s");
	if (bus->flags & PCB_STATS_PARTIAL)
		printf("; (bus) sums only the topics whose traffic you may see");
	putchar('\n');
}

/* ------------------------------------------------------------------ */
/* JSON                                                               */
/* ------------------------------------------------------------------ */

static void json_string(const char *s)
{
	putchar('"');
	for (; *s; s++) {
		unsigned char ch = (unsigned char)*s;

		if (ch == '"' || ch == '\\')
			printf("\\%c", ch);
		else if (ch < 0x20)
			printf("\\u%04x", ch);
		else
			putchar(ch);
	}
	putchar('"');
}

static void json_hist(const struct pcb_hist *h)
{
	unsigned int i;

	printf("\"publish_ns\": {\"count\": %" PRIu64 ", \"sum\": %" PRIu64
	       ", \"max\": %" PRIu64 ", \"p50\": %" PRIu64 ", \"p90\": %" PRIu64
	       ", \"p99\": %" PRIu64 ", \"buckets\": [",
	       pcb_hist_total(h), (uint64_t)h->sum_ns, (uint64_t)h->max_ns,
	       pcb_hist_percentile(h, 50), pcb_hist_percentile(h, 90),
	       pcb_hist_percentile(h, 99));
	for (i = 0; i < PCB_HIST_BUCKETS; i++)
		printf("%s%" PRIu64, i ? ", " : "", (uint64_t)h->buckets[i]);
	printf("]}");
}

static void json_stats(const struct pcb_stats *s)
{
	printf("\"nr_topics\": %u, \"nr_subscriptions\": %u, ", s->nr_topics,
	       s->nr_subscriptions);
	printf("\"published\": %" PRIu64 ", \"bytes\": %" PRIu64
	       ", \"delivered\": %" PRIu64 ", \"dropped_full\": %" PRIu64
	       ", \"dropped_broken\": %" PRIu64 ", \"rejected\": %" PRIu64
	       ", ", (uint64_t)s->published, (uint64_t)s->bytes,
	       (uint64_t)s->delivered, (uint64_t)s->dropped_full,
	       (uint64_t)s->dropped_broken, (uint64_t)s->rejected);
	printf("\"blocked\": %" PRIu64 ", \"timeouts\": %" PRIu64
	       ", \"would_block\": %" PRIu64 ", \"wakeups\": %" PRIu64
	       ", \"ring_used\": %" PRIu64 ", \"ring_size\": %" PRIu64
	       ", \"ring_fill_max\": %u, ", (uint64_t)s->blocked,
	       (uint64_t)s->timeouts, (uint64_t)s->would_block,
	       (uint64_t)s->wakeups, (uint64_t)s->ring_used,
	       (uint64_t)s->ring_size, s->ring_fill_max);
	json_hist(&s->publish_ns);
}

static void print_json(const struct snapshot *snap)
{
	const struct pcb_stats *bus = &snap->rows[0].s;
	size_t i;

	printf("{\"clock\": \"%s\", \"tsc_khz\": %u,\n \"bus\": {\"partial\": %s, ",
	       bus->clock == PCB_CLOCK_TSC ? "tsc" :
	       bus->clock == PCB_CLOCK_MONO ? "mono" : "unknown",
	       bus->tsc_khz, bus->flags & PCB_STATS_PARTIAL ? "true" : "false");
	json_stats(bus);
	printf("},\n \"topics\": [");
	for (i = 1; i < snap->n; i++) {
		printf("%s\n  {\"name\": ", i > 1 ? "," : "");
		json_string(snap->rows[i].name);
		printf(", \"id\": %u, ", snap->rows[i].id);
		if (snap->rows[i].hidden)
			printf("\"hidden\": true");
		else
			json_stats(&snap->rows[i].s);
		putchar('}');
	}
	printf("]}\n");
}

/* ------------------------------------------------------------------ */
/* Prometheus                                                         */
/* ------------------------------------------------------------------ */

/* A label value: backslash, double quote and newline escaped. */
static void prom_label_value(const char *s)
{
	for (; *s; s++) {
		if (*s == '\\' || *s == '"')
			printf("\\%c", *s);
		else if (*s == '\n')
			fputs("\\n", stdout);
		else
			putchar(*s);
	}
}

/*
 * "{topic="NAME",EXTRA}", "{EXTRA}" for the bus, or nothing at all.
 * @extra is already escaped.
 */
static void prom_labels(const struct row *r, const char *extra)
{
	if (!r->id && !extra)
		return;
	putchar('{');
	if (r->id) {
		fputs("topic=\"", stdout);
		prom_label_value(r->name);
		putchar('"');
	}
	if (extra)
		printf("%s%s", r->id ? "," : "", extra);
	putchar('}');
}

static void prom_family(const char *name, const char *type, const char *help)
{
	printf("# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

enum prom_value {
	PV_SUBS, PV_PUBLISHED, PV_BYTES, PV_DELIVERED, PV_REJECTED,
	PV_BLOCKED, PV_TIMEOUTS, PV_WOULD_BLOCK, PV_WAKEUPS, PV_RING_USED,
	PV_RING_SIZE,
};

static const struct {
	const char *name, *type, *help;
	enum prom_value v;
} prom_simple[] = {
	{ "pcb_subscriptions", "gauge",
	  "Subscriptions now, to the topic (without a topic label: all of them).",
	  PV_SUBS },
	{ "pcb_published_total", "counter",
	  "Messages accepted (each got an id), since the topic's creation (without a topic label: since the bus's creation).",
	  PV_PUBLISHED },
	{ "pcb_published_bytes_total", "counter",
	  "Payload bytes of the messages accepted.", PV_BYTES },
	{ "pcb_delivered_total", "counter",
	  "Records written into subscribers' rings.", PV_DELIVERED },
	{ "pcb_rejected_total", "counter",
	  "Records subscriptions' filters rejected.", PV_REJECTED },
	{ "pcb_blocked_total", "counter",
	  "Publishes that had to wait for room in a reliable subscriber's ring.",
	  PV_BLOCKED },
	{ "pcb_timeouts_total", "counter",
	  "Publishes that gave up waiting for room (ETIMEDOUT).", PV_TIMEOUTS },
	{ "pcb_would_block_total", "counter",
	  "Nonblocking publishes refused for want of room (EAGAIN).",
	  PV_WOULD_BLOCK },
	{ "pcb_wakeups_total", "counter",
	  "Wake-ups publishers gave consumers waiting for records.", PV_WAKEUPS },
	{ "pcb_ring_used_bytes", "gauge",
	  "Bytes in use in the rings subscribed to the topic (without a topic label: in every ring).",
	  PV_RING_USED },
	{ "pcb_ring_size_bytes", "gauge",
	  "Total size of those rings.", PV_RING_SIZE },
};

static uint64_t prom_get(const struct pcb_stats *s, enum prom_value v)
{
	switch (v) {
	case PV_SUBS:		return s->nr_subscriptions;
	case PV_PUBLISHED:	return s->published;
	case PV_BYTES:		return s->bytes;
	case PV_DELIVERED:	return s->delivered;
	case PV_REJECTED:	return s->rejected;
	case PV_BLOCKED:	return s->blocked;
	case PV_TIMEOUTS:	return s->timeouts;
	case PV_WOULD_BLOCK:	return s->would_block;
	case PV_WAKEUPS:	return s->wakeups;
	case PV_RING_USED:	return s->ring_used;
	case PV_RING_SIZE:	return s->ring_size;
	}
	return 0;
}

/* Nanoseconds as seconds, exactly: 1500 is 0.000001500. */
static void prom_seconds(uint64_t ns)
{
	printf("%" PRIu64 ".%09" PRIu64, ns / NS_PER_SEC, ns % NS_PER_SEC);
}

static void prom_histogram(const struct snapshot *snap)
{
	size_t r;
	unsigned int i;

	prom_family("pcb_publish_latency_seconds", "histogram",
		    "Publish-path cost: from the publish call entering the kernel to the commit of the message into every ring, waits for room included.");
	for (r = 0; r < snap->n; r++) {
		const struct row *row = &snap->rows[r];
		const struct pcb_hist *h = &row->s.publish_ns;
		uint64_t cum = 0;
		char le[64];

		if (row->hidden)
			continue;
		for (i = 0; i < PCB_HIST_BUCKETS - 1; i++) {
			uint64_t max = pcb_hist_bucket_max(i);

			cum += h->buckets[i];
			snprintf(le, sizeof(le), "le=\"%" PRIu64 ".%09" PRIu64 "\"",
				 max / NS_PER_SEC, max % NS_PER_SEC);
			fputs("pcb_publish_latency_seconds_bucket", stdout);
			prom_labels(row, le);
			printf(" %" PRIu64 "\n", cum);
		}
		cum += h->buckets[i];
		fputs("pcb_publish_latency_seconds_bucket", stdout);
		prom_labels(row, "le=\"+Inf\"");
		printf(" %" PRIu64 "\n", cum);
		fputs("pcb_publish_latency_seconds_sum", stdout);
		prom_labels(row, NULL);
		putchar(' ');
		prom_seconds(h->sum_ns);
		fputs("\npcb_publish_latency_seconds_count", stdout);
		prom_labels(row, NULL);
		printf(" %" PRIu64 "\n", cum);
	}
}

static void print_prometheus(const struct snapshot *snap)
{
	const struct pcb_stats *bus = &snap->rows[0].s;
	size_t i, r;

	prom_family("pcb_clock_info", "gauge",
		    "The bus clock, tsc or mono (CLOCK_MONOTONIC), and the TSC frequency in kHz (0 unless tsc).");
	printf("pcb_clock_info{clock=\"%s\",tsc_khz=\"%u\"} 1\n",
	       bus->clock == PCB_CLOCK_TSC ? "tsc" :
	       bus->clock == PCB_CLOCK_MONO ? "mono" : "unknown", bus->tsc_khz);
	prom_family("pcb_stats_partial", "gauge",
		    "1 when the series without a topic label sum only the topics whose traffic the reader may see (no CAP_IPC_OWNER), else 0.");
	printf("pcb_stats_partial %u\n", bus->flags & PCB_STATS_PARTIAL ? 1 : 0);
	prom_family("pcb_topics", "gauge", "Topics on the bus.");
	printf("pcb_topics %u\n", bus->nr_topics);

	for (i = 0; i < ARRAY_SIZE(prom_simple); i++) {
		prom_family(prom_simple[i].name, prom_simple[i].type,
			    prom_simple[i].help);
		for (r = 0; r < snap->n; r++) {
			if (snap->rows[r].hidden)
				continue;
			fputs(prom_simple[i].name, stdout);
			prom_labels(&snap->rows[r], NULL);
			printf(" %" PRIu64 "\n",
			       prom_get(&snap->rows[r].s, prom_simple[i].v));
		}
	}

	prom_family("pcb_dropped_total", "counter",
		    "Records not written into a ring: reason=\"full\", a lossy subscription's ring was full; reason=\"broken\", the ring is broken.");
	for (r = 0; r < snap->n; r++) {
		if (snap->rows[r].hidden)
			continue;
		fputs("pcb_dropped_total", stdout);
		prom_labels(&snap->rows[r], "reason=\"full\"");
		printf(" %" PRIu64 "\npcb_dropped_total",
		       (uint64_t)snap->rows[r].s.dropped_full);
		prom_labels(&snap->rows[r], "reason=\"broken\"");
		printf(" %" PRIu64 "\n",
		       (uint64_t)snap->rows[r].s.dropped_broken);
	}

	prom_family("pcb_ring_fill_max_ratio", "gauge",
		    "Fill level of the fullest of those rings, 0 to 1.");
	for (r = 0; r < snap->n; r++) {
		if (snap->rows[r].hidden)
			continue;
		fputs("pcb_ring_fill_max_ratio", stdout);
		prom_labels(&snap->rows[r], NULL);
		printf(" %u.%03u\n", snap->rows[r].s.ring_fill_max / 1000,
		       snap->rows[r].s.ring_fill_max % 1000);
	}
	prom_histogram(snap);
}

/* ------------------------------------------------------------------ */
/* The command                                                        */
/* ------------------------------------------------------------------ */

static void sleep_ns(uint64_t ns)
{
	struct timespec ts = {
		.tv_sec = (time_t)(ns / 1000000000ULL),
		.tv_nsec = (long)(ns % 1000000000ULL),
	};

	while (nanosleep(&ts, &ts) && errno == EINTR)
		;
}

static void print_watch_header(const struct snapshot *now, double secs)
{
	char when[32];
	time_t t = time(NULL);
	struct tm tm;

	if (isatty(STDOUT_FILENO))
		fputs("\033[H\033[2J", stdout);
	strftime(when, sizeof(when), "%H:%M:%S", localtime_r(&t, &tm));
	printf("%s, rates per second over %.2f s; P50/P99/MAX of that interval\n",
	       when, secs);
	print_clock_line(&now->rows[0].s);
}

static int watch(struct pcb *bus, const struct stats_opts *o)
{
	struct snapshot a = { 0 }, b = { 0 };
	struct snapshot *then = &a, *now = &b, *tmp;
	uint64_t round;
	int ret;

	ret = collect(bus, o, then);
	for (round = 0; !ret && (!o->count || round < o->count); round++) {
		sleep_ns(o->watch_ns);
		ret = collect(bus, o, now);
		if (ret)
			break;
		if (round)
			putchar('\n');
		print_watch_header(now, (now->when_ns - then->when_ns) / 1e9);
		ret = render_table(now, then,
				   (now->when_ns - then->when_ns) / 1e9);
		fflush(stdout);
		tmp = then;
		then = now;
		now = tmp;
	}
	free(a.rows);
	free(b.rows);
	return ret;
}

static int show_once(struct pcb *bus, const struct stats_opts *o)
{
	struct snapshot snap = { 0 };
	int ret = collect(bus, o, &snap);

	if (ret)
		goto out;
	switch (o->format) {
	case FMT_JSON:
		print_json(&snap);
		break;
	case FMT_PROMETHEUS:
		print_prometheus(&snap);
		break;
	case FMT_TABLE:
		print_clock_line(&snap.rows[0].s);
		ret = render_table(&snap, NULL, 0);
		break;
	}
out:
	free(snap.rows);
	return ret;
}

/* SECS: a positive number of seconds, fractions allowed, at most a day. */
static bool parse_secs(const char *s, uint64_t *ns)
{
	double v;
	char *end;

	if (!*s || *s == '-' || *s == '+' || *s == ' ')
		return false;
	errno = 0;
	v = strtod(s, &end);
	if (errno || *end || !(v >= 0.001) || v > 86400)
		return false;
	*ns = (uint64_t)(v * 1e9 + 0.5);
	return true;
}

/*
 * "--watch SECS" as "--watch=SECS", so that getopt sees an optional
 * argument: only when SECS is a number (a TOPIC named like one then has
 * to follow "--").  Returns the new argv, or NULL without memory.
 */
static char **join_watch_arg(int *argcp, char **argv)
{
	int argc = *argcp;
	char **v = calloc((size_t)argc + 1, sizeof(*v));
	uint64_t ns;
	int i, n = 0;

	if (!v)
		return NULL;
	for (i = 0; i < argc; i++) {
		if (!strcmp(argv[i], "--")) {
			while (i < argc)
				v[n++] = argv[i++];
			break;
		}
		if (!strcmp(argv[i], "--watch") && i + 1 < argc &&
		    parse_secs(argv[i + 1], &ns)) {
			size_t len = strlen(argv[i + 1]) + sizeof("--watch=");

			v[n] = malloc(len);
			if (!v[n])
				return NULL;	/* a command line's worth: let it go */
			snprintf(v[n++], len, "--watch=%s", argv[++i]);
			continue;
		}
		v[n++] = argv[i];
	}
	v[n] = NULL;
	*argcp = n;
	return v;
}

static int parse_stats_opts(int argc, char **argv, struct stats_opts *o)
{
	static const struct option opts[] = {
		{ "watch",      optional_argument, NULL, 'w' },
		{ "count",      required_argument, NULL, 'c' },
		{ "json",       no_argument,       NULL, 'j' },
		{ "prometheus", no_argument,       NULL, 'p' },
		{ "help",       no_argument,       NULL, 'h' },
		{ }
	};
	int c, formats = 0;

	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'w':
			o->watch_ns = 1000000000ULL;
			if (optarg && !parse_secs(optarg, &o->watch_ns))
				return bad_value("--watch interval (seconds, 0.001 to 86400)",
						 optarg);
			break;
		case 'c':
			if (!parse_u64(optarg, 10, UINT64_MAX, &o->count) ||
			    !o->count)
				return bad_value("count", optarg);
			break;
		case 'j':
			o->format = FMT_JSON;
			formats++;
			break;
		case 'p':
			o->format = FMT_PROMETHEUS;
			formats++;
			break;
		case 'h':
			fputs(stats_usage, stdout);
			return -1;
		default:
			return usage_hint("stats");
		}
	}
	if (formats > 1 || (formats && o->watch_ns)) {
		error("stats: --json, --prometheus and --watch do not go together");
		return usage_hint("stats");
	}
	if (o->count && !o->watch_ns) {
		error("stats: --count goes with --watch");
		return usage_hint("stats");
	}
	if (optind < argc) {
		o->topics = argv + optind;
		o->nr_topics = argc - optind;
	}
	return 0;
}

int stats_main(int argc, char **argv)
{
	struct stats_opts o = { .format = FMT_TABLE };
	char **args = join_watch_arg(&argc, argv);
	struct pcb *bus;
	int ret;

	if (!args) {
		error("%s", strerror(ENOMEM));
		return 1;
	}
	ret = parse_stats_opts(argc, args, &o);
	if (ret)
		return ret < 0 ? 0 : ret;
	if (open_bus(&bus))
		return 1;
	ret = o.watch_ns ? watch(bus, &o) : show_once(bus, &o);
	pcb_close(bus);
	if (ret == -ENOMEM)
		error("%s", strerror(ENOMEM));
	return ret ? 1 : 0;
}
