// SPDX-License-Identifier: GPL-2.0
/*
 * Tracepoints: every pcb:* event, read back through tracefs, fires for a
 * known workload with the right field values: topic id and name, the
 * msg_id and seq PUBLISH returned, lengths, keys, endpoints, reasons,
 * subscription counters, times.
 *
 * Each test enables the events in a tracing instance of its own
 * (instances/pcbt-trace-PID), so that it neither disturbs nor sees other
 * tracers, and only looks at events of the topics it created.  The
 * instance also filters pcb_deliver, pcb_filter_reject and pcb_drop on
 * their numeric reason (0 delivered, 1 filtered, 2 full, 3 broken): an
 * event with a wrong reason goes missing and its test fails.
 *
 * Needs root for tracefs; skips without it, or without tracefs.
 */
#include "pcb_util.h"

#include <sys/stat.h>
#include <sys/syscall.h>

#define SCHEMA		0x7ace
#define LEN		64U
#define REC		PCB_REC_SIZE(sizeof(struct pcb_record) + LEN)
#define SMALL_RING	4096U
#define BIG_RING	65536U
#define FIT		(SMALL_RING / REC)	/* records in a small ring */

static const char *const pcb_events[] = {
	"pcb_publish", "pcb_deliver", "pcb_drop", "pcb_filter_reject",
	"pcb_block", "pcb_timeout", "pcb_subscribe", "pcb_unsubscribe",
	"pcb_wakeup",
};

/* Instance filters: an event whose reason is wrong is not recorded. */
static const char *const reason_filters[][2] = {
	{ "pcb_deliver", "reason == 0" },
	{ "pcb_filter_reject", "reason == 1" },
	{ "pcb_drop", "reason == 2 || reason == 3" },
};

/* One event of the trace: its name, the task's pid and key=value pairs. */
struct tev {
	char event[24];
	int pid;
	unsigned int nr;
	struct {
		char key[16];
		char val[PCB_NAME_MAX + 8];
	} kv[12];
};

/* ---- tracefs ---- */

static const char *tracefs_root(void)
{
	static const char *const roots[] = {
		"/sys/kernel/tracing", "/sys/kernel/debug/tracing",
	};
	char path[PATH_MAX];
	unsigned int i;

	for (i = 0; i < ARRAY_SIZE(roots); i++) {
		snprintf(path, sizeof(path), "%s/instances", roots[i]);
		if (!access(path, W_OK))
			return roots[i];
	}
	return NULL;
}

