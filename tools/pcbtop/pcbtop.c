// SPDX-License-Identifier: GPL-2.0
/*
 * pcbtop - a live per-topic view of the pcb bus, from its tracepoints.
 *
 * A BPF program (pcbtop.bpf.c) counts, per topic, what the pcb:* events
 * report: messages and bytes published, records delivered, drops, filter
 * rejects, publishers that blocked and timed out, consumers woken, and a
 * log2 histogram of the publish-path latency.  This side reads those
 * counters once per interval and prints one line per topic, like top(1):
 * on a terminal the screen is redrawn, in batch mode (-b) each table is
 * printed after the last, as plain text for scripts and tests.
 *
 * Topics with no traffic are listed too, from /proc/pcb/topics.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "pcb_tp.h"
#include "pcbtop.h"
#include "pcbtop.skel.h"

#define PROC_TOPICS	"/proc/pcb/topics"
#define MODULE_DIR	"/sys/module/pcb"

static const char usage_text[] =
"Usage: pcbtop [OPTION]...\n"
"Show the topics of the pcb bus with their rates, drops, backpressure and\n"
"publish latency, from the pcb:* tracepoints, refreshed every interval.\n"
"\n"
"  -b, --batch         plain text, one table after the other (for scripts;\n"
"                      also when standard output is not a terminal)\n"
"  -n, --iterations N  stop after N tables (default: until interrupted)\n"
"  -d, --delay SECS    interval between tables (default 1; fractions allowed)\n"
"  -t, --totals        counts since pcbtop started instead of rates\n"
"  -v, --verbose       show libbpf's messages\n"
"  -h, --help          show this help\n"
"\n"
"Columns, per topic (rates per second over the interval; with --totals,\n"
"counts since pcbtop started):\n"
"  MSG    messages published          BYTES  their payload bytes (KiB/s)\n"
"  DLV    records written into rings  DROP   records lossy rings missed\n"
"                                            (full) or broken rings lost\n"
"  REJ    records filters rejected    BLK    publishes that waited for room\n"
"  TMO    publishes that timed out    WAKE   sleeping consumers woken\n"
"  P50, P99  publish-path latency (entry into the kernel to the last\n"
"         commit, pcb:pcb_publish's ns): the upper bound of the log2\n"
"         bucket holding that percentile, over the interval (--totals:\n"
"         since the start)\n"
"In batch mode, SIGINT or SIGTERM prints a last table, for the time since\n"
"the one before, and exits.\n"
"\n"
"Needs the pcb module loaded and root (CAP_BPF, CAP_PERFMON and access to\n"
"tracefs).  Exit status: 0, 1 on an error, 2 on a usage error.\n";

struct options {
	bool batch;
	bool totals;
	bool verbose;
	long iterations;	/* 0: no limit */
	double delay;
};

struct topic {
	__u32 id;
	char name[PCBTOP_NAME_MAX];
	bool listed;		/* in /proc/pcb/topics at the last refresh */
	struct pcbtop_counts now;
	struct pcbtop_counts prev;	/* at the last table */
};

struct topics {
	struct topic *v;
	size_t nr;
	size_t cap;
};

/* One line of the table, ready to print. */
struct row {
	const struct topic *t;
	struct pcbtop_counts d;		/* what the line shows */
};

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

