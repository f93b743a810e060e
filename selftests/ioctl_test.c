// SPDX-License-Identifier: GPL-2.0
/*
 * Hostile arguments to every ioctl of /dev/pcb, and to the io_uring
 * publish command: unknown commands, unknown flag bits, reserved words,
 * bad and misaligned pointers, overlapping buffers, absurd lengths and
 * counts.  Each must get the errno <linux/pcb.h> documents and, when it
 * fails, leave nothing behind: the tests compare the bus before and after
 * (topics, messages, subscriptions, handles, rings, filters, and
 * /proc/pcb/usage when it can be read).
 *
 * Most tests walk a table.  Every ioctl has a template: an argument that
 * succeeds (or, for WAIT, times out) as it is.  A case spoils one thing in
 * a copy of the template, so that the error can only come from that.  At
 * the end of a walk the templates themselves are run, to prove they were
 * good.
 */
#include "pcb_util.h"

#include <stddef.h>
#include <sys/syscall.h>
#include <linux/io_uring.h>

#define SCHEMA		0x10c7
#define LEN		128		/* max_msg_size of the topics */
#define MSG		16		/* payload of the templates */
#define RING		65536
#define NDEPS		PCB_MAX_DEPS

/* Addresses nothing in userspace can have. */
#define KERNEL_ADDR	0xffff800000000000ULL
#define VSYSCALL_ADDR	0xffffffffff600000ULL
#define WRAP_ADDR	(~0ULL - 7)

enum cmd_id {
	C_CREATE,
	C_DELETE,
	C_INFO,
	C_LIST,
	C_OPEN,
	C_CLOSE,
	C_PUBLISH,
	C_RING_SETUP,
	C_SUBSCRIBE,
	C_UNSUBSCRIBE,
	C_WAIT,
	C_BATCH,
	C_BATCH_ATOMIC,
	C_SET_FILTER,
	C_SUB_INFO,
	C_STATS,
	NR_CMDS
};

static const struct cmd {
	const char *name;
	unsigned int nr;	/* the ioctl command */
	int control;		/* what the template gets */
	unsigned short out_end;	/* the kernel writes below this; 0: all */
} cmds[NR_CMDS] = {
	[C_CREATE]	 = { "TOPIC_CREATE", PCB_IOC_TOPIC_CREATE, 0 },
	[C_DELETE]	 = { "TOPIC_DELETE", PCB_IOC_TOPIC_DELETE, 0 },
	[C_INFO]	 = { "TOPIC_INFO", PCB_IOC_TOPIC_INFO, 0 },
	[C_LIST]	 = { "TOPIC_LIST", PCB_IOC_TOPIC_LIST, 0 },
	[C_OPEN]	 = { "TOPIC_OPEN", PCB_IOC_TOPIC_OPEN, 0 },
	[C_CLOSE]	 = { "TOPIC_CLOSE", PCB_IOC_TOPIC_CLOSE, 0 },
	[C_PUBLISH]	 = { "PUBLISH", PCB_IOC_PUBLISH, 0,
			     offsetof(struct pcb_publish, seq) + sizeof(__u64) },
	[C_RING_SETUP]	 = { "RING_SETUP", PCB_IOC_RING_SETUP, 0 },
	[C_SUBSCRIBE]	 = { "SUBSCRIBE", PCB_IOC_SUBSCRIBE, 0 },
	[C_UNSUBSCRIBE]	 = { "UNSUBSCRIBE", PCB_IOC_UNSUBSCRIBE, 0 },
	[C_WAIT]	 = { "WAIT", PCB_IOC_WAIT, -ETIMEDOUT },
	[C_BATCH]	 = { "PUBLISH_BATCH", PCB_IOC_PUBLISH_BATCH, 0 },
	[C_BATCH_ATOMIC] = { "PUBLISH_BATCH(ATOMIC)", PCB_IOC_PUBLISH_BATCH, 0 },
	[C_SET_FILTER]	 = { "SET_FILTER", PCB_IOC_SET_FILTER, 0 },
	[C_SUB_INFO]	 = { "SUB_INFO", PCB_IOC_SUB_INFO, 0 },
	[C_STATS]	 = { "STATS", PCB_IOC_STATS, 0 },
};

union arg {
	struct pcb_topic_create create;
	struct pcb_topic_name name;
	struct pcb_topic_info info;
	struct pcb_topic_list list;
	struct pcb_topic_open open;
	struct pcb_topic_close close;
	struct pcb_publish pub;
	struct pcb_ring_setup setup;
	struct pcb_subscribe sub;
	struct pcb_wait wait;
	struct pcb_publish_batch batch;
	struct pcb_sub_filter sf;
	struct pcb_sub_info si;
	struct pcb_stats_query stats;
	__u64 words[32];
};

/* What the pointers inside the templates point to. */
struct bufs {
	struct pcb_topic_info list[2];
	unsigned char payload[LEN];
	__u64 deps[NDEPS];
	struct pcb_batch_entry ents[2];
	union pcbt_filter filter;
	struct pcb_stats stats;
};

/* What a failed call must not have changed. */
struct snap {
	long long topics;	/* named by this process */
	long long published;	/* of the topic */
	long long subs;		/* of the topic */
	long long bus_published;
	__u64 prod;		/* of the subscribed ring */
	__u32 next_handle;	/* TOPIC_OPEN would give */
	int handle2;		/* 0: still open */
	int ring2_sub;		/* SUB_INFO of ring2: -ENOENT */
	__u32 nr_preds;		/* of the ring's subscription */
	int bare_ring;		/* mmap() of the bare endpoint: -EBADFD */
	int spare;		/* TOPIC_INFO of the spare name: -ENOENT */
	int usage_ret;
	struct pcbt_usage usage;
};

FIXTURE(ioc) {
	int fd;			/* creates the topics, holds the handles */
	char name[PCB_NAME_MAX];	/* the topic everything works on */
	char victim[PCB_NAME_MAX];	/* a topic TOPIC_DELETE may take */
	char spare[PCB_NAME_MAX];	/* a name TOPIC_CREATE may take */
	__u32 topic_id;
	__u32 handle;
	__u32 handle2;		/* open on @name too; TOPIC_CLOSE may take it */
	__u64 ids[NDEPS];	/* of published messages: good dependencies */
	struct pcbt_ring ring;	/* subscribed to @name */
	struct pcbt_ring ring2;	/* subscribed to nothing */
	int bare;		/* an endpoint without a ring */
	struct bufs b;
	long page;
	unsigned char *ro;	/* a read-only page */
	unsigned char *none;	/* a page without access */
	unsigned char *guard;	/* a writable page, then one without access */
	unsigned char *half;	/* a writable page, then a read-only one */
};