/* Writes @val to @dir/@file: 0 or -errno. */
static int tfs_write(const char *dir, const char *file, const char *val)
{
	char path[PATH_MAX];
	ssize_t len = strlen(val);
	int fd, ret = 0;

	snprintf(path, sizeof(path), "%s/%s", dir, file);
	fd = open(path, O_WRONLY | O_TRUNC | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (write(fd, val, len) != len)
		ret = -errno;
	close(fd);
	return ret;
}

/* Parses "key=value" words of @s into @e. */
static void tev_parse_fields(struct tev *e, char *s)
{
	char *save = NULL, *word, *eq;

	for (word = strtok_r(s, "\n ", &save); word && e->nr < ARRAY_SIZE(e->kv);
	     word = strtok_r(NULL, "\n ", &save)) {
		eq = strchr(word, '=');
		if (!eq)
			continue;
		*eq = '\0';
		snprintf(e->kv[e->nr].key, sizeof(e->kv[0].key), "%s", word);
		snprintf(e->kv[e->nr].val, sizeof(e->kv[0].val), "%s", eq + 1);
		e->nr++;
	}
}

/*
 * Parses a line of the trace file:
 *   "  COMM-PID  [CPU] FLAGS  TIMESTAMP: EVENT: key=value key=value..."
 * Returns false for anything else.
 */
static bool tev_parse(char *line, struct tev *e)
{
	char *ev = strstr(line, ": pcb_");
	char *cpu, *dash, *colon;

	if (line[0] == '#' || !ev)
		return false;
	memset(e, 0, sizeof(*e));
	ev += 2;
	colon = strchr(ev, ':');
	if (!colon || colon - ev >= (long)sizeof(e->event))
		return false;
	memcpy(e->event, ev, colon - ev);
	/* The pid: after the last '-' of the word before " [CPU]". */
	cpu = strstr(line, " [");
	if (cpu && cpu < ev) {
		*cpu = '\0';
		dash = strrchr(line, '-');
		if (dash)
			e->pid = atoi(dash + 1);
	}
	tev_parse_fields(e, colon + 1);
	return true;
}

static const char *tev_str(const struct tev *e, const char *key)
{
	unsigned int i;

	for (i = 0; i < e->nr; i++)
		if (!strcmp(e->kv[i].key, key))
			return e->kv[i].val;
	return "";
}

/* A numeric field, ~0 when absent or not a number. */
static __u64 tev_u64(const struct tev *e, const char *key)
{
	const char *s = tev_str(e, key);
	char *end;
	__u64 v;

	if (!*s)
		return ~0ULL;
	v = strtoull(s, &end, 0);
	return *end ? ~0ULL : v;
}

FIXTURE(trace) {
	int pfd;
	char dir[256];		/* the tracing instance */
	char name[PCB_NAME_MAX];
	__u32 topic_id;
	__u32 handle;
	struct pcbt_ring r[3];
	struct tev *ev;		/* this test's topic's events, in trace order */
	unsigned int nr;
	__u32 clock;
	__u32 tsc_khz;
};

FIXTURE_SETUP(trace)
{
	struct pcb_stats st;
	struct pcb_stats_query q = {
		.stats = (uintptr_t)&st,
		.size = sizeof(st),
	};
	const char *root;
	char path[PATH_MAX];
	unsigned int i;

	for (i = 0; i < ARRAY_SIZE(self->r); i++)
		self->r[i].fd = -1;
	if (!pcbt_is_root())
		PCBT_SKIP("tracefs needs root");
	root = tracefs_root();
	if (!root)
		PCBT_SKIP("no tracefs with instances");
	PCBT_OPEN(self->pfd);

	snprintf(path, sizeof(path), "%s/events/pcb", root);
	ASSERT_EQ(0, access(path, R_OK)) TH_LOG("no pcb events in %s", root);
	ASSERT_EQ(0, pcbt_ioctl(self->pfd, PCB_IOC_STATS, &q));
	self->clock = st.clock;
	self->tsc_khz = st.tsc_khz;

	pcbt_name(self->name, "trace");
	ASSERT_EQ(0, pcbt_create(self->pfd, self->name, SCHEMA, LEN, 0700,
				 &self->topic_id));
	ASSERT_EQ(0, pcbt_open_topic(self->pfd, self->name, SCHEMA,
				     &self->handle));

	snprintf(self->dir, sizeof(self->dir), "%s/instances/pcbt-trace-%d",
		 root, (int)getpid());
	ASSERT_EQ(0, mkdir(self->dir, 0700)) TH_LOG("%s: %s", self->dir,
						    strerror(errno));
	ASSERT_EQ(0, tfs_write(self->dir, "buffer_size_kb", "1024"));
	for (i = 0; i < ARRAY_SIZE(reason_filters); i++) {
		snprintf(path, sizeof(path), "events/pcb/%s/filter",
			 reason_filters[i][0]);
		ASSERT_EQ(0, tfs_write(self->dir, path, reason_filters[i][1]));
	}
	for (i = 0; i < ARRAY_SIZE(pcb_events); i++) {
		snprintf(path, sizeof(path), "events/pcb/%s/enable",
			 pcb_events[i]);
		ASSERT_EQ(0, tfs_write(self->dir, path, "1"))
			TH_LOG("enabling %s", pcb_events[i]);
	}
}

FIXTURE_TEARDOWN(trace)
{
	unsigned int i;

	for (i = 0; i < ARRAY_SIZE(self->r); i++)
		if (self->r[i].fd >= 0)
			pcbt_ring_close(&self->r[i]);
	pcbt_cleanup();
	if (self->dir[0]) {
		tfs_write(self->dir, "events/pcb/enable", "0");
		rmdir(self->dir);
	}
	free(self->ev);
	if (self->pfd >= 0)
		close(self->pfd);
}

/* Reads the instance's trace: the events of self->name, in order. */
static int read_events(FIXTURE_DATA(trace) *self)
{
	char path[PATH_MAX], *line = NULL;
	unsigned int cap = 0;
	size_t size = 0;
	struct tev e;
	FILE *f;

	snprintf(path, sizeof(path), "%s/trace", self->dir);
	f = fopen(path, "r");
	if (!f)
		return -errno;
	free(self->ev);
	self->ev = NULL;
	self->nr = 0;
	while (getline(&line, &size, f) > 0) {
		if (!tev_parse(line, &e) || strcmp(tev_str(&e, "name"), self->name))
			continue;
		if (self->nr == cap) {
			cap = cap ? 2 * cap : 64;
			self->ev = realloc(self->ev, cap * sizeof(*self->ev));
			if (!self->ev)
				return -ENOMEM;
		}
		self->ev[self->nr++] = e;
	}
	free(line);
	fclose(f);
	return 0;
}

/* The @nth (from 0) event @event, or NULL. */
static const struct tev *nth_event(FIXTURE_DATA(trace) *self,
				   const char *event, unsigned int nth)
{
	unsigned int i;

	for (i = 0; i < self->nr; i++)
		if (!strcmp(self->ev[i].event, event) && !nth--)
			return &self->ev[i];
	return NULL;
}

static unsigned int count_events(FIXTURE_DATA(trace) *self, const char *event)
{
	unsigned int n = 0;

	while (nth_event(self, event, n))
		n++;
	return n;
}

/* The event @event about message @seq, or NULL. */
static const struct tev *event_of_seq(FIXTURE_DATA(trace) *self,
				      const char *event, __u64 seq)
{
	const struct tev *e;
	unsigned int i;

	for (i = 0; (e = nth_event(self, event, i)); i++)
		if (tev_u64(e, "seq") == seq)
			return e;
	return NULL;
}

/* The pcb_subscribe or pcb_unsubscribe event of the ring of @ring_size. */
static const struct tev *sub_event(FIXTURE_DATA(trace) *self,
				   const char *event, __u32 ring_size)
{
	const struct tev *e;
	unsigned int i;

	for (i = 0; (e = nth_event(self, event, i)); i++)
		if (tev_u64(e, "ring") == ring_size)
			return e;
	return NULL;
}

/* The endpoint /proc/pcb/subscriptions shows for self->name's ring of @ring_size. */
static __u64 proc_endpoint(FIXTURE_DATA(trace) *self, __u32 ring_size)
{
	char line[256], name[PCB_NAME_MAX + 16];
	unsigned long long ep = 0, size;
	__u64 found = 0;
	FILE *f = fopen("/proc/pcb/subscriptions", "r");

	if (!f)
		return 0;
	while (!found && fgets(line, sizeof(line), f))
		if (sscanf(line, "%*u %79s %llu %*d %*s %*u %llu", name, &ep,
			   &size) == 3 && !strcmp(name, self->name) &&
		    size == ring_size)
			found = ep;
	fclose(f);
	return found;
}

/* What @cycles of the bus clock are in ns, as the kernel converts them. */
static __u64 clock_ns(FIXTURE_DATA(trace) *self, __u64 cycles)
{
	__u64 khz = self->tsc_khz;

	if (self->clock != PCB_CLOCK_TSC)
		return cycles;
	/* cycles * 10^6 / khz, rounded down, without overflowing. */
	return cycles / khz * 1000000 + cycles % khz * 1000000 / khz;
}

static void even_keys(union pcbt_filter *f)
{
	pcbt_filter_init(f);
	pcbt_pred(f, PCB_FIELD_KEY, PCB_OP_EQ, 0)->mask = 1;
}

/* Checks the fields every event of self->name has. */
#define EXPECT_TOPIC(e) do {						\
	EXPECT_EQ(self->topic_id, tev_u64((e), "topic"));		\
	EXPECT_STREQ(self->name, tev_str((e), "name"));			\
} while (0)