static void err(const char *fmt, ...)
{
	va_list ap;

	fputs("pcbtop: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

static bool verbose;

static int libbpf_print(enum libbpf_print_level level, const char *fmt,
			va_list ap)
{
	(void)level;
	return verbose ? vfprintf(stderr, fmt, ap) : 0;
}

/* ---- the tracepoint records: checked against the running kernel ---- */

struct tp_field {
	const char *name;
	unsigned int offset;
	unsigned int size;
};

#define TP_FIELD(type, field) \
	{ #field, offsetof(struct type, field), sizeof(((struct type *)0)->field) }

static const struct tp_field publish_fields[] = {
	TP_FIELD(pcb_tp_publish, topic_id),
	TP_FIELD(pcb_tp_publish, topic),
	TP_FIELD(pcb_tp_publish, len),
	TP_FIELD(pcb_tp_publish, ns),
	{ NULL, 0, 0 }
};

static const struct tp_field sub_msg_fields[] = {
	TP_FIELD(pcb_tp_sub_msg, topic_id),
	TP_FIELD(pcb_tp_sub_msg, topic),
	TP_FIELD(pcb_tp_sub_msg, reason),
	{ NULL, 0, 0 }
};

static const struct tp_field wait_fields[] = {
	TP_FIELD(pcb_tp_wait, topic_id),
	TP_FIELD(pcb_tp_wait, topic),
	{ NULL, 0, 0 }
};

static const struct tp_field wakeup_fields[] = {
	TP_FIELD(pcb_tp_wakeup, topic_id),
	TP_FIELD(pcb_tp_wakeup, topic),
	{ NULL, 0, 0 }
};

/* The events the BPF program attaches to and the fields it reads. */
static const struct {
	const char *event;
	const struct tp_field *fields;
} tp_events[] = {
	{ "pcb_publish", publish_fields },
	{ "pcb_deliver", sub_msg_fields },
	{ "pcb_filter_reject", sub_msg_fields },
	{ "pcb_drop", sub_msg_fields },
	{ "pcb_block", wait_fields },
	{ "pcb_timeout", wait_fields },
	{ "pcb_wakeup", wakeup_fields },
};

#define ARRAY_SIZE(a)	(sizeof(a) / sizeof((a)[0]))

/*
 * Parses a format file line "field:TYPE NAME;\toffset:N;\tsize:M;..." into
 * @name, @offset and @size.  Returns false for other lines.
 */
static bool parse_field(const char *line, char *name, size_t name_size,
			unsigned int *offset, unsigned int *size)
{
	const char *decl = strstr(line, "field:");
	const char *semi, *start, *p;
	size_t len;

	if (!decl)
		return false;
	decl += strlen("field:");
	semi = strchr(decl, ';');
	if (!semi)
		return false;
	/* The name is the last word of the declaration, without [N]. */
	start = semi;
	while (start > decl && start[-1] != ' ')
		start--;
	for (p = start; p < semi && *p != '['; p++)
		;
	len = p - start;
	if (!len || len >= name_size)
		return false;
	memcpy(name, start, len);
	name[len] = '\0';
	p = strstr(semi, "offset:");
	if (!p || sscanf(p, "offset:%u;", offset) != 1)
		return false;
	p = strstr(p, "size:");
	return p && sscanf(p, "size:%u;", size) == 1;
}

/* 0, or -errno with a message printed. */
static int check_event(const char *events_dir, const char *event,
		       const struct tp_field *fields)
{
	char path[PATH_MAX], line[512], name[64];
	const struct tp_field *f;
	unsigned int found = 0, wanted = 0;
	unsigned int offset, size;
	FILE *file;
	int ret = 0;

	snprintf(path, sizeof(path), "%s/%s/format", events_dir, event);
	file = fopen(path, "r");
	if (!file) {
		ret = -errno;
		err("%s: %s", path, strerror(errno));
		return ret;
	}
	for (f = fields; f->name; f++)
		wanted++;
	while (fgets(line, sizeof(line), file)) {
		if (!parse_field(line, name, sizeof(name), &offset, &size))
			continue;
		for (f = fields; f->name; f++) {
			if (strcmp(f->name, name))
				continue;
			if (f->offset != offset || f->size != size) {
				err("pcb:%s: field %s is at offset %u, size %u; pcbtop was built for offset %u, size %u",
				    event, name, offset, size, f->offset, f->size);
				ret = -EPROTO;
			}
			found++;
		}
	}
	fclose(file);
	if (!ret && found != wanted) {
		err("pcb:%s: the kernel's event lacks fields pcbtop reads", event);
		ret = -EPROTO;
	}
	return ret;
}

/* The pcb events directory of tracefs, or NULL with a message printed. */
static const char *find_events_dir(void)
{
	static const char *const dirs[] = {
		"/sys/kernel/tracing/events/pcb",
		"/sys/kernel/debug/tracing/events/pcb",
	};
	int first_err = 0;
	unsigned int i;

	for (i = 0; i < ARRAY_SIZE(dirs); i++) {
		if (!access(dirs[i], R_OK | X_OK))
			return dirs[i];
		if (!first_err || errno == EACCES || errno == EPERM)
			first_err = errno;
	}
	if (first_err == EACCES || first_err == EPERM)
		err("cannot read the pcb tracepoints in tracefs (%s): pcbtop needs root (CAP_BPF, CAP_PERFMON and access to tracefs)",
		    strerror(first_err));
	else
		err("no pcb events in tracefs: is it mounted (mount -t tracefs nodev /sys/kernel/tracing)?");
	return NULL;
}

/* Can we run at all?  0, or 1 with the reason printed. */
static int preflight(void)
{
	const char *dir;
	unsigned int i;

	if (access(MODULE_DIR, F_OK)) {
		err("the pcb module is not loaded (no %s): load it first (modprobe pcb)",
		    MODULE_DIR);
		return 1;
	}
	dir = find_events_dir();
	if (!dir)
		return 1;
	for (i = 0; i < ARRAY_SIZE(tp_events); i++)
		if (check_event(dir, tp_events[i].event, tp_events[i].fields))
			return 1;
	return 0;
}

/* ---- topics ---- */

static struct topic *topic_find(struct topics *ts, __u32 id)
{
	size_t lo = 0, hi = ts->nr;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (ts->v[mid].id == id)
			return &ts->v[mid];
		if (ts->v[mid].id < id)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

/* The topic of @id, added (sorted by id) if new; NULL when out of memory. */
static struct topic *topic_get(struct topics *ts, __u32 id)
{
	struct topic *t = topic_find(ts, id);
	size_t i;

	if (t)
		return t;
	if (ts->nr == ts->cap) {
		size_t cap = ts->cap ? 2 * ts->cap : 64;
		struct topic *v = realloc(ts->v, cap * sizeof(*v));

		if (!v)
			return NULL;
		ts->v = v;
		ts->cap = cap;
	}
	for (i = ts->nr; i > 0 && ts->v[i - 1].id > id; i--)
		;
	memmove(&ts->v[i + 1], &ts->v[i], (ts->nr - i) * sizeof(*ts->v));
	ts->nr++;
	t = &ts->v[i];
	memset(t, 0, sizeof(*t));
	t->id = id;
	return t;
}

static void topic_remove(struct topics *ts, struct topic *t)
{
	size_t i = t - ts->v;

	memmove(t, t + 1, (ts->nr - i - 1) * sizeof(*t));
	ts->nr--;
}

/* Sums the per-CPU copies of every topic's counters into ->now. */
static int read_counts(struct pcbtop_bpf *skel, struct topics *ts)
{
	int fd = bpf_map__fd(skel->maps.counts);
	int names_fd = bpf_map__fd(skel->maps.names);
	int ncpus = libbpf_num_possible_cpus();
	struct pcbtop_counts *percpu;
	__u32 key, next, *prev = NULL;
	int ret = 0;

	if (ncpus <= 0)
		return ncpus ? ncpus : -EINVAL;
	percpu = calloc(ncpus, sizeof(*percpu));
	if (!percpu)
		return -ENOMEM;
	while (!bpf_map_get_next_key(fd, prev, &next)) {
		struct topic *t;
		__u64 *sum, *v;
		unsigned int i;
		int cpu;

		key = next;
		prev = &key;
		if (bpf_map_lookup_elem(fd, &key, percpu))
			continue;	/* deleted meanwhile */
		t = topic_get(ts, key);
		if (!t) {
			ret = -ENOMEM;
			break;
		}
		memset(&t->now, 0, sizeof(t->now));
		sum = (__u64 *)&t->now;
		for (cpu = 0; cpu < ncpus; cpu++) {
			v = (__u64 *)&percpu[cpu];
			for (i = 0; i < sizeof(t->now) / sizeof(__u64); i++)
				sum[i] += v[i];
		}
		if (!t->name[0]) {
			struct pcbtop_name n;

			if (!bpf_map_lookup_elem(names_fd, &key, &n))
				memcpy(t->name, n.name, sizeof(t->name) - 1);
		}
	}
	free(percpu);
	return ret;
}

/*
 * Marks the topics /proc/pcb/topics lists, adding those not seen yet, so
 * that idle topics show too.  Returns false when the file cannot be read.
 */
static bool read_proc_topics(struct topics *ts)
{
	char line[512], name[PCBTOP_NAME_MAX];
	FILE *f = fopen(PROC_TOPICS, "r");
	size_t i;
	__u32 id;

	if (!f)
		return false;
	for (i = 0; i < ts->nr; i++)
		ts->v[i].listed = false;
	while (fgets(line, sizeof(line), f)) {
		struct topic *t;

		if (sscanf(line, "%u %63s", &id, name) != 2)
			continue;	/* the header */
		t = topic_get(ts, id);
		if (!t)
			break;
		t->listed = true;
		if (!t->name[0])
			snprintf(t->name, sizeof(t->name), "%s", name);
	}
	fclose(f);
	return true;
}

static bool counts_equal(const struct pcbtop_counts *a,
			 const struct pcbtop_counts *b)
{
	return !memcmp(a, b, sizeof(*a));
}

/*
 * Forgets deleted topics once they have been quiet for an interval, in
 * the maps too: topic ids are never reused, so they would only pile up.
 */
static void prune(struct pcbtop_bpf *skel, struct topics *ts)
{
	size_t i = 0;

	while (i < ts->nr) {
		struct topic *t = &ts->v[i];

		if (t->listed || !counts_equal(&t->now, &t->prev)) {
			i++;
			continue;
		}
		bpf_map_delete_elem(bpf_map__fd(skel->maps.counts), &t->id);
		bpf_map_delete_elem(bpf_map__fd(skel->maps.names), &t->id);
		topic_remove(ts, t);
	}
}

/* ---- the table ---- */

static void counts_sub(struct pcbtop_counts *d, const struct pcbtop_counts *a,
		       const struct pcbtop_counts *b)
{
	const __u64 *x = (const __u64 *)a, *y = (const __u64 *)b;
	__u64 *z = (__u64 *)d;
	unsigned int i;

	for (i = 0; i < sizeof(*d) / sizeof(__u64); i++)
		z[i] = x[i] - y[i];
}

/* Upper bound in ns of the bucket holding percentile @p; -1 if empty. */
static long long percentile_ns(const struct pcbtop_counts *c, double p)
{
	__u64 total = 0, target, seen = 0;
	unsigned int i;

	for (i = 0; i < PCBTOP_HIST_BUCKETS; i++)
		total += c->lat[i];
	if (!total)
		return -1;
	target = (__u64)(p * total + 0.999999);
	if (!target)
		target = 1;
	for (i = 0; i < PCBTOP_HIST_BUCKETS; i++) {
		seen += c->lat[i];
		if (seen >= target)
			break;
	}
	if (i >= PCBTOP_HIST_BUCKETS)
		i = PCBTOP_HIST_BUCKETS - 1;
	return i ? 1LL << i : 0;
}

static const char *fmt_ns(char *buf, size_t size, long long ns)
{
	if (ns < 0)
		snprintf(buf, size, "-");
	else if (ns < 1000)
		snprintf(buf, size, "%lldns", ns);
	else if (ns < 1000000)
		snprintf(buf, size, "%.1fus", ns / 1e3);
	else if (ns < 1000000000)
		snprintf(buf, size, "%.1fms", ns / 1e6);
	else
		snprintf(buf, size, "%.2fs", ns / 1e9);
	return buf;
}

static __u64 drops(const struct pcbtop_counts *c)
{
	return c->dropped_full + c->dropped_broken;
}

/* Busiest first; by name, then id, among equals, so output is stable. */
static int row_cmp(const void *a, const void *b)
{
	const struct row *x = a, *y = b;
	int ret;

	if (x->d.published != y->d.published)
		return x->d.published > y->d.published ? -1 : 1;
	ret = strcmp(x->t->name, y->t->name);
	if (ret)
		return ret;
	return x->t->id < y->t->id ? -1 : x->t->id > y->t->id;
}

static void print_rate_row(const struct row *r, int width, double secs)
{
	char p50[16], p99[16];

	printf("%-*s %9.1f %9.1f %9.1f %9.1f %9.1f %9.1f %9.1f %9.1f %8s %8s\n",
	       width, r->t->name, r->d.published / secs,
	       r->d.bytes / 1024.0 / secs, r->d.delivered / secs,
	       drops(&r->d) / secs, r->d.rejected / secs, r->d.blocked / secs,
	       r->d.timeouts / secs, r->d.wakeups / secs,
	       fmt_ns(p50, sizeof(p50), percentile_ns(&r->d, 0.50)),
	       fmt_ns(p99, sizeof(p99), percentile_ns(&r->d, 0.99)));
}

static void print_total_row(const struct row *r, int width)
{
	char p50[16], p99[16];

	printf("%-*s %9llu %9llu %9llu %9llu %9llu %9llu %9llu %9llu %8s %8s\n",
	       width, r->t->name, (unsigned long long)r->d.published,
	       (unsigned long long)r->d.bytes,
	       (unsigned long long)r->d.delivered,
	       (unsigned long long)drops(&r->d),
	       (unsigned long long)r->d.rejected,
	       (unsigned long long)r->d.blocked,
	       (unsigned long long)r->d.timeouts,
	       (unsigned long long)r->d.wakeups,
	       fmt_ns(p50, sizeof(p50), percentile_ns(&r->d, 0.50)),
	       fmt_ns(p99, sizeof(p99), percentile_ns(&r->d, 0.99)));
}

/* Rows the terminal has room for, or 0 for no limit. */
static size_t screen_rows(bool live)
{
	struct winsize ws;

	if (!live || ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) || ws.ws_row < 4)
		return 0;
	return ws.ws_row - 3;
}

static int print_table(const struct options *o, struct topics *ts,
		       double secs, double since_start, __u64 lost, bool live)
{
	__u64 msgs = 0, dropped = 0;
	size_t i, max_rows;
	int width = 5;		/* "TOPIC" */
	char clock[16];
	struct row *rows;
	time_t now = time(NULL);

	rows = calloc(ts->nr ? ts->nr : 1, sizeof(*rows));
	if (!rows)
		return -ENOMEM;
	for (i = 0; i < ts->nr; i++) {
		struct topic *t = &ts->v[i];

		if (!t->name[0])
			snprintf(t->name, sizeof(t->name), "#%u", t->id);
		rows[i].t = t;
		if (o->totals)
			rows[i].d = t->now;
		else
			counts_sub(&rows[i].d, &t->now, &t->prev);
		msgs += rows[i].d.published;
		dropped += drops(&rows[i].d);
		if ((int)strlen(t->name) > width)
			width = strlen(t->name);
	}
	qsort(rows, ts->nr, sizeof(*rows), row_cmp);
	strftime(clock, sizeof(clock), "%H:%M:%S", localtime(&now));

	if (live)
		fputs("\033[H\033[J", stdout);
	if (o->totals) {
		printf("pcbtop %s  totals over %.2fs  topics %zu  msgs %llu  drops %llu\n",
		       clock, since_start, ts->nr, (unsigned long long)msgs,
		       (unsigned long long)dropped);
		printf("%-*s %9s %9s %9s %9s %9s %9s %9s %9s %8s %8s\n", width,
		       "TOPIC", "MSG", "BYTES", "DLV", "DROP", "REJ", "BLK", "TMO",
		       "WAKE", "P50", "P99");
	} else {
		printf("pcbtop %s  interval %.2fs  topics %zu  msgs/s %.1f  drops/s %.1f\n",
		       clock, secs, ts->nr, msgs / secs, dropped / secs);
		printf("%-*s %9s %9s %9s %9s %9s %9s %9s %9s %8s %8s\n", width,
		       "TOPIC", "MSG/s", "KiB/s", "DLV/s", "DROP/s", "REJ/s",
		       "BLK/s", "TMO/s", "WAKE/s", "P50", "P99");
	}
	max_rows = screen_rows(live);
	for (i = 0; i < ts->nr && (!max_rows || i < max_rows); i++) {
		if (o->totals)
			print_total_row(&rows[i], width);
		else
			print_rate_row(&rows[i], width, secs);
	}
	if (lost)
		printf("(%llu events not counted: more than %u topics)\n",
		       (unsigned long long)lost, PCBTOP_MAX_TOPICS);
	if (!live)
		putchar('\n');
	fflush(stdout);
	free(rows);
	return 0;
}

static __u64 read_lost(struct pcbtop_bpf *skel)
{
	__u32 key = 0;
	__u64 v = 0;

	bpf_map_lookup_elem(bpf_map__fd(skel->maps.lost), &key, &v);
	return v;
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Sleeps until @deadline (CLOCK_MONOTONIC seconds) or a signal. */
static void sleep_until(double deadline)
{
	struct timespec ts = {
		.tv_sec = (time_t)deadline,
		.tv_nsec = (long)((deadline - (time_t)deadline) * 1e9),
	};

	while (!stop && clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts,
					NULL) == EINTR)
		;
}

static int run(const struct options *o, struct pcbtop_bpf *skel)
{
	bool live = !o->batch && isatty(STDOUT_FILENO);
	struct topics ts = { 0 };
	double start = now_s(), last = start, next = start;
	long n = 0;
	int ret = 0;

	while (!o->iterations || n < o->iterations) {
		double now;

		next += o->delay;
		sleep_until(next);
		if (stop && live)
			break;
		now = now_s();
		ret = read_counts(skel, &ts);
		if (ret)
			break;
		if (read_proc_topics(&ts) && !o->totals)
			prune(skel, &ts);
		ret = print_table(o, &ts, now - last > 1e-3 ? now - last : 1e-3,
				  now - start, read_lost(skel), live);
		if (ret)
			break;
		for (size_t i = 0; i < ts.nr; i++)
			ts.v[i].prev = ts.v[i].now;
		last = now;
		n++;
		if (stop)
			break;
	}
	free(ts.v);
	if (ret)
		err("reading the counters: %s", strerror(-ret));
	return ret ? 1 : 0;
}

/* ---- setup ---- */

static int attach(struct pcbtop_bpf **skelp)
{
	struct pcbtop_bpf *skel;
	int ret;

	skel = pcbtop_bpf__open();
	if (!skel) {
		err("cannot open the BPF object: %s", strerror(errno));
		return 1;
	}
	ret = pcbtop_bpf__load(skel);
	if (ret) {
		if (ret == -EPERM || ret == -EACCES)
			err("loading the BPF program was refused (%s): pcbtop needs root (CAP_BPF and CAP_PERFMON)",
			    strerror(-ret));
		else
			err("cannot load the BPF program: %s (-v shows libbpf's messages)",
			    strerror(-ret));
		goto fail;
	}
	ret = pcbtop_bpf__attach(skel);
	if (ret) {
		if (ret == -ENOENT)
			err("cannot attach to the pcb tracepoints: %s (was the pcb module unloaded?)",
			    strerror(-ret));
		else if (ret == -EPERM || ret == -EACCES)
			err("attaching to the pcb tracepoints was refused (%s): pcbtop needs root",
			    strerror(-ret));
		else
			err("cannot attach to the pcb tracepoints: %s (-v shows libbpf's messages)",
			    strerror(-ret));
		goto fail;
	}
	*skelp = skel;
	return 0;
fail:
	pcbtop_bpf__destroy(skel);
	return 1;
}

static int parse_options(int argc, char **argv, struct options *o)
{
	static const struct option longopts[] = {
		{ "batch", no_argument, NULL, 'b' },
		{ "iterations", required_argument, NULL, 'n' },
		{ "delay", required_argument, NULL, 'd' },
		{ "totals", no_argument, NULL, 't' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	char *end;
	int c;

	*o = (struct options){ .delay = 1.0 };
	while ((c = getopt_long(argc, argv, "bn:d:tvh", longopts, NULL)) != -1) {
		switch (c) {
		case 'b':
			o->batch = true;
			break;
		case 'n':
			errno = 0;
			o->iterations = strtol(optarg, &end, 10);
			if (errno || *end || o->iterations <= 0) {
				err("bad --iterations '%s'", optarg);
				return 2;
			}
			break;
		case 'd':
			errno = 0;
			o->delay = strtod(optarg, &end);
			if (errno || *end || !(o->delay >= 0.01 && o->delay <= 86400)) {
				err("bad --delay '%s' (0.01 to 86400 seconds)", optarg);
				return 2;
			}
			break;
		case 't':
			o->totals = true;
			break;
		case 'v':
			o->verbose = true;
			break;
		case 'h':
			fputs(usage_text, stdout);
			exit(0);
		default:
			fputs("Try 'pcbtop --help'.\n", stderr);
			return 2;
		}
	}
	if (optind < argc) {
		err("unexpected argument '%s'", argv[optind]);
		return 2;
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct sigaction sa = { .sa_handler = on_signal };
	struct pcbtop_bpf *skel;
	struct options o;
	int ret;

	ret = parse_options(argc, argv, &o);
	if (ret)
		return ret;
	verbose = o.verbose;
	libbpf_set_print(libbpf_print);

	ret = preflight();
	if (ret)
		return ret;
	ret = attach(&skel);
	if (ret)
		return ret;

	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	if (o.batch || !isatty(STDOUT_FILENO))
		fprintf(stderr, "pcbtop: attached to %zu pcb tracepoints\n",
			ARRAY_SIZE(tp_events));

	ret = run(&o, skel);
	pcbtop_bpf__destroy(skel);
	return ret;
}