static void *map_pages(int n, int prot)
{
	void *p = mmap(NULL, n * sysconf(_SC_PAGESIZE), prot,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	return p == MAP_FAILED ? NULL : p;
}

/* An address with nothing mapped at it, just now. */
static void *hole(void)
{
	long page = sysconf(_SC_PAGESIZE);
	void *p = map_pages(1, PROT_NONE);

	if (p)
		munmap(p, page);
	return p;
}

/*
 * Nothing more held than before.  Less is no failure: what an earlier
 * test closed may be freed only now, after a grace period.
 */
static bool usage_not_more(const struct pcbt_usage *before,
			   const struct pcbt_usage *now)
{
	unsigned int i;

	for (i = 0; i < PCBT_U_NR; i++)
		if (now->v[i] > before->v[i])
			return false;
	return true;
}

/* Waits until what earlier tests closed is freed, up to a few seconds. */
static void usage_settle(void)
{
	struct pcbt_usage a, b;
	int i;

	if (pcbt_usage_read(&a))
		return;
	for (i = 0; i < 300; i++) {
		pcbt_sleep_ms(10);
		if (pcbt_usage_read(&b) || (pcbt_usage_equal(&a, &b) && i > 5))
			return;
		a = b;
	}
}

FIXTURE_SETUP(ioc)
{
	struct pcb_publish out;
	int i;

	self->page = sysconf(_SC_PAGESIZE);
	self->bare = -1;
	self->ring.fd = -1;
	self->ring2.fd = -1;
	PCBT_OPEN(self->fd);
	pcbt_name(self->name, "ioc");
	pcbt_name(self->victim, "victim");
	pcbt_name(self->spare, "spare");
	ASSERT_EQ(0, pcbt_create(self->fd, self->name, SCHEMA, LEN, 0700,
				 &self->topic_id));
	ASSERT_EQ(0, pcbt_create(self->fd, self->victim, SCHEMA, LEN, 0700,
				 NULL));
	ASSERT_EQ(0, pcbt_open_topic(self->fd, self->name, SCHEMA,
				     &self->handle));
	ASSERT_EQ(0, pcbt_open_topic(self->fd, self->name, SCHEMA,
				     &self->handle2));
	ASSERT_LE(0, pcbt_ring_open(RING, &self->ring));
	ASSERT_EQ(0, pcbt_subscribe(self->ring.fd, self->name, SCHEMA, 0,
				    NULL));
	ASSERT_LE(0, pcbt_ring_open(RING, &self->ring2));
	self->bare = pcbt_open();
	ASSERT_LE(0, self->bare);

	for (i = 0; i < NDEPS; i++) {
		ASSERT_EQ(0, pcbt_publish(self->fd, self->handle, "dep", 3, 0,
					  0, &out));
		self->ids[i] = out.msg_id;
	}
	pcbt_ring_drain(&self->ring);

	self->ro = map_pages(1, PROT_READ | PROT_WRITE);
	self->none = map_pages(1, PROT_NONE);
	self->guard = pcbt_guarded_page();
	self->half = map_pages(2, PROT_READ | PROT_WRITE);
	ASSERT_NE(NULL, self->ro);
	ASSERT_NE(NULL, self->none);
	ASSERT_NE(NULL, self->guard);
	ASSERT_NE(NULL, self->half);
	ASSERT_EQ(0, mprotect(self->ro, self->page, PROT_READ));
	ASSERT_EQ(0, mprotect(self->half + self->page, self->page, PROT_READ));
	usage_settle();
}

FIXTURE_TEARDOWN(ioc)
{
	pcbt_ring_close(&self->ring);
	pcbt_ring_close(&self->ring2);
	if (self->bare >= 0)
		close(self->bare);
	pcbt_cleanup();
	if (self->fd >= 0)
		close(self->fd);
}

/* Fills @a with the template of @c; returns the endpoint to call. */
static int template(FIXTURE_DATA(ioc) *self, enum cmd_id c, union arg *a)
{
	struct bufs *b = &self->b;
	int i;

	memset(a, 0, sizeof(*a));
	memset(b, 0, sizeof(*b));
	memset(b->payload, 0x5a, sizeof(b->payload));
	memcpy(b->deps, self->ids, sizeof(b->deps));
	/* Room for what the templates publish; WAIT must find nothing. */
	pcbt_ring_drain(&self->ring);

	switch (c) {
	case C_CREATE:
		pcbt_copy_name(a->create.name, self->spare);
		a->create.schema_id = SCHEMA;
		a->create.max_msg_size = LEN;
		a->create.mode = 0700;
		a->create.uid = PCB_OWNER_CALLER;
		a->create.gid = PCB_OWNER_CALLER;
		return self->fd;
	case C_DELETE:
		pcbt_copy_name(a->name.name, self->victim);
		return self->fd;
	case C_INFO:
		pcbt_copy_name(a->info.name, self->name);
		return self->fd;
	case C_LIST:
		/* The topic and the victim: two topics from start_id on. */
		a->list.entries = (uintptr_t)b->list;
		a->list.capacity = ARRAY_SIZE(b->list);
		a->list.start_id = self->topic_id;
		return self->fd;
	case C_OPEN:
		pcbt_copy_name(a->open.name, self->name);
		a->open.schema_id = SCHEMA;
		return self->fd;
	case C_CLOSE:
		a->close.handle = self->handle2;
		return self->fd;
	case C_PUBLISH:
		a->pub.handle = self->handle;
		a->pub.flags = PCB_PUB_NONBLOCK;
		a->pub.payload = (uintptr_t)b->payload;
		a->pub.len = MSG;
		a->pub.nr_deps = NDEPS;
		a->pub.deps = (uintptr_t)b->deps;
		return self->fd;
	case C_RING_SETUP:
		a->setup.data_size = self->page > PCB_RING_MIN_SIZE ?
				     self->page : PCB_RING_MIN_SIZE;
		return self->bare;
	case C_SUBSCRIBE:
		pcbt_copy_name(a->sub.name, self->name);
		a->sub.schema_id = SCHEMA;
		return self->ring2.fd;
	case C_UNSUBSCRIBE:
		a->sub.topic_id = self->topic_id;
		return self->ring.fd;
	case C_WAIT:
		a->wait.timeout_ns = PCBT_MS;
		return self->ring.fd;
	case C_BATCH:
	case C_BATCH_ATOMIC:
		for (i = 0; i < 2; i++) {
			b->ents[i].handle = self->handle;
			b->ents[i].payload = (uintptr_t)b->payload;
			b->ents[i].len = MSG;
			b->ents[i].result = 0x7777;
		}
		a->batch.entries = (uintptr_t)b->ents;
		a->batch.count = 2;
		a->batch.flags = PCB_PUB_NONBLOCK |
				 (c == C_BATCH_ATOMIC ? PCB_PUB_ATOMIC : 0);
		a->batch.nr_deps = NDEPS;
		a->batch.deps = (uintptr_t)b->deps;
		return self->fd;
	case C_SET_FILTER:
		pcbt_pred(&b->filter, PCB_FIELD_KEY, PCB_OP_NE, 0xdead);
		a->sf.topic_id = self->topic_id;
		a->sf.filter = (uintptr_t)&b->filter;
		return self->ring.fd;
	case C_SUB_INFO:
		a->si.topic_id = self->topic_id;
		return self->ring.fd;
	case C_STATS:
		a->stats.stats = (uintptr_t)&b->stats;
		a->stats.size = PCB_STATS_SIZE_V1;
		return self->fd;
	case NR_CMDS:
		break;
	}
	return -1;
}

/* Undoes what a successful template did, for the next case. */
static void undo(struct __test_metadata *_metadata, FIXTURE_DATA(ioc) *self,
		 enum cmd_id c, const union arg *a)
{
	switch (c) {
	case C_CREATE:
		ASSERT_EQ(0, pcbt_delete(self->fd, self->spare));
		break;
	case C_DELETE:
		ASSERT_EQ(0, pcbt_create(self->fd, self->victim, SCHEMA, LEN,
					 0700, NULL));
		break;
	case C_OPEN:
		ASSERT_EQ(0, pcbt_close_topic(self->fd, a->open.handle));
		break;
	case C_CLOSE:
		/* Handles are allocated lowest first: the same number. */
		ASSERT_EQ(0, pcbt_open_topic(self->fd, self->name, SCHEMA,
					     &self->handle2));
		break;
	case C_RING_SETUP:
		close(self->bare);
		self->bare = pcbt_open();
		ASSERT_LE(0, self->bare);
		break;
	case C_SUBSCRIBE:
		ASSERT_EQ(0, pcbt_unsubscribe(self->ring2.fd, self->topic_id));
		break;
	case C_UNSUBSCRIBE:
		ASSERT_EQ(0, pcbt_subscribe(self->ring.fd, self->name, SCHEMA,
					    0, NULL));
		break;
	case C_SET_FILTER:
		ASSERT_EQ(0, pcbt_set_filter(self->ring.fd, self->topic_id,
					     NULL));
		break;
	default:
		break;
	}
	pcbt_ring_drain(&self->ring);
}

/* Topics whose name this process made. */
static long long my_topics(int fd)
{
	struct pcb_topic_info e[16];
	struct pcb_topic_list l = { .entries = (uintptr_t)e,
				    .capacity = ARRAY_SIZE(e) };
	char prefix[32];
	long long n = 0;
	__u32 i;

	snprintf(prefix, sizeof(prefix), "pcbt-%d-", (int)getpid());
	do {
		if (pcbt_ioctl(fd, PCB_IOC_TOPIC_LIST, &l))
			return -1;
		for (i = 0; i < l.count; i++)
			n += !strncmp(e[i].name, prefix, strlen(prefix));
		l.start_id = l.next_id;
	} while (l.next_id);
	return n;
}

static long long bus_published(int fd)
{
	struct pcb_stats st;
	struct pcb_stats_query q = { .stats = (uintptr_t)&st,
				     .size = sizeof(st) };

	return pcbt_ioctl(fd, PCB_IOC_STATS, &q) ? -1 : (long long)st.published;
}

/* Whether handle @h is open: a message too long says so, and is refused. */
static int handle_state(int fd, __u32 h)
{
	static const char buf[LEN + 1];
	int ret = pcbt_publish(fd, h, buf, LEN + 1, PCB_PUB_NONBLOCK, 0, NULL);

	return ret == -EMSGSIZE ? 0 : ret;
}

static int mmap_state(int fd)
{
	long page = sysconf(_SC_PAGESIZE);
	void *p = mmap(NULL, page, PROT_READ, MAP_SHARED, fd, 0);

	if (p == MAP_FAILED)
		return -errno;
	munmap(p, page);
	return 0;
}

static void take_snap(FIXTURE_DATA(ioc) *self, struct snap *s)
{
	struct pcb_topic_info info;
	struct pcb_sub_info si;
	__u32 h = ~0U;

	memset(s, 0, sizeof(*s));
	s->topics = my_topics(self->fd);
	s->published = pcbt_published(self->fd, self->name);
	s->subs = pcbt_nr_subs(self->fd, self->name);
	s->bus_published = bus_published(self->fd);
	s->prod = pcbt_prod_pos(&self->ring);
	if (!pcbt_open_topic(self->fd, self->name, SCHEMA, &h))
		pcbt_close_topic(self->fd, h);
	s->next_handle = h;
	s->handle2 = handle_state(self->fd, self->handle2);
	s->ring2_sub = pcbt_sub_info(self->ring2.fd, self->topic_id, &si);
	s->nr_preds = pcbt_sub_info(self->ring.fd, self->topic_id, &si) ?
		      ~0U : si.nr_preds;
	s->bare_ring = mmap_state(self->bare);
	s->spare = pcbt_info(self->fd, self->spare, &info);
	s->usage_ret = pcbt_usage_read(&s->usage);
}

/* The bus is as @before says; @what names the case for the log. */
static void expect_untouched(struct __test_metadata *_metadata,
			     FIXTURE_DATA(ioc) *self,
			     const struct snap *before, const char *what)
{
	struct snap now;
	char diff[256];

	take_snap(self, &now);
	if (!before->usage_ret && !now.usage_ret &&
	    !usage_not_more(&before->usage, &now.usage)) {
		/* Something freed late: rings go after a grace period. */
		pcbt_usage_wait(&before->usage, -1, 3000, &now.usage);
	}
	EXPECT_EQ(before->topics, now.topics) TH_LOG("%s: topics", what);
	EXPECT_EQ(before->published, now.published) TH_LOG("%s: published", what);
	EXPECT_EQ(before->subs, now.subs) TH_LOG("%s: subscribers", what);
	EXPECT_EQ(before->bus_published, now.bus_published)
		TH_LOG("%s: bus published", what);
	EXPECT_EQ(before->prod, now.prod) TH_LOG("%s: ring written", what);
	EXPECT_EQ(before->next_handle, now.next_handle)
		TH_LOG("%s: a handle was left open", what);
	EXPECT_EQ(before->handle2, now.handle2) TH_LOG("%s: handle2", what);
	EXPECT_EQ(before->ring2_sub, now.ring2_sub)
		TH_LOG("%s: ring2 subscription", what);
	EXPECT_EQ(before->nr_preds, now.nr_preds) TH_LOG("%s: filter", what);
	EXPECT_EQ(before->bare_ring, now.bare_ring)
		TH_LOG("%s: a ring was set up", what);
	EXPECT_EQ(before->spare, now.spare) TH_LOG("%s: spare topic", what);
	if (!before->usage_ret && !now.usage_ret)
		EXPECT_TRUE(usage_not_more(&before->usage, &now.usage))
			TH_LOG("%s: /proc/pcb/usage:%s", what,
			       pcbt_usage_diff(&before->usage, &now.usage,
					       diff, sizeof(diff)));
}

/* The templates, once each: they must do what they are meant to. */
static void run_controls(struct __test_metadata *_metadata,
			 FIXTURE_DATA(ioc) *self)
{
	union arg a;
	int c, fd;

	for (c = 0; c < NR_CMDS; c++) {
		fd = template(self, c, &a);
		ASSERT_EQ(cmds[c].control, pcbt_ioctl(fd, cmds[c].nr, &a))
			TH_LOG("template of %s", cmds[c].name);
		undo(_metadata, self, c, &a);
	}
}

/* Unknown commands ------------------------------------------------------- */

static unsigned int with_type(unsigned int cmd, unsigned int type)
{
	return _IOC(_IOC_DIR(cmd), type, _IOC_NR(cmd), _IOC_SIZE(cmd));
}

static unsigned int with_size(unsigned int cmd, unsigned int size)
{
	return _IOC(_IOC_DIR(cmd), _IOC_TYPE(cmd), _IOC_NR(cmd), size);
}

static unsigned int with_dir(unsigned int cmd, unsigned int dir)
{
	return _IOC(dir, _IOC_TYPE(cmd), _IOC_NR(cmd), _IOC_SIZE(cmd));
}

/*
 * A command is its whole number: type, number, size and direction.  One
 * that differs from every PCB_IOC_* in any of them is unknown (ENOTTY),
 * even with an argument that would be good for the command it resembles.
 * Types the VFS answers itself for every file (0x00 with numbers 1 and 2,
 * 'T' 0x50-0x52, 'X', 'f', 0x94 ...) are not used.
 */
TEST_F(ioc, unknown_commands_enotty)
{
	static const unsigned int types[] = {
		0x00, 0x01, 'x', 'T', PCB_IOC_MAGIC - 1, PCB_IOC_MAGIC + 1,
		PCB_IOC_MAGIC ^ 0x80, 0xff,
	};
	static const unsigned int dirs[] = {
		_IOC_NONE, _IOC_READ, _IOC_WRITE, _IOC_READ | _IOC_WRITE,
	};
	static const int deltas[] = { -64, -8, -1, 1, 8, 64 };
	static const unsigned int sizes[] = { 8, 64, 136 };
	unsigned int cases = 0, i, j, nr, cmd;
	union arg a;
	struct snap before;
	int c, fd;

	take_snap(self, &before);
	for (c = 0; c < NR_CMDS; c++) {
		unsigned int good = cmds[c].nr, size = _IOC_SIZE(good);

		for (i = 0; i < ARRAY_SIZE(types); i++) {
			fd = template(self, c, &a);
			cmd = with_type(good, types[i]);
			EXPECT_EQ(-ENOTTY, pcbt_ioctl(fd, cmd, &a))
				TH_LOG("%s with type %#x", cmds[c].name, types[i]);
			cases++;
		}
		for (i = 0; i < ARRAY_SIZE(deltas); i++) {
			if ((int)size + deltas[i] < 0)
				continue;
			fd = template(self, c, &a);
			cmd = with_size(good, size + deltas[i]);
			EXPECT_EQ(-ENOTTY, pcbt_ioctl(fd, cmd, &a))
				TH_LOG("%s with size %u", cmds[c].name,
				       size + deltas[i]);
			cases++;
		}
		for (i = 0; i < 2; i++) {	/* no size, the largest */
			fd = template(self, c, &a);
			cmd = with_size(good, i ? _IOC_SIZEMASK : 0);
			EXPECT_EQ(-ENOTTY, pcbt_ioctl(fd, cmd, &a))
				TH_LOG("%s with size %#x", cmds[c].name,
				       i ? _IOC_SIZEMASK : 0);
			cases++;
		}
		for (i = 0; i < ARRAY_SIZE(dirs); i++) {
			if (dirs[i] == _IOC_DIR(good))
				continue;
			fd = template(self, c, &a);
			cmd = with_dir(good, dirs[i]);
			EXPECT_EQ(-ENOTTY, pcbt_ioctl(fd, cmd, &a))
				TH_LOG("%s with direction %u", cmds[c].name,
				       dirs[i]);
			cases++;
		}
	}

	/* NOTIFY takes no argument: encoding one makes another command. */
	for (i = 1; i < ARRAY_SIZE(dirs); i++) {
		cmd = _IOC(dirs[i], PCB_IOC_MAGIC, _IOC_NR(PCB_IOC_NOTIFY),
			   sizeof(int));
		EXPECT_EQ(-ENOTTY, pcbt_ioctl(self->ring.fd, cmd, &a));
		cases++;
	}

	/* Numbers no command has, with every direction and a few sizes. */
	memset(&a, 0, sizeof(a));
	for (nr = 0; nr < 256; nr++) {
		if (nr >= 1 && nr <= _IOC_NR(PCB_IOC_STATS))
			continue;
		for (i = 0; i < ARRAY_SIZE(dirs); i++) {
			for (j = 0; j < ARRAY_SIZE(sizes); j++) {
				unsigned int size = dirs[i] == _IOC_NONE ? 0 :
						    sizes[j];

				cmd = _IOC(dirs[i], PCB_IOC_MAGIC, nr, size);
				EXPECT_EQ(-ENOTTY,
					  pcbt_ioctl(self->ring.fd, cmd, &a))
					TH_LOG("command %#x", cmd);
				cases++;
				if (dirs[i] == _IOC_NONE)
					break;
			}
		}
	}

	/* Well-known commands of other drivers. */
	EXPECT_EQ(-ENOTTY, pcbt_ioctl(self->fd, TCGETS, &a));
	EXPECT_EQ(-ENOTTY, pcbt_ioctl(self->fd, _IOR('V', 0, int), &a));
	cases += 2;
	expect_untouched(_metadata, self, &before, "unknown commands");
	TH_LOG("%u unknown commands", cases);
	run_controls(_metadata, self);
}

/* Unknown flag bits and reserved words ---------------------------------- */

struct word {
	enum cmd_id c;
	const char *what;
	unsigned short off;
	unsigned short size;
	__u64 defined;		/* flag bits that exist; 0 for reserved words */
	bool flags;		/* a flags word: try every undefined bit */
};

#define WORD(c, type, field, defined, flags)				\
	{ c, #type "." #field, offsetof(struct type, field),		\
	  sizeof(((struct type *)0)->field), defined, flags }
#define FLAGS(c, type, field, defined)	WORD(c, type, field, defined, true)
#define RSVD(c, type, field)		WORD(c, type, field, 0, false)

static const struct word words[] = {
	FLAGS(C_CREATE, pcb_topic_create, flags, 0),
	FLAGS(C_CREATE, pcb_topic_create, mode, PCB_MODE_MASK),
	RSVD(C_CREATE, pcb_topic_create, reserved[0]),
	RSVD(C_CREATE, pcb_topic_create, reserved[1]),
	RSVD(C_CREATE, pcb_topic_create, reserved[2]),
	RSVD(C_CREATE, pcb_topic_create, reserved[3]),
	RSVD(C_DELETE, pcb_topic_name, reserved[0]),
	RSVD(C_DELETE, pcb_topic_name, reserved[1]),
	RSVD(C_INFO, pcb_topic_info, reserved0),
	RSVD(C_INFO, pcb_topic_info, reserved[0]),
	RSVD(C_INFO, pcb_topic_info, reserved[1]),
	RSVD(C_INFO, pcb_topic_info, reserved[2]),
	RSVD(C_INFO, pcb_topic_info, reserved[3]),
	RSVD(C_LIST, pcb_topic_list, reserved[0]),
	RSVD(C_LIST, pcb_topic_list, reserved[1]),
	FLAGS(C_OPEN, pcb_topic_open, flags, 0),
	RSVD(C_OPEN, pcb_topic_open, reserved[0]),
	RSVD(C_OPEN, pcb_topic_open, reserved[1]),
	RSVD(C_CLOSE, pcb_topic_close, reserved0),
	RSVD(C_CLOSE, pcb_topic_close, reserved[0]),
	FLAGS(C_PUBLISH, pcb_publish, flags, PCB_PUB_FLAGS_ALL),
	RSVD(C_PUBLISH, pcb_publish, reserved[0]),
	FLAGS(C_RING_SETUP, pcb_ring_setup, flags, 0),
	RSVD(C_RING_SETUP, pcb_ring_setup, reserved0),
	RSVD(C_RING_SETUP, pcb_ring_setup, reserved[0]),
	RSVD(C_RING_SETUP, pcb_ring_setup, reserved[1]),
	FLAGS(C_SUBSCRIBE, pcb_subscribe, flags, PCB_SUB_FLAGS_ALL),
	RSVD(C_SUBSCRIBE, pcb_subscribe, reserved[0]),
	/* UNSUBSCRIBE: flags and filter "must be 0". */
	FLAGS(C_UNSUBSCRIBE, pcb_subscribe, flags, 0),
	RSVD(C_UNSUBSCRIBE, pcb_subscribe, filter),
	RSVD(C_UNSUBSCRIBE, pcb_subscribe, reserved[0]),
	FLAGS(C_WAIT, pcb_wait, flags, 0),
	RSVD(C_WAIT, pcb_wait, reserved0),
	RSVD(C_WAIT, pcb_wait, reserved[0]),
	RSVD(C_WAIT, pcb_wait, reserved[1]),
	FLAGS(C_BATCH, pcb_publish_batch, flags, PCB_BATCH_FLAGS_ALL),
	RSVD(C_BATCH, pcb_publish_batch, reserved[0]),
	FLAGS(C_BATCH_ATOMIC, pcb_publish_batch, flags, PCB_BATCH_FLAGS_ALL),
	RSVD(C_BATCH_ATOMIC, pcb_publish_batch, reserved[0]),
	FLAGS(C_SET_FILTER, pcb_sub_filter, flags, 0),
	RSVD(C_SET_FILTER, pcb_sub_filter, reserved[0]),
	RSVD(C_SET_FILTER, pcb_sub_filter, reserved[1]),
	RSVD(C_SUB_INFO, pcb_sub_info, reserved0),
	RSVD(C_SUB_INFO, pcb_sub_info, reserved[0]),
	RSVD(C_SUB_INFO, pcb_sub_info, reserved[1]),
	RSVD(C_SUB_INFO, pcb_sub_info, reserved[2]),
	RSVD(C_SUB_INFO, pcb_sub_info, reserved[3]),
	FLAGS(C_STATS, pcb_stats_query, flags, 0),
	RSVD(C_STATS, pcb_stats_query, reserved0),
	RSVD(C_STATS, pcb_stats_query, reserved[0]),
	RSVD(C_STATS, pcb_stats_query, reserved[1]),
};

static void set_word(union arg *a, const struct word *w, __u64 v)
{
	unsigned char *p = (unsigned char *)a + w->off;

	if (w->size == 8) {
		__u64 old;

		memcpy(&old, p, 8);
		v |= old;
		memcpy(p, &v, 8);
	} else {
		__u32 old, v32 = (__u32)v;

		memcpy(&old, p, 4);
		v32 |= old;
		memcpy(p, &v32, 4);
	}
}

/* Spoils one word of @c's template with @v (ORed in): EINVAL, no effect. */
static void expect_einval(struct __test_metadata *_metadata,
			  FIXTURE_DATA(ioc) *self, const struct word *w,
			  __u64 v)
{
	struct snap before;
	char what[96];
	union arg a;
	int fd;

	take_snap(self, &before);
	fd = template(self, w->c, &a);
	set_word(&a, w, v);
	snprintf(what, sizeof(what), "%s %s |= %#llx", cmds[w->c].name,
		 w->what, (unsigned long long)v);
	EXPECT_EQ(-EINVAL, pcbt_ioctl(fd, cmds[w->c].nr, &a)) TH_LOG("%s", what);
	if (w->c == C_BATCH || w->c == C_BATCH_ATOMIC) {
		/* Rejected as a whole: no entry was looked at. */
		EXPECT_EQ(0x7777, self->b.ents[0].result) TH_LOG("%s", what);
		EXPECT_EQ(0x7777, self->b.ents[1].result) TH_LOG("%s", what);
	}
	expect_untouched(_metadata, self, &before, what);
}

TEST_F_TIMEOUT(ioc, unknown_flags_and_reserved_words_einval, 120)
{
	unsigned int i, bit, cases = 0;

	for (i = 0; i < ARRAY_SIZE(words); i++) {
		const struct word *w = &words[i];
		unsigned int bits = w->size * 8;

		if (w->flags) {
			for (bit = 0; bit < bits; bit++) {
				if (w->defined & (1ULL << bit))
					continue;
				expect_einval(_metadata, self, w, 1ULL << bit);
				cases++;
			}
		} else {
			expect_einval(_metadata, self, w, 1);
			expect_einval(_metadata, self, w, 1ULL << (bits - 1));
			cases += 2;
		}
		expect_einval(_metadata, self, w, ~0ULL & ~w->defined);
		cases++;
	}
	TH_LOG("%u spoiled words", cases);
	run_controls(_metadata, self);
}

/* SUB_INFO's flags are output only: anything there is ignored. */
TEST_F(ioc, sub_info_flags_are_ignored_on_input)
{
	struct pcb_sub_info si = { .topic_id = self->topic_id,
				   .flags = ~0U, .nr_preds = ~0U };

	ASSERT_EQ(0, pcbt_ioctl(self->ring.fd, PCB_IOC_SUB_INFO, &si));
	EXPECT_EQ(0U, si.flags);
	EXPECT_EQ(0U, si.nr_preds);
}

/* NOTIFY's argument must be 0: every other value is EINVAL. */
TEST_F(ioc, notify_argument_einval)
{
	unsigned int bit;

	/* Braces: the harness prints TH_LOG() after the statement. */
	for (bit = 0; bit < 8 * sizeof(unsigned long); bit++) {
		EXPECT_EQ(-EINVAL, pcbt_ioctl_val(self->ring.fd, PCB_IOC_NOTIFY,
						  1UL << bit))
			TH_LOG("bit %u", bit);
	}
	EXPECT_EQ(-EINVAL, pcbt_ioctl_val(self->ring.fd, PCB_IOC_NOTIFY, ~0UL));
	EXPECT_EQ(0, pcbt_ioctl_val(self->ring.fd, PCB_IOC_NOTIFY, 0));
	/* Before any ring, EINVAL or EBADFD: both say the call was wrong. */
	EXPECT_EQ(-EBADFD, pcbt_ioctl_val(self->bare, PCB_IOC_NOTIFY, 0));
}

/* Entries' flags, one bit at a time, in both kinds of batch. */
TEST_F(ioc, batch_entry_flags_einval)
{
	unsigned int bit;
	int c;

	for (c = C_BATCH; c <= C_BATCH_ATOMIC; c++) {
		for (bit = 0; bit < 32; bit++) {
			struct snap before;
			union arg a;
			int fd, ret;

			take_snap(self, &before);
			fd = template(self, c, &a);
			self->b.ents[1].flags = 1U << bit;
			ret = pcbt_ioctl(fd, PCB_IOC_PUBLISH_BATCH, &a);
			if (c == C_BATCH) {
				/* Entry 0 goes out, entry 1 fails alone. */
				EXPECT_EQ(0, ret) TH_LOG("bit %u", bit);
				EXPECT_EQ(0, self->b.ents[0].result);
				EXPECT_EQ(-EINVAL, self->b.ents[1].result);
				EXPECT_EQ(1U, a.batch.published);
				EXPECT_EQ(before.published + 1,
					  pcbt_published(self->fd, self->name));
				continue;
			}
			EXPECT_EQ(-EINVAL, ret) TH_LOG("bit %u", bit);
			EXPECT_EQ(-ECANCELED, self->b.ents[0].result);
			EXPECT_EQ(-EINVAL, self->b.ents[1].result);
			expect_untouched(_metadata, self, &before,
					 "atomic batch entry flags");
		}
	}
}

/* struct pcb_filter's flags and reserved word, and predicates' flags. */
TEST_F(ioc, filter_flags_and_reserved_einval)
{
	static const enum cmd_id users[] = { C_SUBSCRIBE, C_SET_FILTER };
	unsigned int u, i, cases = 0;

	for (u = 0; u < ARRAY_SIZE(users); u++) {
		for (i = 0; i < 32 + 1 + 8 + 4; i++) {
			union pcbt_filter *f = &self->b.filter;
			struct snap before;
			char what[64];
			union arg a;
			int fd;

			take_snap(self, &before);
			fd = template(self, users[u], &a);
			if (users[u] == C_SUBSCRIBE)
				a.sub.filter = (uintptr_t)f;
			pcbt_filter_init(f);
			pcbt_pred(f, PCB_FIELD_KEY, PCB_OP_NE, 0xdead);
			if (i < 32) {
				f->f.flags = 1U << i;
			} else if (i == 32) {
				f->f.reserved = 1;
			} else if (i < 32 + 1 + 8) {
				if ((1U << (i - 33)) & PCB_PRED_FLAGS_ALL)
					continue;
				f->f.preds[0].flags = 1U << (i - 33);
			} else {
				/* Fields and operators that do not exist. */
				static const __u8 bad[][2] = {
					{ 0, PCB_OP_EQ },
					{ PCB_FIELD_PAYLOAD + 1, PCB_OP_EQ },
					{ PCB_FIELD_KEY, 0 },
					{ PCB_FIELD_KEY, PCB_OP_ANY + 1 },
				};

				f->f.preds[0].field = bad[i - 41][0];
				f->f.preds[0].op = bad[i - 41][1];
			}
			snprintf(what, sizeof(what), "%s filter case %u",
				 cmds[users[u]].name, i);
			EXPECT_EQ(-EINVAL, pcbt_ioctl(fd, cmds[users[u]].nr, &a))
				TH_LOG("%s", what);
			expect_untouched(_metadata, self, &before, what);
			cases++;
		}
	}
	TH_LOG("%u spoiled filters", cases);
}

/*
 * Where a count is bigger than its array, the array is followed by a page
 * without access, so that the kernel meets it.
 */
static void *guarded_array(FIXTURE_DATA(ioc) *self, const void *src,
			   size_t len)
{
	unsigned char *p = self->guard + self->page - len;

	memcpy(p, src, len);
	return p;
}

/*
 * Filters with more predicates than allowed, or than their array holds
 * (the array then ends at a page without access): EINVAL, EFAULT.
 */
TEST_F(ioc, filter_counts)
{
	static const enum cmd_id users[] = { C_SUBSCRIBE, C_SET_FILTER };
	static const struct { __u32 nr; int want; } counts[] = {
		{ PCB_FILTER_MAX_PREDS + 1, -EINVAL },
		{ 0x80000000, -EINVAL },
		{ 0xffffffff, -EINVAL },
		{ 2, -EFAULT },
		{ PCB_FILTER_MAX_PREDS, -EFAULT },
	};
	size_t len = sizeof(struct pcb_filter) + sizeof(struct pcb_filter_pred);
	unsigned int u, i;

	for (u = 0; u < ARRAY_SIZE(users); u++) {
		for (i = 0; i < ARRAY_SIZE(counts); i++) {
			union pcbt_filter *f = &self->b.filter;
			struct snap before;
			void *p;
			union arg a;
			int fd;

			take_snap(self, &before);
			fd = template(self, users[u], &a);
			pcbt_filter_init(f);
			pcbt_pred(f, PCB_FIELD_KEY, PCB_OP_NE, 0xdead);
			f->f.nr_preds = counts[i].nr;
			p = guarded_array(self, f, len);
			if (users[u] == C_SUBSCRIBE)
				a.sub.filter = (uintptr_t)p;
			else
				a.sf.filter = (uintptr_t)p;
			EXPECT_EQ(counts[i].want,
				  pcbt_ioctl(fd, cmds[users[u]].nr, &a))
				TH_LOG("%s nr_preds %u", cmds[users[u]].name,
				       counts[i].nr);
			expect_untouched(_metadata, self, &before,
					 "filter count");
		}
	}
}

/* Bad pointers ------------------------------------------------------------ */

enum bad_kind {
	B_NULL,
	B_HOLE,		/* nothing mapped there */
	B_KERNEL,
	B_VSYSCALL,
	B_WRAP,		/* wraps around the end of the address space */
	B_NONE,		/* PROT_NONE */
	B_STRADDLE,	/* runs one byte into a page without access */
	B_RO,		/* read-only */
	B_HALF_RO,	/* the last byte read-only */
	B_UNALIGNED,	/* good memory at an odd address */
	NR_BAD
};

static const char *const bad_names[NR_BAD] = {
	"NULL", "unmapped", "kernel address", "vsyscall page",
	"wrapping address", "PROT_NONE", "straddling a PROT_NONE page",
	"read-only", "ending in a read-only page", "unaligned",
};

/*
 * Where @len bytes of @src go to be bad in manner @k: a copy of them in
 * the bad memory, or an address that holds nothing.
 */
static void *bad_copy(FIXTURE_DATA(ioc) *self, enum bad_kind k,
		      const void *src, size_t len)
{
	unsigned char *p;

	switch (k) {
	case B_NULL:
		return NULL;
	case B_HOLE:
		return hole();
	case B_KERNEL:
		return (void *)(uintptr_t)KERNEL_ADDR;
	case B_VSYSCALL:
		return (void *)(uintptr_t)VSYSCALL_ADDR;
	case B_WRAP:
		return (void *)(uintptr_t)WRAP_ADDR;
	case B_NONE:
		return self->none;
	case B_STRADDLE:
		p = self->guard + self->page - len + 1;
		memcpy(p, src, len - 1);
		return p;
	case B_RO:
		mprotect(self->ro, self->page, PROT_READ | PROT_WRITE);
		memcpy(self->ro, src, len);
		mprotect(self->ro, self->page, PROT_READ);
		return self->ro;
	case B_HALF_RO:
		p = self->half + self->page - len + 1;
		mprotect(self->half, 2 * self->page, PROT_READ | PROT_WRITE);
		memcpy(p, src, len);
		mprotect(self->half + self->page, self->page, PROT_READ);
		return p;
	case B_UNALIGNED:
		p = self->guard + 3;
		memcpy(p, src, len);
		return p;
	case NR_BAD:
		break;
	}
	return NULL;
}

/* What a call whose memory is bad in manner @k gets; @writes: it must write. */
static int bad_expect(enum bad_kind k, bool writes, int control)
{
	switch (k) {
	case B_RO:
	case B_HALF_RO:
		return writes ? -EFAULT : control;
	case B_UNALIGNED:
		return control;
	default:
		return -EFAULT;
	}
}

/* bad_expect() for @c's own argument, of which it may write a part. */
static int bad_arg_expect(enum bad_kind k, enum cmd_id c)
{
	unsigned int nr = cmds[c].nr;
	bool writes = _IOC_DIR(nr) & _IOC_READ;

	/* B_HALF_RO: only the last byte is read-only. */
	if (k == B_HALF_RO && cmds[c].out_end &&
	    cmds[c].out_end < _IOC_SIZE(nr))
		writes = false;
	return bad_expect(k, writes, cmds[c].control);
}

static void bad_argument_case(struct __test_metadata *_metadata,
			      FIXTURE_DATA(ioc) *self, enum cmd_id c,
			      enum bad_kind k)
{
	unsigned int nr = cmds[c].nr;
	int want = bad_arg_expect(k, c);
	struct pcb_sub_info si;
	struct snap before;
	char what[96];
	union arg a;
	void *p;
	int fd, ret;

	take_snap(self, &before);
	fd = template(self, c, &a);
	p = bad_copy(self, k, &a, _IOC_SIZE(nr));
	ret = pcbt_ioctl(fd, nr, p);
	snprintf(what, sizeof(what), "%s, argument %s", cmds[c].name,
		 bad_names[k]);
	EXPECT_EQ(want, ret) TH_LOG("%s", what);
	if (!ret) {
		memcpy(&a, p, _IOC_SIZE(nr));	/* the results */
		undo(_metadata, self, c, &a);
		return;
	}
	/*
	 * "The struct must be writable: the kernel checks that before"
	 * publishing or subscribing; other calls undo or have no effect.
	 */
	if (want != cmds[c].control)
		expect_untouched(_metadata, self, &before, what);
	/* Back to the start for the next case, should that have failed. */
	if (c == C_SUBSCRIBE && !pcbt_sub_info(self->ring2.fd, self->topic_id,
					       &si))
		pcbt_unsubscribe(self->ring2.fd, self->topic_id);
}

TEST_F_TIMEOUT(ioc, bad_argument_pointers, 120)
{
	unsigned int cases = 0;
	int c, k;

	for (c = 0; c < NR_CMDS; c++) {
		for (k = 0; k < NR_BAD; k++) {
			/* WAIT reads only: a read-only struct is fine. */
			bad_argument_case(_metadata, self, c, k);
			cases++;
		}
	}
	TH_LOG("%u bad arguments", cases);
	run_controls(_metadata, self);
}

/*
 * PUBLISH: "Its out words (@msg_id, @seq) must be writable: the kernel
 * checks that before publishing, so EFAULT always means nothing was
 * published, and writes nothing else of the struct."  The struct from
 * each field on in read-only memory, the rest writable: read-only out
 * words publish nothing; read-only in words after them do not matter.
 */
TEST_F(ioc, publish_struct_partly_read_only_publishes_nothing)
{
	static const struct {
		const char *what;
		size_t off;
		bool publishes;
	} outs[] = {
		{ "msg_id", offsetof(struct pcb_publish, msg_id), false },
		{ "seq", offsetof(struct pcb_publish, seq), false },
		{ "deps", offsetof(struct pcb_publish, deps), true },
		{ "reserved", offsetof(struct pcb_publish, reserved), true },
	};
	unsigned int i;

	for (i = 0; i < ARRAY_SIZE(outs); i++) {
		struct pcb_publish *pub;
		struct snap before;
		unsigned char *p;
		union arg a;
		int fd;

		take_snap(self, &before);
		fd = template(self, C_PUBLISH, &a);
		/* Everything from @off on in the read-only page. */
		p = self->half + self->page - outs[i].off;
		mprotect(self->half, 2 * self->page, PROT_READ | PROT_WRITE);
		memcpy(p, &a, sizeof(a.pub));
		mprotect(self->half + self->page, self->page, PROT_READ);
		pub = (struct pcb_publish *)p;
		if (!outs[i].publishes) {
			EXPECT_EQ(-EFAULT, pcbt_ioctl(fd, PCB_IOC_PUBLISH, p))
				TH_LOG("read-only from %s on", outs[i].what);
			expect_untouched(_metadata, self, &before,
					 outs[i].what);
			continue;
		}
		EXPECT_EQ(0, pcbt_ioctl(fd, PCB_IOC_PUBLISH, p))
			TH_LOG("read-only from %s on", outs[i].what);
		EXPECT_NE(0ULL, pub->msg_id) TH_LOG("%s", outs[i].what);
		EXPECT_NE(0ULL, pub->seq) TH_LOG("%s", outs[i].what);
		EXPECT_EQ(0, memcmp(p + outs[i].off, (char *)&a + outs[i].off,
				    sizeof(a.pub) - outs[i].off));
		memcpy(&a, p, sizeof(a.pub));
		undo(_metadata, self, C_PUBLISH, &a);
	}
}

/* Pointers inside the arguments. */
struct inner {
	enum cmd_id c;
	const char *what;
	unsigned short off;	/* of the __u64 pointer in the argument */
	unsigned short len;	/* bytes the template has there */
	bool writes;		/* the kernel writes there */
	bool null_ok;		/* 0 means "none" */
};

#define INNER(c, type, field, len, writes) \
	{ c, #type "." #field, offsetof(struct type, field), len, writes, false }
#define INNER_OPT(c, type, field, len) \
	{ c, #type "." #field, offsetof(struct type, field), len, false, true }

static const struct inner inners[] = {
	INNER(C_LIST, pcb_topic_list, entries,
	      2 * sizeof(struct pcb_topic_info), true),
	INNER(C_PUBLISH, pcb_publish, payload, MSG, false),
	INNER(C_PUBLISH, pcb_publish, deps, NDEPS * 8, false),
	INNER(C_BATCH_ATOMIC, pcb_publish_batch, entries,
	      2 * sizeof(struct pcb_batch_entry), true),
	INNER(C_BATCH_ATOMIC, pcb_publish_batch, deps, NDEPS * 8, false),
	INNER(C_BATCH, pcb_publish_batch, deps, NDEPS * 8, false),
	INNER(C_BATCH, pcb_publish_batch, entries,
	      2 * sizeof(struct pcb_batch_entry), true),
	INNER_OPT(C_SUBSCRIBE, pcb_subscribe, filter,
		  sizeof(struct pcb_filter) + sizeof(struct pcb_filter_pred)),
	INNER_OPT(C_SET_FILTER, pcb_sub_filter, filter,
		  sizeof(struct pcb_filter) + sizeof(struct pcb_filter_pred)),
	INNER(C_STATS, pcb_stats_query, stats, PCB_STATS_SIZE_V1, true),
};

static void bad_inner_case(struct __test_metadata *_metadata,
			   FIXTURE_DATA(ioc) *self, const struct inner *in,
			   enum bad_kind k)
{
	int want = bad_expect(k, in->writes, cmds[in->c].control);
	struct snap before;
	char what[96];
	__u64 ptr;
	union arg a;
	int fd, ret;

	if (k == B_NULL && in->null_ok)
		want = cmds[in->c].control;

	take_snap(self, &before);
	fd = template(self, in->c, &a);
	if (in->c == C_SUBSCRIBE) {
		pcbt_pred(&self->b.filter, PCB_FIELD_KEY, PCB_OP_NE, 0xdead);
		a.sub.filter = (uintptr_t)&self->b.filter;
	}
	memcpy(&ptr, (char *)&a + in->off, 8);
	ptr = (uintptr_t)bad_copy(self, k, (void *)(uintptr_t)ptr, in->len);
	memcpy((char *)&a + in->off, &ptr, 8);
	ret = pcbt_ioctl(fd, cmds[in->c].nr, &a);
	snprintf(what, sizeof(what), "%s, %s %s", cmds[in->c].name, in->what,
		 bad_names[k]);
	EXPECT_EQ(want, ret) TH_LOG("%s", what);
	if (!ret) {
		undo(_metadata, self, in->c, &a);
		return;
	}
	/*
	 * A plain batch too: "If results cannot be written back after
	 * messages were published (only a racing munmap() or mprotect() can
	 * do that)": entries that are not writable, or not all readable,
	 * from the start must publish nothing.
	 */
	expect_untouched(_metadata, self, &before, what);
}

TEST_F_TIMEOUT(ioc, bad_pointers_inside_arguments, 120)
{
	unsigned int i, cases = 0;
	int k;

	for (i = 0; i < ARRAY_SIZE(inners); i++) {
		for (k = 0; k < NR_BAD; k++) {
			bad_inner_case(_metadata, self, &inners[i], k);
			cases++;
		}
	}
	TH_LOG("%u bad inner pointers", cases);
	run_controls(_metadata, self);
}

/*
 * "An unreadable payload or dependency array is EFAULT whether or not any
 * subscriber would take the message."  Same through a batch entry.
 */
TEST_F(ioc, bad_payload_without_subscribers)
{
	char lonely[PCB_NAME_MAX];
	__u32 h;
	int k;

	pcbt_name(lonely, "lonely");
	ASSERT_EQ(0, pcbt_create(self->fd, lonely, SCHEMA, LEN, 0700, NULL));
	ASSERT_EQ(0, pcbt_open_topic(self->fd, lonely, SCHEMA, &h));
	for (k = 0; k < B_RO; k++) {
		struct pcb_publish p = { .handle = h, .len = MSG };
		struct pcb_batch_entry e = { .handle = h, .len = MSG };
		struct pcb_publish_batch b = { .entries = (uintptr_t)&e,
					       .count = 1 };

		p.payload = (uintptr_t)bad_copy(self, k, self->b.payload, MSG);
		EXPECT_EQ(-EFAULT, pcbt_ioctl(self->fd, PCB_IOC_PUBLISH, &p))
			TH_LOG("payload %s", bad_names[k]);
		p.payload = (uintptr_t)self->b.payload;
		p.nr_deps = 1;
		p.deps = (uintptr_t)bad_copy(self, k, self->ids, 8);
		EXPECT_EQ(-EFAULT, pcbt_ioctl(self->fd, PCB_IOC_PUBLISH, &p))
			TH_LOG("deps %s", bad_names[k]);

		e.payload = (uintptr_t)bad_copy(self, k, self->b.payload, MSG);
		EXPECT_EQ(0, pcbt_ioctl(self->fd, PCB_IOC_PUBLISH_BATCH, &b));
		EXPECT_EQ(-EFAULT, e.result) TH_LOG("entry payload %s",
						    bad_names[k]);
		b.flags = PCB_PUB_ATOMIC;
		EXPECT_EQ(-EFAULT, pcbt_ioctl(self->fd, PCB_IOC_PUBLISH_BATCH, &b))
			TH_LOG("atomic entry payload %s", bad_names[k]);
		EXPECT_EQ(-EFAULT, e.result);
	}
	EXPECT_EQ(0LL, pcbt_published(self->fd, lonely));
}

/* A bad payload in entry 1 of a batch: its own result, or the whole batch. */
TEST_F(ioc, bad_entry_payload)
{
	int c, k;

	for (c = C_BATCH; c <= C_BATCH_ATOMIC; c++) {
		for (k = 0; k < B_RO; k++) {
			struct snap before;
			union arg a;
			int fd, ret;

			take_snap(self, &before);
			fd = template(self, c, &a);
			self->b.ents[1].payload = (uintptr_t)
				bad_copy(self, k, self->b.payload, MSG);
			ret = pcbt_ioctl(fd, PCB_IOC_PUBLISH_BATCH, &a);
			if (c == C_BATCH) {
				EXPECT_EQ(0, ret) TH_LOG("%s", bad_names[k]);
				EXPECT_EQ(0, self->b.ents[0].result);
				EXPECT_EQ(-EFAULT, self->b.ents[1].result)
					TH_LOG("%s", bad_names[k]);
				EXPECT_EQ(1U, a.batch.published);
				EXPECT_EQ(before.published + 1,
					  pcbt_published(self->fd, self->name));
				continue;
			}
			EXPECT_EQ(-EFAULT, ret) TH_LOG("%s", bad_names[k]);
			EXPECT_EQ(-ECANCELED, self->b.ents[0].result);
			EXPECT_EQ(-EFAULT, self->b.ents[1].result);
			expect_untouched(_metadata, self, &before, bad_names[k]);
		}
	}
}

/* With nothing to read, a pointer is not looked at. */
TEST_F(ioc, pointers_with_nothing_behind_them)
{
	struct pcb_topic_list l = { .entries = KERNEL_ADDR,
				    .start_id = self->topic_id };
	struct pcb_publish out;

	/* "With @nr_deps 0, @deps is ignored." */
	EXPECT_EQ(0, pcbt_publish_deps(self->fd, self->handle, "x", 1, 0,
				       (void *)(uintptr_t)KERNEL_ADDR, 0, 0,
				       &out));
	/* A capacity of 0 writes no entry: the topic is next. */
	EXPECT_EQ(0, pcbt_ioctl(self->fd, PCB_IOC_TOPIC_LIST, &l));
	EXPECT_EQ(0U, l.count);
	EXPECT_EQ(self->topic_id, l.next_id);
	/* Past the last topic: nothing written either. */
	l.capacity = 1;
	l.start_id = ~0U;
	EXPECT_EQ(0, pcbt_ioctl(self->fd, PCB_IOC_TOPIC_LIST, &l));
	EXPECT_EQ(0U, l.count);
	EXPECT_EQ(0U, l.next_id);
	/* A filter of 0 is no filter. */
	EXPECT_EQ(0, pcbt_set_filter(self->ring.fd, self->topic_id, NULL));
	/*
	 * A message of no bytes: the header does not say whether @payload
	 * is then looked at; the kernel does not, and publishes it.
	 */
	EXPECT_EQ(0, pcbt_publish(self->fd, self->handle,
				  (void *)(uintptr_t)KERNEL_ADDR, 0, 0, 0,
				  &out));
	EXPECT_EQ(2U, pcbt_ring_drain(&self->ring));
}

/* Overlapping buffers --------------------------------------------------- */

/*
 * The header says nothing about buffers that overlap each other or the
 * argument.  The kernel reads each when it needs it and writes results
 * back last; it must stay consistent and never write outside them.
 */
TEST_F(ioc, list_entries_overlap_argument)
{
	union {
		struct pcb_topic_list l;
		struct pcb_topic_info e[2];
	} u;
	unsigned char canary[64];

	memset(&u, 0, sizeof(u));
	memset(canary, 0xee, sizeof(canary));
	u.l.entries = (uintptr_t)&u;
	u.l.capacity = 1;
	u.l.start_id = self->topic_id;
	ASSERT_EQ(0, pcbt_ioctl(self->fd, PCB_IOC_TOPIC_LIST, &u.l));
	/* The argument, written last, is what the caller sees. */
	EXPECT_EQ(1U, u.l.count);
	EXPECT_LT(self->topic_id, u.l.next_id);
	/* The rest of the entry is the topic's. */
	EXPECT_EQ(self->topic_id, u.e[0].topic_id);
	EXPECT_EQ((__u64)SCHEMA, u.e[0].schema_id);
	EXPECT_EQ(0U, u.e[1].topic_id);
}

TEST_F(ioc, stats_overlap_query)
{
	union {
		struct pcb_stats_query q;
		struct pcb_stats s;
	} u;

	memset(&u, 0, sizeof(u));
	u.q.stats = (uintptr_t)&u;
	u.q.size = sizeof(u.s);
	u.q.topic_id = self->topic_id;
	ASSERT_EQ(0, pcbt_ioctl(self->fd, PCB_IOC_STATS, &u.q));
	EXPECT_EQ(PCB_STATS_SIZE_V1, u.q.size);
	/* The query, written last, covers the first counters; not these. */
	EXPECT_EQ((__u64)NDEPS, u.s.delivered);
	EXPECT_EQ(0ULL, u.s.dropped_full);
	EXPECT_EQ((__u64)RING, u.s.ring_size);
}

TEST_F(ioc, publish_payload_is_the_argument)
{
	const struct pcb_record *rec;
	struct pcb_publish p = {
		.handle = self->handle,
		.payload = (uintptr_t)&p,
		.len = sizeof(p),
		.nr_deps = NDEPS,
		.deps = (uintptr_t)self->ids,
	};
	struct pcb_publish copy;

	ASSERT_EQ(0, pcbt_ioctl(self->fd, PCB_IOC_PUBLISH, &p));
	rec = pcbt_ring_next(&self->ring, PCBT_SEC);
	ASSERT_NE(NULL, rec);
	ASSERT_EQ(sizeof(p), rec->payload_len);
	ASSERT_EQ(NDEPS, rec->nr_deps);
	EXPECT_EQ(p.msg_id, rec->msg_id);
	memcpy(&copy, pcbt_payload(rec), sizeof(copy));
	/* The message is the argument as it was before the results. */
	EXPECT_EQ(self->handle, copy.handle);
	EXPECT_EQ((uintptr_t)&p, copy.payload);
	EXPECT_NE(p.msg_id, copy.msg_id);
	pcbt_ring_pop(&self->ring);
	pcbt_ring_release(&self->ring);

	/* Dependencies taken from the payload itself. */
	memcpy(self->b.payload, self->ids, sizeof(self->ids));
	ASSERT_EQ(0, pcbt_publish_deps(self->fd, self->handle, self->b.payload,
				       sizeof(self->ids), 1,
				       (void *)self->b.payload, NDEPS, 0, NULL));
	rec = pcbt_ring_next(&self->ring, PCBT_SEC);
	ASSERT_NE(NULL, rec);
	EXPECT_EQ(0, memcmp(pcbt_rec_deps(rec), self->ids, sizeof(self->ids)));
	EXPECT_EQ(0, memcmp(pcbt_payload(rec), self->ids, sizeof(self->ids)));
}

/*
 * Entries whose payloads are the entry array itself, which the kernel
 * writes results into.  Each message is the array as it was when that
 * entry was read: both arrive, whole, with their results right.
 */
TEST_F(ioc, batch_payloads_overlap_entries)
{
	int c;

	for (c = C_BATCH; c <= C_BATCH_ATOMIC; c++) {
		struct pcb_batch_entry *e = self->b.ents;
		const struct pcb_record *rec;
		union arg a;
		int fd, i;

		fd = template(self, c, &a);
		for (i = 0; i < 2; i++) {
			e[i].payload = (uintptr_t)e;
			e[i].len = sizeof(self->b.ents);
			e[i].key = i;
		}
		a.batch.deps = (uintptr_t)&e[1].key;	/* ... and the deps */
		a.batch.nr_deps = 0;
		ASSERT_EQ(0, pcbt_ioctl(fd, PCB_IOC_PUBLISH_BATCH, &a))
			TH_LOG("%s", cmds[c].name);
		EXPECT_EQ(2U, a.batch.published);
		for (i = 0; i < 2; i++) {
			struct pcb_batch_entry seen[2];

			EXPECT_EQ(0, e[i].result);
			rec = pcbt_ring_next(&self->ring, PCBT_SEC);
			ASSERT_NE(NULL, rec);
			ASSERT_EQ(sizeof(seen), rec->payload_len);
			EXPECT_EQ(e[i].msg_id, rec->msg_id);
			EXPECT_EQ(e[i].seq, rec->seq);
			EXPECT_EQ((__u64)i, rec->key);
			memcpy(seen, pcbt_payload(rec), sizeof(seen));
			EXPECT_EQ(self->handle, seen[i].handle);
			EXPECT_EQ((uintptr_t)e, seen[i].payload);
			pcbt_ring_pop(&self->ring);
		}
		pcbt_ring_release(&self->ring);
	}
}

/* Batch entries laid over the batch argument itself. */
TEST_F(ioc, batch_entries_overlap_argument)
{
	union {
		struct pcb_publish_batch b;
		struct pcb_batch_entry e[2];
	} u;
	struct snap before;

	take_snap(self, &before);
	memset(&u, 0, sizeof(u));
	u.b.entries = (uintptr_t)&u;
	u.b.count = 1;
	/* Entry 0 is then { handle: low half of &u, flags: high half, ... }. */
	EXPECT_EQ(0, pcbt_ioctl(self->fd, PCB_IOC_PUBLISH_BATCH, &u.b));
	EXPECT_EQ(0U, u.b.published);
	/* The same, atomic: the entry's error is the batch's. */
	memset(&u, 0, sizeof(u));
	u.b.entries = (uintptr_t)&u;
	u.b.count = 1;
	u.b.flags = PCB_PUB_ATOMIC;
	EXPECT_NE(0, pcbt_ioctl(self->fd, PCB_IOC_PUBLISH_BATCH, &u.b));
	expect_untouched(_metadata, self, &before, "entries over the argument");
}

/* Absurd lengths and counts ----------------------------------------------- */

struct absurd {
	enum cmd_id c;
	const char *what;
	unsigned short off;
	unsigned short size;
	__u64 value;
	int want;
};

#define ABSURD(c, type, field, value, want)				\
	{ c, #type "." #field "=" #value, offsetof(struct type, field), \
	  sizeof(((struct type *)0)->field), value, want }

static const struct absurd absurds[] = {
	ABSURD(C_CREATE, pcb_topic_create, max_msg_size, 0, -EINVAL),
	ABSURD(C_CREATE, pcb_topic_create, max_msg_size, 0xffffffff, -EINVAL),
	ABSURD(C_CREATE, pcb_topic_create, max_msg_size, 0x80000000, -EINVAL),
	ABSURD(C_CREATE, pcb_topic_create, max_msg_size, PCB_REC_LEN_MASK,
	       -EINVAL),
	ABSURD(C_CREATE, pcb_topic_create, mode, 01000, -EINVAL),
	ABSURD(C_OPEN, pcb_topic_open, schema_id, SCHEMA + 1, -EPROTOTYPE),
	ABSURD(C_CLOSE, pcb_topic_close, handle, PCB_MAX_HANDLES, -EBADF),
	ABSURD(C_CLOSE, pcb_topic_close, handle, PCB_MAX_HANDLES - 1, -EBADF),
	ABSURD(C_CLOSE, pcb_topic_close, handle, 0xffffffff, -EBADF),
	ABSURD(C_CLOSE, pcb_topic_close, handle, 0x80000000, -EBADF),
	ABSURD(C_PUBLISH, pcb_publish, len, LEN + 1, -EMSGSIZE),
	ABSURD(C_PUBLISH, pcb_publish, len, 0x7fffffff, -EMSGSIZE),
	ABSURD(C_PUBLISH, pcb_publish, len, 0xffffffff, -EMSGSIZE),
	ABSURD(C_PUBLISH, pcb_publish, nr_deps, NDEPS + 1, -EINVAL),
	ABSURD(C_PUBLISH, pcb_publish, nr_deps, 0x80000000, -EINVAL),
	ABSURD(C_PUBLISH, pcb_publish, nr_deps, 0xffffffff, -EINVAL),
	ABSURD(C_PUBLISH, pcb_publish, handle, PCB_MAX_HANDLES, -EBADF),
	ABSURD(C_PUBLISH, pcb_publish, handle, PCB_MAX_HANDLES - 1, -EBADF),
	ABSURD(C_PUBLISH, pcb_publish, handle, 0xffffffff, -EBADF),
	ABSURD(C_RING_SETUP, pcb_ring_setup, data_size, 0, -EINVAL),
	ABSURD(C_RING_SETUP, pcb_ring_setup, data_size, 1, -EINVAL),
	ABSURD(C_RING_SETUP, pcb_ring_setup, data_size, 2048, -EINVAL),
	ABSURD(C_RING_SETUP, pcb_ring_setup, data_size, 4095, -EINVAL),
	ABSURD(C_RING_SETUP, pcb_ring_setup, data_size, 4097, -EINVAL),
	ABSURD(C_RING_SETUP, pcb_ring_setup, data_size, 12288, -EINVAL),
	ABSURD(C_RING_SETUP, pcb_ring_setup, data_size, 0x80000000, -EINVAL),
	ABSURD(C_RING_SETUP, pcb_ring_setup, data_size, 0xfffff000, -EINVAL),
	ABSURD(C_RING_SETUP, pcb_ring_setup, data_size, 0xffffffff, -EINVAL),
	ABSURD(C_SUBSCRIBE, pcb_subscribe, schema_id, SCHEMA + 1, -EPROTOTYPE),
	ABSURD(C_UNSUBSCRIBE, pcb_subscribe, topic_id, 0, -ENOENT),
	ABSURD(C_UNSUBSCRIBE, pcb_subscribe, topic_id, 0xffffffff, -ENOENT),
	ABSURD(C_BATCH, pcb_publish_batch, count, 0, -EINVAL),
	ABSURD(C_BATCH, pcb_publish_batch, count, PCB_BATCH_MAX + 1, -EINVAL),
	ABSURD(C_BATCH, pcb_publish_batch, count, 0x80000000, -EINVAL),
	ABSURD(C_BATCH, pcb_publish_batch, count, 0xffffffff, -EINVAL),
	ABSURD(C_BATCH, pcb_publish_batch, nr_deps, NDEPS + 1, -EINVAL),
	ABSURD(C_BATCH, pcb_publish_batch, nr_deps, 0xffffffff, -EINVAL),
	ABSURD(C_BATCH_ATOMIC, pcb_publish_batch, count, 0, -EINVAL),
	ABSURD(C_BATCH_ATOMIC, pcb_publish_batch, count, PCB_BATCH_MAX + 1,
	       -EINVAL),
	ABSURD(C_BATCH_ATOMIC, pcb_publish_batch, count, 0xffffffff, -EINVAL),
	ABSURD(C_BATCH_ATOMIC, pcb_publish_batch, nr_deps, NDEPS + 1, -EINVAL),
	ABSURD(C_BATCH_ATOMIC, pcb_publish_batch, nr_deps, 0xffffffff, -EINVAL),
	/* Counts bigger than the array: the kernel runs off its end. */
	ABSURD(C_BATCH_ATOMIC, pcb_publish_batch, count, PCB_BATCH_MAX, -EFAULT),
	ABSURD(C_BATCH, pcb_publish_batch, count, PCB_BATCH_MAX, -EFAULT),
	ABSURD(C_SET_FILTER, pcb_sub_filter, topic_id, 0, -ENOENT),
	ABSURD(C_SET_FILTER, pcb_sub_filter, topic_id, 0xffffffff, -ENOENT),
	ABSURD(C_SUB_INFO, pcb_sub_info, topic_id, 0, -ENOENT),
	ABSURD(C_SUB_INFO, pcb_sub_info, topic_id, 0xffffffff, -ENOENT),
	ABSURD(C_STATS, pcb_stats_query, size, 0, -EINVAL),
	ABSURD(C_STATS, pcb_stats_query, size, PCB_STATS_SIZE_V1 - 1, -EINVAL),
	ABSURD(C_STATS, pcb_stats_query, size, PCB_STATS_SIZE_MAX + 1, -EINVAL),
	ABSURD(C_STATS, pcb_stats_query, size, 0xffffffff, -EINVAL),
	ABSURD(C_STATS, pcb_stats_query, topic_id, 0xffffffff, -ENOENT),
	ABSURD(C_LIST, pcb_topic_list, capacity, 0xffffffff, -EFAULT),
};

static void set_value(union arg *a, const struct absurd *x)
{
	unsigned char *p = (unsigned char *)a + x->off;
	__u32 v32 = (__u32)x->value;

	if (x->size == 8)
		memcpy(p, &x->value, 8);
	else
		memcpy(p, &v32, 4);
}

TEST_F_TIMEOUT(ioc, absurd_lengths_and_counts, 120)
{
	unsigned int i;

	for (i = 0; i < ARRAY_SIZE(absurds); i++) {
		const struct absurd *x = &absurds[i];
		struct snap before;
		union arg a;
		int fd;

		take_snap(self, &before);
		fd = template(self, x->c, &a);
		set_value(&a, x);
		if ((x->c == C_BATCH || x->c == C_BATCH_ATOMIC) &&
		    x->want == -EFAULT)
			a.batch.entries = (uintptr_t)guarded_array(self,
					self->b.ents, sizeof(self->b.ents));
		if (x->c == C_LIST && x->want == -EFAULT) {
			/* Room for one; two topics to list. */
			a.list.entries = (uintptr_t)guarded_array(self,
					self->b.list, sizeof(self->b.list[0]));
		}
		if (x->c == C_STATS && x->want == -EFAULT)
			a.stats.stats = (uintptr_t)guarded_array(self,
					&self->b.stats, sizeof(self->b.stats));
		EXPECT_EQ(x->want, pcbt_ioctl(fd, cmds[x->c].nr, &a))
			TH_LOG("%s %s", cmds[x->c].name, x->what);
		expect_untouched(_metadata, self, &before, x->what);
	}
	TH_LOG("%zu absurd values", ARRAY_SIZE(absurds));
	run_controls(_metadata, self);
}

/* Past module parameters max_msg_size and max_ring_size: EINVAL. */
TEST_F(ioc, beyond_module_limits)
{
	unsigned long long max_msg = pcbt_param("max_msg_size", 1 << 20);
	unsigned long long max_ring = pcbt_param("max_ring_size", 64 << 20);
	struct snap before;
	union arg a;
	int fd;

	take_snap(self, &before);
	fd = template(self, C_CREATE, &a);
	a.create.max_msg_size = max_msg + 1;
	EXPECT_EQ(-EINVAL, pcbt_ioctl(fd, PCB_IOC_TOPIC_CREATE, &a));
	fd = template(self, C_RING_SETUP, &a);
	if (max_ring < 0x80000000ULL) {
		a.setup.data_size = max_ring * 2;
		EXPECT_EQ(-EINVAL, pcbt_ioctl(fd, PCB_IOC_RING_SETUP, &a));
	}
	expect_untouched(_metadata, self, &before, "beyond module limits");
}

/* Topic names, in every ioctl that takes one. */
TEST_F(ioc, bad_names)
{
	static const enum cmd_id users[] = {
		C_CREATE, C_DELETE, C_INFO, C_OPEN, C_SUBSCRIBE,
	};
	static const struct { const char *name; int want; } names[] = {
		{ "", -EINVAL },
		{ ".hidden", -EINVAL },
		{ "sp ace", -EINVAL },
		{ "new\nline", -EINVAL },
		{ "tab\there", -EINVAL },
		{ "star*", -EINVAL },
		/* Letters of Latin-1 are not in [A-Za-z]. */
		{ "\xc0", -EINVAL },
		{ "caf\xe9", -EINVAL },
		{ "\xff\xfe", -EINVAL },
		{ "\x80", -EINVAL },
		{ NULL, -ENAMETOOLONG },	/* no NUL in PCB_NAME_MAX */
	};
	unsigned int u, i;

	for (u = 0; u < ARRAY_SIZE(users); u++) {
		for (i = 0; i < ARRAY_SIZE(names); i++) {
			struct pcb_topic_name tn;
			struct snap before;
			union arg a;
			int fd, ret;

			take_snap(self, &before);
			fd = template(self, users[u], &a);
			/* Every struct with a name starts with it. */
			if (names[i].name)
				pcbt_copy_name(a.create.name, names[i].name);
			else
				memset(a.create.name, 'a', PCB_NAME_MAX);
			ret = pcbt_ioctl(fd, cmds[users[u]].nr, &a);
			EXPECT_EQ(names[i].want, ret)
				TH_LOG("%s name %u", cmds[users[u]].name, i);
			if (users[u] == C_CREATE && !ret) {
				/* Not left behind for the next test. */
				memset(&tn, 0, sizeof(tn));
				memcpy(tn.name, a.create.name, PCB_NAME_MAX);
				pcbt_ioctl(self->fd, PCB_IOC_TOPIC_DELETE, &tn);
				continue;
			}
			expect_untouched(_metadata, self, &before, "bad name");
		}
	}
}

/* Huge timeouts --------------------------------------------------------- */

/*
 * Timeouts so big they would overflow a deadline mean "wait": a signal
 * ends the wait (EINTR), not an early ETIMEDOUT.
 */
static const __u64 huge_timeouts[] = {
	~0ULL, 1ULL << 63, (1ULL << 63) - 1, (1ULL << 63) - 2, (1ULL << 63) + 1,
	1ULL << 62,
};

TEST_F(ioc, wait_huge_timeouts)
{
	unsigned int i;

	for (i = 0; i < ARRAY_SIZE(huge_timeouts); i++) {
		struct pcb_wait w = { .timeout_ns = huge_timeouts[i] };
		__u64 t0 = pcbt_now_ns(CLOCK_MONOTONIC);

		pcbt_ring_drain(&self->ring);
		ASSERT_EQ(0, pcbt_alarm_in(100));
		EXPECT_EQ(-EINTR, pcbt_ioctl(self->ring.fd, PCB_IOC_WAIT, &w))
			TH_LOG("timeout %#llx", (unsigned long long)w.timeout_ns);
		EXPECT_LE(50 * PCBT_MS, pcbt_now_ns(CLOCK_MONOTONIC) - t0);
	}
}

TEST_F(ioc, publish_huge_timeouts)
{
	struct pcbt_ring small;
	unsigned int i;
	int n = 0, ret;

	/* A reliable subscriber that does not read: the next publish waits. */
	ASSERT_LE(0, pcbt_ring_open(PCB_RING_MIN_SIZE > self->page ?
				    PCB_RING_MIN_SIZE : self->page, &small));
	ASSERT_EQ(0, pcbt_subscribe(small.fd, self->name, SCHEMA, 0, NULL));
	while (!(ret = pcbt_publish(self->fd, self->handle, self->b.payload,
				    MSG, PCB_PUB_NONBLOCK, 0, NULL)))
		n++;
	ASSERT_EQ(-EAGAIN, ret);
	ASSERT_LT(0, n);

	for (i = 0; i < ARRAY_SIZE(huge_timeouts); i++) {
		struct pcb_batch_entry e = { .handle = self->handle,
					     .payload = (uintptr_t)"x", .len = 1 };
		struct pcb_publish_batch b = {
			.entries = (uintptr_t)&e, .count = 1,
			.timeout_ns = huge_timeouts[i],
		};
		long long published = pcbt_published(self->fd, self->name);

		ASSERT_EQ(0, pcbt_alarm_in(100));
		EXPECT_EQ(-EINTR, pcbt_publish(self->fd, self->handle, "x", 1,
					       0, huge_timeouts[i], NULL))
			TH_LOG("timeout %#llx",
			       (unsigned long long)huge_timeouts[i]);
		ASSERT_EQ(0, pcbt_alarm_in(100));
		EXPECT_EQ(0, pcbt_ioctl(self->fd, PCB_IOC_PUBLISH_BATCH, &b));
		EXPECT_EQ(-EINTR, e.result);
		ASSERT_EQ(0, pcbt_alarm_in(100));
		b.flags = PCB_PUB_ATOMIC;
		EXPECT_EQ(-EINTR, pcbt_ioctl(self->fd, PCB_IOC_PUBLISH_BATCH, &b));
		EXPECT_EQ(published, pcbt_published(self->fd, self->name));
	}
	pcbt_ring_close(&small);
}

/* Unaligned arguments --------------------------------------------------- */

/*
 * The header asks no alignment of arguments or of the buffers they point
 * to; the kernel copies them bytewise, so every call works at odd
 * addresses.  (The unaligned pointers inside arguments are cases of
 * bad_pointers_inside_arguments.)
 */
TEST_F(ioc, unaligned_arguments)
{
	static const unsigned int offs[] = { 1, 3, 7, 12 };
	unsigned char *buf = self->guard;
	unsigned int i;
	int c;

	for (c = 0; c < NR_CMDS; c++) {
		for (i = 0; i < ARRAY_SIZE(offs); i++) {
			size_t size = _IOC_SIZE(cmds[c].nr);
			union arg a, out;
			int fd;

			fd = template(self, c, &a);
			memcpy(buf + offs[i], &a, size);
			EXPECT_EQ(cmds[c].control,
				  pcbt_ioctl(fd, cmds[c].nr, buf + offs[i]))
				TH_LOG("%s at offset %u", cmds[c].name, offs[i]);
			memcpy(&out, buf + offs[i], size);
			if (c == C_CREATE)
				EXPECT_NE(0U, out.create.topic_id);
			if (c == C_PUBLISH)
				EXPECT_NE(0ULL, out.pub.msg_id);
			if (c == C_LIST)
				EXPECT_EQ(2U, out.list.count);
			undo(_metadata, self, c, &out);
		}
	}
}

/* io_uring -------------------------------------------------------------- */

/*
 * A minimal io_uring with 128-byte SQEs and 32-byte CQEs, straight on the
 * system calls, enough to submit one command and wait for it.
 */
struct uring {
	int fd;
	void *sq, *cq, *sqes;
	size_t sq_len, cq_len, sqes_len;
	unsigned int *sq_tail, *sq_mask, *sq_array;
	unsigned int *cq_head, *cq_tail, *cq_mask;
	unsigned char *cqes;
};

static int uring_setup(struct uring *u)
{
	struct io_uring_params p;

	memset(&p, 0, sizeof(p));
	memset(u, 0, sizeof(*u));
	p.flags = IORING_SETUP_SQE128 | IORING_SETUP_CQE32;
	u->fd = syscall(__NR_io_uring_setup, 4, &p);
	if (u->fd < 0)
		return -errno;
	u->sq_len = p.sq_off.array + p.sq_entries * sizeof(__u32);
	u->cq_len = p.cq_off.cqes + p.cq_entries * 2 * sizeof(struct io_uring_cqe);
	u->sqes_len = p.sq_entries * 2 * sizeof(struct io_uring_sqe);
	u->sq = mmap(NULL, u->sq_len, PROT_READ | PROT_WRITE, MAP_SHARED,
		     u->fd, IORING_OFF_SQ_RING);
	u->cq = mmap(NULL, u->cq_len, PROT_READ | PROT_WRITE, MAP_SHARED,
		     u->fd, IORING_OFF_CQ_RING);
	u->sqes = mmap(NULL, u->sqes_len, PROT_READ | PROT_WRITE, MAP_SHARED,
		       u->fd, IORING_OFF_SQES);
	if (u->sq == MAP_FAILED || u->cq == MAP_FAILED || u->sqes == MAP_FAILED)
		return -ENOMEM;
	u->sq_tail = u->sq + p.sq_off.tail;
	u->sq_mask = u->sq + p.sq_off.ring_mask;
	u->sq_array = u->sq + p.sq_off.array;
	u->cq_head = u->cq + p.cq_off.head;
	u->cq_tail = u->cq + p.cq_off.tail;
	u->cq_mask = u->cq + p.cq_off.ring_mask;
	u->cqes = u->cq + p.cq_off.cqes;
	return 0;
}

static void uring_exit(struct uring *u)
{
	if (u->sqes && u->sqes != MAP_FAILED)
		munmap(u->sqes, u->sqes_len);
	if (u->cq && u->cq != MAP_FAILED)
		munmap(u->cq, u->cq_len);
	if (u->sq && u->sq != MAP_FAILED)
		munmap(u->sq, u->sq_len);
	close(u->fd);
}

/* Submits one PCB_URING_CMD_PUBLISH and waits: its result. */
static int uring_publish(struct uring *u, int fd,
			 const struct pcb_uring_publish *up)
{
	unsigned int tail = *u->sq_tail, head, idx = tail & *u->sq_mask;
	struct io_uring_sqe *sqe = u->sqes + idx * 2 * sizeof(*sqe);
	struct io_uring_cqe *cqe;
	int ret;

	memset(sqe, 0, 2 * sizeof(*sqe));
	sqe->opcode = IORING_OP_URING_CMD;
	sqe->fd = fd;
	sqe->cmd_op = PCB_URING_CMD_PUBLISH;
	memcpy((unsigned char *)sqe + offsetof(struct io_uring_sqe, cmd), up,
	       sizeof(*up));
	u->sq_array[idx] = idx;
	__atomic_store_n(u->sq_tail, tail + 1, __ATOMIC_RELEASE);
	ret = syscall(__NR_io_uring_enter, u->fd, 1, 1,
		      IORING_ENTER_GETEVENTS, NULL, 0);
	if (ret != 1)
		return ret < 0 ? -errno : -EIO;
	head = *u->cq_head;
	if (head == __atomic_load_n(u->cq_tail, __ATOMIC_ACQUIRE))
		return -EIO;
	cqe = (void *)(u->cqes + (head & *u->cq_mask) * 2 * sizeof(*cqe));
	ret = cqe->res;
	__atomic_store_n(u->cq_head, head + 1, __ATOMIC_RELEASE);
	return ret;
}

static struct pcb_uring_publish uring_template(FIXTURE_DATA(ioc) *self)
{
	struct pcb_uring_publish up = {
		.handle = self->handle,
		.flags = PCB_PUB_NONBLOCK,
		.payload = (uintptr_t)self->b.payload,
		.len = MSG,
		.nr_deps = NDEPS,
		.deps = (uintptr_t)self->b.deps,
	};

	memcpy(self->b.deps, self->ids, sizeof(self->b.deps));
	return up;
}

#define URING_SETUP(u) do {						\
	int __ret = uring_setup(u);					\
	if (__ret == -ENOSYS || __ret == -EPERM || __ret == -EINVAL)	\
		SKIP(return, "io_uring with 128-byte SQEs: %s",		\
		     strerror(-__ret));					\
	ASSERT_EQ(0, __ret);						\
} while (0)

TEST_F(ioc, uring_flags_reserved_and_counts)
{
	struct pcb_uring_publish up;
	struct snap before;
	struct uring u;
	unsigned int bit, cases = 0;

	URING_SETUP(&u);
	take_snap(self, &before);
	for (bit = 0; bit < 32; bit++) {
		if ((1U << bit) & PCB_PUB_FLAGS_ALL)
			continue;
		up = uring_template(self);
		up.flags |= 1U << bit;
		EXPECT_EQ(-EINVAL, uring_publish(&u, self->fd, &up))
			TH_LOG("flag bit %u", bit);
		cases++;
	}
	for (bit = 0; bit < 2 * 3; bit++) {
		static const __u64 vals[] = { 1, 1ULL << 63, ~0ULL };

		up = uring_template(self);
		up.reserved[bit / 3] = vals[bit % 3];
		EXPECT_EQ(-EINVAL, uring_publish(&u, self->fd, &up))
			TH_LOG("reserved[%u] = %#llx", bit / 3,
			       (unsigned long long)vals[bit % 3]);
		cases++;
	}
	up = uring_template(self);
	up.nr_deps = NDEPS + 1;
	EXPECT_EQ(-EINVAL, uring_publish(&u, self->fd, &up));
	up.nr_deps = ~0U;
	EXPECT_EQ(-EINVAL, uring_publish(&u, self->fd, &up));
	up = uring_template(self);
	up.len = LEN + 1;
	EXPECT_EQ(-EMSGSIZE, uring_publish(&u, self->fd, &up));
	up.len = ~0U;
	EXPECT_EQ(-EMSGSIZE, uring_publish(&u, self->fd, &up));
	up = uring_template(self);
	up.handle = PCB_MAX_HANDLES;
	EXPECT_EQ(-EBADF, uring_publish(&u, self->fd, &up));
	up.handle = ~0U;
	EXPECT_EQ(-EBADF, uring_publish(&u, self->fd, &up));
	cases += 6;
	expect_untouched(_metadata, self, &before, "io_uring");

	/* The template itself publishes. */
	up = uring_template(self);
	EXPECT_EQ(0, uring_publish(&u, self->fd, &up));
	EXPECT_EQ(before.published + 1, pcbt_published(self->fd, self->name));
	TH_LOG("%u io_uring cases", cases);
	uring_exit(&u);
}

TEST_F(ioc, uring_bad_pointers)
{
	struct pcb_uring_publish up;
	struct uring u;
	int k;

	URING_SETUP(&u);
	for (k = 0; k < NR_BAD; k++) {
		int want = bad_expect(k, false, 0);
		struct snap before;
		__u64 id = 0;

		take_snap(self, &before);
		up = uring_template(self);
		up.payload = (uintptr_t)bad_copy(self, k, self->b.payload, MSG);
		EXPECT_EQ(want, uring_publish(&u, self->fd, &up))
			TH_LOG("payload %s", bad_names[k]);
		if (want)
			expect_untouched(_metadata, self, &before, bad_names[k]);
		pcbt_ring_drain(&self->ring);

		take_snap(self, &before);
		up = uring_template(self);
		up.deps = (uintptr_t)bad_copy(self, k, self->ids, NDEPS * 8);
		EXPECT_EQ(want, uring_publish(&u, self->fd, &up))
			TH_LOG("deps %s", bad_names[k]);
		if (want)
			expect_untouched(_metadata, self, &before, bad_names[k]);
		pcbt_ring_drain(&self->ring);

		/* An id that cannot be written: EFAULT, yet published. */
		if (k == B_NULL)
			continue;	/* 0: no id wanted */
		take_snap(self, &before);
		up = uring_template(self);
		up.msg_id_addr = (uintptr_t)bad_copy(self, k, &id, sizeof(id));
		want = bad_expect(k, true, 0);
		EXPECT_EQ(want, uring_publish(&u, self->fd, &up))
			TH_LOG("msg_id_addr %s", bad_names[k]);
		EXPECT_EQ(before.published + 1,
			  pcbt_published(self->fd, self->name))
			TH_LOG("msg_id_addr %s", bad_names[k]);
		pcbt_ring_drain(&self->ring);
	}
	uring_exit(&u);
}

TEST_HARNESS_MAIN