TEST_F(trace, publish_deliver_filter_reject)
{
	struct pcb_publish p[8];
	unsigned char buf[LEN] = { 0 };
	const struct tev *e, *pe;
	union pcbt_filter even;
	__u64 ep;
	unsigned int i;

	even_keys(&even);
	ASSERT_LE(0, pcbt_ring_open(BIG_RING, &self->r[0]));
	ASSERT_EQ(0, pcbt_subscribe_filter(self->r[0].fd, self->name, SCHEMA,
					   0, &even.f, NULL));
	for (i = 0; i < ARRAY_SIZE(p); i++)
		ASSERT_EQ(0, pcbt_publish_deps(self->pfd, self->handle, buf,
					       10 + i, i, NULL, 0, 0, &p[i]));
	ASSERT_EQ(0, read_events(self));

	/* The subscription, with the endpoint /proc shows. */
	ASSERT_EQ(1U, count_events(self, "pcb_subscribe"));
	e = nth_event(self, "pcb_subscribe", 0);
	EXPECT_TOPIC(e);
	ep = tev_u64(e, "endpoint");
	EXPECT_LT(0U, ep);
	EXPECT_EQ(ep, proc_endpoint(self, BIG_RING));
	EXPECT_EQ(0U, tev_u64(e, "flags"));
	EXPECT_EQ(1U, tev_u64(e, "preds"));
	EXPECT_EQ(BIG_RING, tev_u64(e, "ring"));
	EXPECT_EQ(0U, tev_u64(e, "delivered"));
	EXPECT_EQ(0U, tev_u64(e, "dropped"));
	EXPECT_EQ(0U, tev_u64(e, "rejected"));
	EXPECT_EQ(getpid(), e->pid);

	ASSERT_EQ(ARRAY_SIZE(p), count_events(self, "pcb_publish"));
	ASSERT_EQ(ARRAY_SIZE(p) / 2, count_events(self, "pcb_deliver"));
	ASSERT_EQ(ARRAY_SIZE(p) / 2, count_events(self, "pcb_filter_reject"));
	for (i = 0; i < ARRAY_SIZE(p); i++) {
		pe = event_of_seq(self, "pcb_publish", p[i].seq);
		ASSERT_NE(NULL, pe) TH_LOG("no pcb_publish of seq %llu",
					   (unsigned long long)p[i].seq);
		EXPECT_TOPIC(pe);
		EXPECT_EQ(p[i].msg_id, tev_u64(pe, "msg_id"));
		EXPECT_EQ(10 + i, tev_u64(pe, "len"));
		EXPECT_EQ(i, tev_u64(pe, "key"));
		EXPECT_EQ(0U, tev_u64(pe, "deps"));
		EXPECT_EQ(i % 2 ? 0U : 1U, tev_u64(pe, "delivered"));
		EXPECT_LT(0U, tev_u64(pe, "ns"));
		EXPECT_EQ(clock_ns(self, tev_u64(pe, "cycles")),
			  tev_u64(pe, "ns"));
		EXPECT_EQ(getpid(), pe->pid);

		e = event_of_seq(self, i % 2 ? "pcb_filter_reject" :
				 "pcb_deliver", p[i].seq);
		ASSERT_NE(NULL, e) TH_LOG("no fate for seq %llu",
					  (unsigned long long)p[i].seq);
		EXPECT_TOPIC(e);
		EXPECT_EQ(ep, tev_u64(e, "endpoint"));
		EXPECT_EQ(p[i].msg_id, tev_u64(e, "msg_id"));
		EXPECT_EQ(10 + i, tev_u64(e, "len"));
		EXPECT_STREQ(i % 2 ? "filtered" : "delivered",
			     tev_str(e, "reason"));
		if (i % 2) {
			EXPECT_EQ(0U, tev_u64(e, "ns"));
		} else {
			/* Its own commit comes before the publish's last. */
			EXPECT_LT(0U, tev_u64(e, "ns"));
			EXPECT_GE(tev_u64(pe, "ns"), tev_u64(e, "ns"));
		}
	}
	EXPECT_EQ(0U, count_events(self, "pcb_drop"));
	EXPECT_EQ(0U, count_events(self, "pcb_block"));
	EXPECT_EQ(0U, count_events(self, "pcb_timeout"));
	EXPECT_EQ(0U, count_events(self, "pcb_wakeup"));
	EXPECT_EQ(0U, count_events(self, "pcb_unsubscribe"));
}

TEST_F(trace, lossy_drops)
{
	static const char msg[LEN];
	struct pcb_publish p[FIT + 8];
	const struct tev *e;
	__u64 ep;
	unsigned int i;

	ASSERT_LE(0, pcbt_ring_open(SMALL_RING, &self->r[0]));
	ASSERT_EQ(0, pcbt_subscribe(self->r[0].fd, self->name, SCHEMA,
				    PCB_SUB_LOSSY, NULL));
	for (i = 0; i < ARRAY_SIZE(p); i++)
		ASSERT_EQ(0, pcbt_publish_deps(self->pfd, self->handle, msg,
					       LEN, i, NULL, 0, 0, &p[i]));
	EXPECT_EQ(ARRAY_SIZE(p) - FIT, self->r[0].hdr->dropped);
	ASSERT_EQ(0, read_events(self));

	ep = proc_endpoint(self, SMALL_RING);
	ASSERT_EQ(ARRAY_SIZE(p), count_events(self, "pcb_publish"));
	ASSERT_EQ(FIT, count_events(self, "pcb_deliver"));
	ASSERT_EQ(ARRAY_SIZE(p) - FIT, count_events(self, "pcb_drop"));
	for (i = 0; i < ARRAY_SIZE(p); i++) {
		e = event_of_seq(self, "pcb_publish", p[i].seq);
		ASSERT_NE(NULL, e);
		EXPECT_EQ(i < FIT ? 1U : 0U, tev_u64(e, "delivered"));
		e = event_of_seq(self, i < FIT ? "pcb_deliver" : "pcb_drop",
				 p[i].seq);
		ASSERT_NE(NULL, e) TH_LOG("no fate for seq %llu",
					  (unsigned long long)p[i].seq);
		EXPECT_TOPIC(e);
		EXPECT_EQ(ep, tev_u64(e, "endpoint"));
		EXPECT_EQ(p[i].msg_id, tev_u64(e, "msg_id"));
		EXPECT_EQ(LEN, tev_u64(e, "len"));
		if (i >= FIT) {
			EXPECT_STREQ("full", tev_str(e, "reason"));
			EXPECT_EQ(0U, tev_u64(e, "ns"));
		}
	}
	/* Lossy rings never hold a publisher back. */
	EXPECT_EQ(0U, count_events(self, "pcb_block"));
}

TEST_F(trace, broken_ring_drops)
{
	struct pcb_publish p[3];
	const struct tev *e;
	__u64 ep;
	unsigned int i;

	ASSERT_LE(0, pcbt_ring_open(SMALL_RING, &self->r[0]));
	ASSERT_EQ(0, pcbt_subscribe(self->r[0].fd, self->name, SCHEMA, 0,
				    NULL));
	ASSERT_EQ(0, pcbt_publish_deps(self->pfd, self->handle, "a", 1, 0,
				       NULL, 0, 0, &p[0]));
	/* A consumer position ahead of the producer breaks the ring. */
	pcbt_store_release(&self->r[0].cons->cons_pos,
			   pcbt_prod_pos(&self->r[0]) + PCB_REC_ALIGN);
	for (i = 1; i < ARRAY_SIZE(p); i++)
		ASSERT_EQ(0, pcbt_publish_deps(self->pfd, self->handle, "b", 1,
					       0, NULL, 0, 0, &p[i]));
	EXPECT_NE(0U, pcbt_ring_flags(&self->r[0]) & PCB_RING_BROKEN);
	ASSERT_EQ(0, read_events(self));

	ep = proc_endpoint(self, SMALL_RING);
	ASSERT_EQ(1U, count_events(self, "pcb_deliver"));
	EXPECT_NE(NULL, event_of_seq(self, "pcb_deliver", p[0].seq));
	ASSERT_EQ(ARRAY_SIZE(p) - 1, count_events(self, "pcb_drop"));
	for (i = 1; i < ARRAY_SIZE(p); i++) {
		e = event_of_seq(self, "pcb_drop", p[i].seq);
		ASSERT_NE(NULL, e);
		EXPECT_TOPIC(e);
		EXPECT_EQ(ep, tev_u64(e, "endpoint"));
		EXPECT_EQ(p[i].msg_id, tev_u64(e, "msg_id"));
		EXPECT_STREQ("broken", tev_str(e, "reason"));
		e = event_of_seq(self, "pcb_publish", p[i].seq);
		ASSERT_NE(NULL, e);
		EXPECT_EQ(0U, tev_u64(e, "delivered"));
	}
}

/* A publisher that waits for room in another thread. */
struct bg_pub {
	int fd;
	__u32 handle;
	pthread_t thread;
	int tid;
	int ret;
	struct pcb_publish p;
};

static void *bg_publish(void *arg)
{
	static const char msg[LEN];
	struct bg_pub *b = arg;

	b->tid = syscall(SYS_gettid);
	b->ret = pcbt_publish(b->fd, b->handle, msg, LEN, 0, 60 * PCBT_SEC,
			      &b->p);
	return NULL;
}

static bool flag_within(const struct pcbt_ring *r, __u32 flag, unsigned int ms)
{
	while (!(pcbt_ring_flags(r) & flag) && ms--)
		pcbt_sleep_ms(1);
	return pcbt_ring_flags(r) & flag;
}

TEST_F(trace, block_and_timeout)
{
	static const char msg[LEN];
	struct bg_pub bg = { .fd = self->pfd, .handle = self->handle };
	const struct tev *e;
	unsigned int i;

	ASSERT_LE(0, pcbt_ring_open(SMALL_RING, &self->r[0]));
	ASSERT_EQ(0, pcbt_subscribe(self->r[0].fd, self->name, SCHEMA, 0,
				    NULL));
	for (i = 0; i < FIT; i++)
		ASSERT_EQ(0, pcbt_publish(self->pfd, self->handle, msg, LEN,
					  PCB_PUB_NONBLOCK, 0, NULL));
	/* Refused without waiting: no pcb_block. */
	ASSERT_EQ(-EAGAIN, pcbt_publish(self->pfd, self->handle, msg, LEN,
					PCB_PUB_NONBLOCK, 0, NULL));
	/* Waits, gives up. */
	ASSERT_EQ(-ETIMEDOUT, pcbt_publish(self->pfd, self->handle, msg, LEN,
					   0, 30 * PCBT_MS, NULL));
	/* Waits, then the consumer makes room. */
	ASSERT_EQ(0, pcbt_ioctl_val(self->r[0].fd, PCB_IOC_NOTIFY, 0));
	ASSERT_EQ(0, pthread_create(&bg.thread, NULL, bg_publish, &bg));
	ASSERT_TRUE(flag_within(&self->r[0], PCB_RING_PUB_WAITING, 20000));
	EXPECT_EQ(FIT, pcbt_ring_drain(&self->r[0]));
	pthread_join(bg.thread, NULL);
	ASSERT_EQ(0, bg.ret);
	ASSERT_EQ(0, read_events(self));

	ASSERT_EQ(2U, count_events(self, "pcb_block"));
	e = nth_event(self, "pcb_block", 0);
	EXPECT_TOPIC(e);
	EXPECT_EQ(LEN, tev_u64(e, "len"));
	EXPECT_EQ(0U, tev_u64(e, "ns"));
	EXPECT_EQ(getpid(), e->pid);
	e = nth_event(self, "pcb_block", 1);
	EXPECT_TOPIC(e);
	EXPECT_EQ(LEN, tev_u64(e, "len"));
	EXPECT_EQ(0U, tev_u64(e, "ns"));
	EXPECT_EQ(bg.tid, e->pid);

	ASSERT_EQ(1U, count_events(self, "pcb_timeout"));
	e = nth_event(self, "pcb_timeout", 0);
	EXPECT_TOPIC(e);
	EXPECT_EQ(LEN, tev_u64(e, "len"));
	EXPECT_LE(30 * PCBT_MS, tev_u64(e, "ns"));
	EXPECT_GT(60 * PCBT_SEC, tev_u64(e, "ns"));
	EXPECT_EQ(getpid(), e->pid);

	/* Only what went out is published: FIT, then the waiter's. */
	ASSERT_EQ(FIT + 1, count_events(self, "pcb_publish"));
	e = event_of_seq(self, "pcb_publish", bg.p.seq);
	ASSERT_NE(NULL, e);
	EXPECT_EQ(FIT + 1, bg.p.seq);
	EXPECT_EQ(bg.p.msg_id, tev_u64(e, "msg_id"));
	EXPECT_EQ(bg.tid, e->pid);
	EXPECT_EQ(FIT + 1, count_events(self, "pcb_deliver"));
}

/* Sleeps in PCB_IOC_WAIT until a record comes. */
static void *sleeper(void *p)
{
	return (void *)(long)pcbt_ring_wait(p, 60 * PCBT_SEC);
}

TEST_F(trace, wakeup)
{
	struct pcb_publish p[2];
	const struct tev *e;
	pthread_t thread;
	void *ret;
	__u64 ep;
	unsigned int ms = 20000;

	ASSERT_LE(0, pcbt_ring_open(BIG_RING, &self->r[0]));
	ASSERT_EQ(0, pcbt_subscribe(self->r[0].fd, self->name, SCHEMA, 0,
				    NULL));
	ASSERT_EQ(0, pthread_create(&thread, NULL, sleeper, &self->r[0]));
	while (!(pcbt_load_once(&self->r[0].cons->flags) &
		 PCB_CONS_NEED_WAKEUP) && ms--)
		pcbt_sleep_ms(1);
	pcbt_sleep_ms(50);	/* into the kernel, most likely */
	ASSERT_EQ(0, pcbt_publish(self->pfd, self->handle, "x", 1, 0, 0, &p[0]));
	pthread_join(thread, &ret);
	ASSERT_EQ(0, (long)ret);
	/* Nobody asleep: no wake-up. */
	ASSERT_EQ(0, pcbt_publish(self->pfd, self->handle, "y", 1, 0, 0, &p[1]));
	ASSERT_EQ(0, read_events(self));

	ep = proc_endpoint(self, BIG_RING);
	ASSERT_EQ(1U, count_events(self, "pcb_wakeup"));
	e = nth_event(self, "pcb_wakeup", 0);
	EXPECT_TOPIC(e);
	EXPECT_EQ(ep, tev_u64(e, "endpoint"));
	EXPECT_EQ(p[0].seq, tev_u64(e, "seq"));
	EXPECT_EQ(getpid(), e->pid);	/* the publisher wakes */
}

TEST_F(trace, subscribe_and_unsubscribe)
{
	/* Three rings told apart by their size. */
	static const __u32 sizes[3] = { 8192, BIG_RING, 16384 };
	union pcbt_filter f;
	struct pcb_sub_info info;
	const struct tev *s, *u;
	__u64 ep[3];
	unsigned int i;

	pcbt_filter_init(&f);
	pcbt_pred(&f, PCB_FIELD_KEY, PCB_OP_EQ, 1)->flags = PCB_PRED_OR;
	pcbt_pred(&f, PCB_FIELD_KEY, PCB_OP_EQ, 3);
	for (i = 0; i < 3; i++)
		ASSERT_LE(0, pcbt_ring_open(sizes[i], &self->r[i]));
	ASSERT_EQ(0, pcbt_subscribe_filter(self->r[0].fd, self->name, SCHEMA,
					   PCB_SUB_LOSSY, &f.f, NULL));
	ASSERT_EQ(0, pcbt_subscribe(self->r[1].fd, self->name, SCHEMA, 0,
				    NULL));
	ASSERT_EQ(0, pcbt_subscribe(self->r[2].fd, self->name, SCHEMA, 0,
				    NULL));
	for (i = 0; i < 3; i++)
		ep[i] = proc_endpoint(self, sizes[i]);
	for (i = 0; i < 5; i++)
		ASSERT_EQ(0, pcbt_publish_deps(self->pfd, self->handle, "m", 1,
					       i, NULL, 0, 0, NULL));
	ASSERT_EQ(0, pcbt_sub_info(self->r[0].fd, self->topic_id, &info));
	ASSERT_EQ(2U, info.delivered);
	ASSERT_EQ(3U, info.rejected);

	/* Three ways to end a subscription. */
	ASSERT_EQ(0, pcbt_unsubscribe(self->r[0].fd, self->topic_id));
	pcbt_ring_close(&self->r[1]);
	ASSERT_EQ(0, pcbt_delete(self->pfd, self->name));
	ASSERT_EQ(0, read_events(self));

	ASSERT_EQ(3U, count_events(self, "pcb_subscribe"));
	ASSERT_EQ(3U, count_events(self, "pcb_unsubscribe"));
	for (i = 0; i < 3; i++) {
		s = sub_event(self, "pcb_subscribe", sizes[i]);
		u = sub_event(self, "pcb_unsubscribe", sizes[i]);
		ASSERT_NE(NULL, s);
		ASSERT_NE(NULL, u);
		EXPECT_TOPIC(s);
		EXPECT_TOPIC(u);
		EXPECT_LT(0U, ep[i]);
		EXPECT_EQ(ep[i], tev_u64(s, "endpoint"));
		EXPECT_EQ(ep[i], tev_u64(u, "endpoint"));
		EXPECT_EQ(i ? 0U : PCB_SUB_LOSSY, tev_u64(s, "flags"));
		EXPECT_EQ(i ? 0U : PCB_SUB_LOSSY, tev_u64(u, "flags"));
		EXPECT_EQ(i ? 0U : 2U, tev_u64(s, "preds"));
		EXPECT_EQ(i ? 0U : 2U, tev_u64(u, "preds"));
		EXPECT_EQ(0U, tev_u64(s, "delivered"));
		EXPECT_EQ(0U, tev_u64(s, "rejected"));
		/* The final counters. */
		EXPECT_EQ(i ? 5U : 2U, tev_u64(u, "delivered"));
		EXPECT_EQ(0U, tev_u64(u, "dropped"));
		EXPECT_EQ(i ? 0U : 3U, tev_u64(u, "rejected"));
	}
	EXPECT_NE(ep[0], ep[1]);
	EXPECT_NE(ep[1], ep[2]);
	EXPECT_NE(ep[0], ep[2]);
}

/* Publishes a batch of @n entries, keys @key0 ..., lengths 8 + i. */
static int publish_batch(FIXTURE_DATA(trace) *self,
			 struct pcb_batch_entry *ent, unsigned int n,
			 __u64 key0, __u32 flags)
{
	static const char msg[LEN];
	struct pcb_publish_batch b = {
		.entries = (uintptr_t)ent,
		.count = n,
		.flags = flags,
	};
	unsigned int i;
	int ret;

	memset(ent, 0, n * sizeof(*ent));
	for (i = 0; i < n; i++) {
		ent[i].handle = self->handle;
		ent[i].payload = (uintptr_t)msg;
		ent[i].len = 8 + i;
		ent[i].key = key0 + i;
	}
	ret = pcbt_ioctl(self->pfd, PCB_IOC_PUBLISH_BATCH, &b);
	if (!ret && b.published != n)
		ret = -EIO;
	for (i = 0; !ret && i < n; i++)
		ret = ent[i].result;
	return ret;
}

/*
 * One event per entry and subscription, as for single publishes; the
 * subscription's filter decides each entry, atomic batch or not.
 */
TEST_F(trace, batch_publish)
{
	struct pcb_batch_entry ent[2][4];
	const struct tev *pe, *fe;
	union pcbt_filter even;
	__u64 ep, ns = 0;
	unsigned int i, j;

	even_keys(&even);
	ASSERT_LE(0, pcbt_ring_open(BIG_RING, &self->r[0]));
	ASSERT_EQ(0, pcbt_subscribe_filter(self->r[0].fd, self->name, SCHEMA,
					   0, &even.f, NULL));
	ASSERT_EQ(0, publish_batch(self, ent[0], 4, 100, 0));
	ASSERT_EQ(0, publish_batch(self, ent[1], 4, 200, PCB_PUB_ATOMIC));
	ASSERT_EQ(0, read_events(self));

	ep = proc_endpoint(self, BIG_RING);
	ASSERT_EQ(8U, count_events(self, "pcb_publish"));
	ASSERT_EQ(4U, count_events(self, "pcb_deliver"));
	ASSERT_EQ(4U, count_events(self, "pcb_filter_reject"));
	for (j = 0; j < 2; j++) {
		for (i = 0; i < 4; i++) {
			const struct pcb_batch_entry *e = &ent[j][i];

			pe = event_of_seq(self, "pcb_publish", e->seq);
			fe = event_of_seq(self, i % 2 ? "pcb_filter_reject" :
					  "pcb_deliver", e->seq);
			ASSERT_NE(NULL, pe);
			ASSERT_NE(NULL, fe);
			EXPECT_TOPIC(pe);
			EXPECT_EQ(e->msg_id, tev_u64(pe, "msg_id"));
			EXPECT_EQ(8 + i, tev_u64(pe, "len"));
			EXPECT_EQ(e->key, tev_u64(pe, "key"));
			EXPECT_EQ(i % 2 ? 0U : 1U, tev_u64(pe, "delivered"));
			EXPECT_LT(0U, tev_u64(pe, "ns"));
			/* An atomic batch is one publish: one cost for all. */
			if (j && i)
				EXPECT_EQ(ns, tev_u64(pe, "ns"));
			ns = tev_u64(pe, "ns");
			EXPECT_TOPIC(fe);
			EXPECT_EQ(ep, tev_u64(fe, "endpoint"));
			EXPECT_EQ(e->msg_id, tev_u64(fe, "msg_id"));
			EXPECT_EQ(8 + i, tev_u64(fe, "len"));
			EXPECT_STREQ(i % 2 ? "filtered" : "delivered",
				     tev_str(fe, "reason"));
		}
	}
}

TEST_HARNESS_MAIN
