// SPDX-License-Identifier: GPL-2.0
/*
 * Subscription filters: what each operator makes of each field and width,
 * masks, signed and big-endian payload fields, OR groups, validation
 * (SUBSCRIBE and SET_FILTER), PCB_IOC_SUB_INFO, and what a rejected
 * message must not do: take ring space, wake the consumer, make a
 * publisher wait.  Every publish path is filtered, and a filter can be
 * swapped while publishers run without a message ever seeing half of it.
 *
 * PCB_TEST_SEED reproduces the random cases of filter.random_cases.
 */
#include "pcb_util.h"
#include "pcb_uring.h"

#include <sys/resource.h>
#include <sys/uio.h>

#define SCHEMA		0xf117e5
#define MAX_MSG		64	/* the fixture topic's max_msg_size */
#define RING		(64U * 1024)
#define SMALL_RING	4096U
#define BIG		200	/* max_msg_size of topics that fill rings */
#define BIG_REC		PCB_REC_SIZE(sizeof(struct pcb_record) + BIG)
#define NOISE		0xa5	/* payload bytes no predicate looks at */

FIXTURE(filter) {
	int pfd;			/* publisher endpoint */
	__u32 handle;
	char name[PCB_NAME_MAX];
	__u32 topic_id;
	struct pcbt_ring ring;		/* subscriber, not subscribed yet */
};

FIXTURE_SETUP(filter)
{
	self->ring.fd = -1;
	PCBT_OPEN(self->pfd);
	pcbt_name(self->name, "filter");
	ASSERT_EQ(0, pcbt_create(self->pfd, self->name, SCHEMA, MAX_MSG, 0700,
				 &self->topic_id));
	ASSERT_EQ(0, pcbt_open_topic(self->pfd, self->name, SCHEMA,
				     &self->handle));
	ASSERT_LE(0, pcbt_ring_open(RING, &self->ring));
}

FIXTURE_TEARDOWN(filter)
{
	if (self->ring.fd >= 0)
		pcbt_ring_close(&self->ring);
	pcbt_cleanup();
	if (self->pfd >= 0)
		close(self->pfd);
}

/* A message to publish: key, length and payload. */
struct msg {
	__u64 key;
	__u32 len;
	unsigned char data[MAX_MSG];
};

static struct msg msg_make(__u64 key, __u32 len)
{
	struct msg m = { .key = key, .len = len };

	memset(m.data, NOISE, sizeof(m.data));
	return m;
}

/* Stores the low @width bytes of @v at @p in host byte order. */
static void put_host(unsigned char *p, unsigned int width, __u64 v)
{
	__u8 v8 = v;
	__u16 v16 = v;
	__u32 v32 = v;

	switch (width) {
	case 1:
		memcpy(p, &v8, 1);
		break;
	case 2:
		memcpy(p, &v16, 2);
		break;
	case 4:
		memcpy(p, &v32, 4);
		break;
	default:
		memcpy(p, &v, 8);
	}
}

static void put_be(unsigned char *p, unsigned int width, __u64 v)
{
	unsigned int i;

	for (i = 0; i < width; i++)
		p[i] = (unsigned char)(v >> (8 * (width - 1 - i)));
}

static int send_msg(FIXTURE_DATA(filter) *self, const struct msg *m,
		    struct pcb_publish *out)
{
	return pcbt_publish_deps(self->pfd, self->handle, m->data, m->len,
				 m->key, NULL, 0, PCB_PUB_NONBLOCK, out);
}

/*
 * Publishes @m and tells whether it reached @r, which must hold nothing
 * else.  A rejected message must leave prod_pos where it was.
 */
static bool got_in(struct __test_metadata *_metadata, int pfd, __u32 handle,
		   struct pcbt_ring *r, const struct msg *m)
{
	__u64 prod = pcbt_prod_pos(r);
	const struct pcb_record *rec;
	struct pcb_publish p;

	ASSERT_EQ(0, pcbt_publish_deps(pfd, handle, m->data, m->len, m->key,
				       NULL, 0, PCB_PUB_NONBLOCK, &p));
	rec = pcbt_ring_peek(r);
	if (!rec) {
		ASSERT_EQ(NULL, r->corrupt);
		ASSERT_EQ(prod, pcbt_prod_pos(r));
		return false;
	}
	EXPECT_EQ(p.msg_id, rec->msg_id);
	EXPECT_EQ(p.seq, rec->seq);
	EXPECT_EQ(m->key, rec->key);
	ASSERT_EQ(m->len, rec->payload_len);
	EXPECT_EQ(0, memcmp(m->data, pcbt_payload(rec), m->len));
	pcbt_ring_pop(r);
	EXPECT_EQ(NULL, pcbt_ring_peek(r));
	pcbt_ring_release(r);
	return true;
}

static bool got(struct __test_metadata *_metadata, FIXTURE_DATA(filter) *self,
		const struct msg *m)
{
	return got_in(_metadata, self->pfd, self->handle, &self->ring, m);
}

static bool got_key(struct __test_metadata *_metadata,
		    FIXTURE_DATA(filter) *self, __u64 key)
{
	struct msg m = msg_make(key, 8);

	return got(_metadata, self, &m);
}

static int sub(FIXTURE_DATA(filter) *self, const union pcbt_filter *f)
{
	return pcbt_subscribe_filter(self->ring.fd, self->name, SCHEMA, 0,
				     f ? &f->f : NULL, NULL);
}

static int set(FIXTURE_DATA(filter) *self, const union pcbt_filter *f)
{
	return pcbt_set_filter(self->ring.fd, self->topic_id,
			       f ? &f->f : NULL);
}

static void expect_counts(struct __test_metadata *_metadata, int fd,
			  __u32 topic_id, __u64 delivered, __u64 dropped,
			  __u64 rejected)
{
	struct pcb_sub_info si;

	ASSERT_EQ(0, pcbt_sub_info(fd, topic_id, &si));
	EXPECT_EQ(delivered, si.delivered);
	EXPECT_EQ(dropped, si.dropped);
	EXPECT_EQ(rejected, si.rejected);
}

static bool ring_empty(struct pcbt_ring *r)
{
	return !pcbt_ring_peek(r) && !r->corrupt;
}

/*
 * The reference: what the uapi says a predicate makes of a field whose
 * value, zero-extended from @width bytes, is @x.
 */
static __u64 ones(unsigned int width)
{
	return width == 8 ? ~0ULL : (1ULL << (8 * width)) - 1;
}

static __s64 sext(__u64 v, unsigned int width)
{
	unsigned int shift = 64 - 8 * width;

	return (__s64)(v << shift) >> shift;
}

static bool holds(const struct pcb_filter_pred *p, unsigned int width, __u64 x)
{
	__u64 f = x & (p->mask ? p->mask : ones(width)) & ones(width);
	bool is_signed = p->flags & PCB_PRED_SIGNED;
	__s64 a = sext(f, width), b = (__s64)p->value;

	switch (p->op) {
	case PCB_OP_EQ:
		return is_signed ? a == b : f == p->value;
	case PCB_OP_NE:
		return is_signed ? a != b : f != p->value;
	case PCB_OP_LT:
		return is_signed ? a < b : f < p->value;
	case PCB_OP_LE:
		return is_signed ? a <= b : f <= p->value;
	case PCB_OP_GT:
		return is_signed ? a > b : f > p->value;
	case PCB_OP_GE:
		return is_signed ? a >= b : f >= p->value;
	case PCB_OP_ALL:
		return (f & p->value) == p->value;
	case PCB_OP_ANY:
		return f & p->value;
	}
	return false;
}

/* A field as tests name it: which, how wide, where in the payload. */
struct field {
	__u8 field;
	__u8 width;		/* bytes compared */
	__u32 offset;		/* PAYLOAD only */
	const char *what;
};

static const struct field fields[] = {
	{ PCB_FIELD_KEY, 8, 0, "key" },
	{ PCB_FIELD_UID, 4, 0, "uid" },
	{ PCB_FIELD_PID, 4, 0, "pid" },
	{ PCB_FIELD_LEN, 4, 0, "len" },
	{ PCB_FIELD_PAYLOAD, 1, 0, "u8@0" },
	{ PCB_FIELD_PAYLOAD, 2, 1, "u16@1" },
	{ PCB_FIELD_PAYLOAD, 4, 6, "u32@6" },
	{ PCB_FIELD_PAYLOAD, 8, MAX_MSG - 8, "u64@56" },
};

static struct pcb_filter_pred *add_pred(union pcbt_filter *f,
					const struct field *fd, __u8 op,
					__u64 value)
{
	if (fd->field == PCB_FIELD_PAYLOAD)
		return pcbt_pred_payload(f, fd->width, fd->offset, op, value);
	return pcbt_pred(f, fd->field, op, value);
}

/* The field's own value when the message cannot choose it. */
static __u64 fixed_value(const struct field *fd)
{
	if (fd->field == PCB_FIELD_UID)
		return geteuid();
	if (fd->field == PCB_FIELD_PID)
		return getpid();
	return 0;
}

/* A message whose @fd is @x (for uid and pid, whatever they are). */
static struct msg msg_with(const struct field *fd, __u64 x)
{
	struct msg m = msg_make(0x6b6579, MAX_MSG);

	switch (fd->field) {
	case PCB_FIELD_KEY:
		m.key = x;
		break;
	case PCB_FIELD_LEN:
		m.len = (__u32)x;
		break;
	case PCB_FIELD_PAYLOAD:
		put_host(m.data + fd->offset, fd->width, x);
		break;
	}
	return m;
}

static const __u8 all_ops[] = {
	PCB_OP_EQ, PCB_OP_NE, PCB_OP_LT, PCB_OP_LE,
	PCB_OP_GT, PCB_OP_GE, PCB_OP_ALL, PCB_OP_ANY,
};

/*
 * Sets a one-predicate filter and publishes a message for each of @xs:
 * each must be delivered exactly when the reference says the predicate
 * holds.  Returns how many were delivered.
 */
static unsigned int check_pred(struct __test_metadata *_metadata,
			       FIXTURE_DATA(filter) *self,
			       const struct field *fd, __u8 op, __u8 flags,
			       __u64 mask, __u64 value, const __u64 *xs,
			       unsigned int nr_xs)
{
	struct pcb_filter_pred *p;
	union pcbt_filter f;
	unsigned int i, n = 0;

	pcbt_filter_init(&f);
	p = add_pred(&f, fd, op, value);
	p->flags = flags;
	p->mask = mask;
	ASSERT_EQ(0, set(self, &f))
		TH_LOG("%s op %u flags %#x mask %#llx value %#llx", fd->what,
		       op, flags, (unsigned long long)mask,
		       (unsigned long long)value);
	for (i = 0; i < nr_xs; i++) {
		struct msg m = msg_with(fd, xs[i]);
		__u64 x = fd->field == PCB_FIELD_UID ||
			  fd->field == PCB_FIELD_PID ? fixed_value(fd) : xs[i];
		bool want = holds(p, fd->width, x);

		ASSERT_EQ(want, got(_metadata, self, &m))
			TH_LOG("%s %#llx, op %u flags %#x mask %#llx value %#llx",
			       fd->what, (unsigned long long)x, op, flags,
			       (unsigned long long)mask,
			       (unsigned long long)value);
		n += want;
	}
	return n;
}

/* Values of one width worth comparing with: both ends, the sign bit. */
static unsigned int edge_values(unsigned int width, __u64 *v)
{
	__u64 top = 1ULL << (8 * width - 1);
	unsigned int n = 0;

	v[n++] = 0;
	v[n++] = 1;
	v[n++] = top - 1;
	v[n++] = top;
	v[n++] = ones(width) - 1;
	v[n++] = ones(width);
	v[n++] = 0x5a5a5a5a5a5a5a5aULL & ones(width);
	v[n++] = 0x0f0f0f0f0f0f0f0fULL & ones(width);
	return n;
}

/* Messages to try against @value: its neighbours and a few patterns. */
static unsigned int probes(const struct field *fd, __u64 value, __u64 *x)
{
	unsigned int n = 0;

	if (fd->field == PCB_FIELD_UID || fd->field == PCB_FIELD_PID) {
		x[n++] = 0;	/* one message: the field is what it is */
		return n;
	}
	if (fd->field == PCB_FIELD_LEN) {
		static const __u64 lens[] = { 0, 1, 2, 31, 32, 33, 63, 64 };

		memcpy(x, lens, sizeof(lens));
		return ARRAY_SIZE(lens);
	}
	x[n++] = (value - 1) & ones(fd->width);
	x[n++] = value;
	x[n++] = (value + 1) & ones(fd->width);
	x[n++] = 0xf0f0f0f0f0f0f0f0ULL & ones(fd->width);
	x[n++] = 0x0f0e0f0e0f0e0f0eULL & ones(fd->width);
	x[n++] = 0;
	x[n++] = ones(fd->width);
	return n;
}

/* Values a predicate on @fd is worth trying with. */
static unsigned int pred_values(const struct field *fd, __u64 *v)
{
	__u64 x = fixed_value(fd);
	unsigned int n = 0;

	switch (fd->field) {
	case PCB_FIELD_UID:
	case PCB_FIELD_PID:
		v[n++] = 0;
		v[n++] = (x - 1) & 0xffffffff;
		v[n++] = x;
		v[n++] = x + 1;
		v[n++] = x | (x + 1);		/* one bit more than x */
		v[n++] = ~x & 0xffffffff;	/* no bit of x */
		v[n++] = x & -x;		/* x's lowest bit */
		v[n++] = 0x80000000;
		v[n++] = 0xffffffff;
		return n;
	case PCB_FIELD_LEN:
		v[n++] = 0;
		v[n++] = 1;
		v[n++] = 32;
		v[n++] = 64;
		v[n++] = 0x80000000;
		v[n++] = 0xffffffff;
		return n;
	}
	return edge_values(fd->width, v);
}

/* Every operator, unsigned and signed, on every field and width. */
TEST_F(filter, operators_on_every_field)
{
	__u64 values[16], xs[16];
	unsigned int i, j, k, nr_v, nr_x;
	__u64 published = 0, delivered = 0;

	ASSERT_EQ(0, sub(self, NULL));
	for (i = 0; i < ARRAY_SIZE(fields); i++) {
		const struct field *fd = &fields[i];

		nr_v = pred_values(fd, values);
		for (j = 0; j < nr_v; j++) {
			nr_x = probes(fd, values[j], xs);
			for (k = 0; k < ARRAY_SIZE(all_ops); k++) {
				__u8 op = all_ops[k];

				delivered += check_pred(_metadata, self, fd, op,
							0, 0, values[j], xs,
							nr_x);
				published += nr_x;
				/* ALL and ANY test bits: sign means nothing. */
				if (op == PCB_OP_ALL || op == PCB_OP_ANY)
					continue;
				delivered += check_pred(_metadata, self, fd, op,
						PCB_PRED_SIGNED, 0,
						sext(values[j], fd->width),
						xs, nr_x);
				published += nr_x;
			}
		}
	}
	expect_counts(_metadata, self->ring.fd, self->topic_id, delivered, 0,
		      published - delivered);
	TH_LOG("%llu messages, %llu delivered", (unsigned long long)published,
	       (unsigned long long)delivered);
}

/* Hand-computed answers, so that the reference above is checked too. */
struct by_hand {
	__u8 field;		/* a row of fields[] */
	__u8 op;
	__u8 flags;
	__u64 mask;
	__u64 value;
	__u64 x;
	bool holds;
};

#define KEY	0
#define UID	1
#define PID	2
#define LEN	3
#define U8	4
#define U16	5
#define U32	6
#define U64	7
#define S	PCB_PRED_SIGNED
#define MINUS(n) ((__u64)-(__s64)(n))

static const struct by_hand by_hand[] = {
	{ KEY, PCB_OP_EQ, 0, 0, 42, 42, true },
	{ KEY, PCB_OP_EQ, 0, 0, 42, 43, false },
	{ KEY, PCB_OP_NE, 0, 0, 42, 42, false },
	{ KEY, PCB_OP_NE, 0, 0, 42, 41, true },
	{ KEY, PCB_OP_LT, 0, 0, 10, 9, true },
	{ KEY, PCB_OP_LT, 0, 0, 10, 10, false },
	{ KEY, PCB_OP_LE, 0, 0, 10, 10, true },
	{ KEY, PCB_OP_LE, 0, 0, 10, 11, false },
	{ KEY, PCB_OP_GT, 0, 0, 10, 11, true },
	{ KEY, PCB_OP_GT, 0, 0, 10, 10, false },
	{ KEY, PCB_OP_GE, 0, 0, 10, 10, true },
	{ KEY, PCB_OP_GE, 0, 0, 10, 9, false },
	{ KEY, PCB_OP_LT, 0, 0, 0, ~0ULL, false },
	{ KEY, PCB_OP_GT, 0, 0, 0, ~0ULL, true },
	{ KEY, PCB_OP_LT, S, 0, 0, ~0ULL, true },
	{ KEY, PCB_OP_GT, S, 0, 0, ~0ULL, false },
	{ KEY, PCB_OP_GE, S, 0, MINUS(5), MINUS(5), true },
	{ KEY, PCB_OP_GE, S, 0, MINUS(5), MINUS(6), false },
	{ KEY, PCB_OP_LE, S, 0, MINUS(5), MINUS(6), true },
	{ KEY, PCB_OP_GT, S, 0, 1ULL << 62, 1ULL << 63, false },
	{ KEY, PCB_OP_ALL, 0, 0, 0x6, 0x7, true },
	{ KEY, PCB_OP_ALL, 0, 0, 0x6, 0x5, false },
	{ KEY, PCB_OP_ANY, 0, 0, 0x6, 0x1, false },
	{ KEY, PCB_OP_ANY, 0, 0, 0x6, 0x4, true },
	{ KEY, PCB_OP_ALL, 0, 0, 0, 0x1234, true },
	{ KEY, PCB_OP_ANY, 0, 0, 0, ~0ULL, false },
	{ KEY, PCB_OP_ANY, 0, 0, 1ULL << 63, 1ULL << 63, true },
	/* Masks: 0 means all ones, else only the mask's bits count. */
	{ KEY, PCB_OP_EQ, 0, 0, 0x1234, 0x1234, true },
	{ KEY, PCB_OP_EQ, 0, 0xff00, 0x3300, 0xaabb33cc, true },
	{ KEY, PCB_OP_EQ, 0, 0xff00, 0x3300, 0xaabb34cc, false },
	{ KEY, PCB_OP_EQ, 0, 0xff00, 0x33cc, 0xaabb33cc, false },
	{ KEY, PCB_OP_GT, 0, 0xf0, 0x10, 0x2f, true },
	{ KEY, PCB_OP_GT, 0, 0xf0, 0x10, 0x1f, false },
	{ KEY, PCB_OP_ALL, 0, 0x0f, 0x01, 0x10, false },
	{ KEY, PCB_OP_NE, 0, 1ULL << 63, 0, ~0ULL, true },
	/* The sign is the field width's top bit, after the mask. */
	{ U16, PCB_OP_LT, S, 0xff00, 0, 0x80ff, true },
	{ U16, PCB_OP_GT, 0, 0xff00, 0x7fff, 0x80ff, true },
	{ U16, PCB_OP_GT, S, 0xff00, 0, 0x80ff, false },
	{ U16, PCB_OP_EQ, S, 0xff00, MINUS(0x8000), 0x80ff, true },
	{ U16, PCB_OP_GE, S, 0x7fff, 0, 0xffff, true },
	{ U8, PCB_OP_LT, S, 0, 0, 0x80, true },
	{ U8, PCB_OP_LT, 0, 0, 0x80, 0x80, false },
	{ U8, PCB_OP_GE, S, 0, MINUS(128), 0x80, true },
	{ U8, PCB_OP_LE, S, 0, MINUS(128), 0x80, true },
	{ U8, PCB_OP_GT, S, 0, MINUS(128), 0x80, false },
	{ U8, PCB_OP_EQ, S, 0, MINUS(1), 0xff, true },
	{ U8, PCB_OP_EQ, 0, 0, 0xff, 0xff, true },
	{ U32, PCB_OP_LT, S, 0, 0, 0x80000000, true },
	{ U32, PCB_OP_GT, 0, 0, 0x7fffffff, 0x80000000, true },
	{ U32, PCB_OP_GT, S, 0, MINUS(2), 0xffffffff, true },
	{ U32, PCB_OP_EQ, 0, 0xffff, 0x5678, 0x12345678, true },
	{ U64, PCB_OP_LT, S, 0, 0, 1ULL << 63, true },
	{ U64, PCB_OP_GT, 0, 0, 1ULL << 62, 1ULL << 63, true },
	{ U64, PCB_OP_EQ, 0, 0, 0x0123456789abcdefULL, 0x0123456789abcdefULL,
	  true },
	{ LEN, PCB_OP_GT, 0, 0, 16, 17, true },
	{ LEN, PCB_OP_GT, 0, 0, 16, 16, false },
	{ LEN, PCB_OP_LT, S, 0, MINUS(1), 0, false },
	{ LEN, PCB_OP_LT, 0, 0, 0xffffffff, 64, true },
	{ LEN, PCB_OP_EQ, 0, 0, 0, 0, true },
	{ LEN, PCB_OP_ANY, 0, 0, 0x40, 64, true },
};

#undef S

TEST_F(filter, operators_by_hand)
{
	unsigned int i;

	ASSERT_EQ(0, sub(self, NULL));
	for (i = 0; i < ARRAY_SIZE(by_hand); i++) {
		const struct by_hand *c = &by_hand[i];
		const struct field *fd = &fields[c->field];
		struct pcb_filter_pred *p;
		union pcbt_filter f;
		struct msg m = msg_with(fd, c->x);

		pcbt_filter_init(&f);
		p = add_pred(&f, fd, c->op, c->value);
		p->flags = c->flags;
		p->mask = c->mask;
		ASSERT_EQ(0, set(self, &f)) TH_LOG("row %u", i);
		/* The reference agrees with the hand... */
		ASSERT_EQ(c->holds, holds(p, fd->width, c->x)) TH_LOG("row %u", i);
		/* ...and so must the kernel. */
		EXPECT_EQ(c->holds, got(_metadata, self, &m)) TH_LOG("row %u", i);
	}
}

/* uid and pid: the kernel's idea of them, which the message cannot forge. */
TEST_F(filter, uid_and_pid)
{
	union pcbt_filter f;

	ASSERT_EQ(0, sub(self, NULL));
	pcbt_filter_init(&f);
	pcbt_pred(&f, PCB_FIELD_UID, PCB_OP_EQ, geteuid());
	pcbt_pred(&f, PCB_FIELD_PID, PCB_OP_EQ, getpid());
	ASSERT_EQ(0, set(self, &f));
	EXPECT_TRUE(got_key(_metadata, self, 1));

	f.f.preds[1].value = getpid() + 1;
	ASSERT_EQ(0, set(self, &f));
	EXPECT_FALSE(got_key(_metadata, self, 2));

	f.f.preds[1].value = getpid();
	f.f.preds[0].value = geteuid() ^ 1;
	ASSERT_EQ(0, set(self, &f));
	EXPECT_FALSE(got_key(_metadata, self, 3));
}

/* A child process publishes: its pid is not ours. */
TEST_F(filter, pid_of_another_process)
{
	const struct pcb_record *rec;
	union pcbt_filter f;
	int status;
	pid_t pid;

	ASSERT_EQ(0, sub(self, NULL));
	pcbt_filter_init(&f);
	pcbt_pred(&f, PCB_FIELD_PID, PCB_OP_NE, getpid());
	ASSERT_EQ(0, set(self, &f));

	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid) {
		struct msg m = msg_make(77, 4);

		_exit(send_msg(self, &m, NULL) ? 1 : 0);
	}
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	ASSERT_EQ(0, status);
	rec = pcbt_ring_peek(&self->ring);
	ASSERT_NE(NULL, rec);
	EXPECT_EQ((__u32)pid, rec->pid);
	EXPECT_EQ(77ULL, rec->key);
	pcbt_ring_pop(&self->ring);
	pcbt_ring_release(&self->ring);
	EXPECT_FALSE(got_key(_metadata, self, 1));	/* ours: rejected */
	expect_counts(_metadata, self->ring.fd, self->topic_id, 1, 0, 1);
}

/* Payload fields: the bytes at the offset, in either byte order. */
TEST_F(filter, payload_byte_order)
{
	static const unsigned char bytes[8] = {
		0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88,
	};
	static const __u64 be[] = {
		[1] = 0x11, [2] = 0x1122, [4] = 0x11223344,
		[8] = 0x1122334455667788ULL,
	};
	static const __u8 widths[] = { 1, 2, 4, 8 };
	struct msg m = msg_make(1, MAX_MSG);
	struct pcb_filter_pred *p;
	union pcbt_filter f;
	unsigned int i;

	ASSERT_EQ(0, sub(self, NULL));
	memcpy(m.data + 5, bytes, sizeof(bytes));
	for (i = 0; i < ARRAY_SIZE(widths); i++) {
		__u8 w = widths[i];
		__u64 host = 0;
		__u8 h8;
		__u16 h16;
		__u32 h32;

		switch (w) {
		case 1:
			memcpy(&h8, bytes, 1);
			host = h8;
			break;
		case 2:
			memcpy(&h16, bytes, 2);
			host = h16;
			break;
		case 4:
			memcpy(&h32, bytes, 4);
			host = h32;
			break;
		default:
			memcpy(&host, bytes, 8);
		}

		pcbt_filter_init(&f);
		p = pcbt_pred_payload(&f, w, 5, PCB_OP_EQ, host);
		ASSERT_EQ(0, set(self, &f));
		EXPECT_TRUE(got(_metadata, self, &m)) TH_LOG("width %u", w);

		p->flags = PCB_PRED_BE;
		ASSERT_EQ(0, set(self, &f));
		EXPECT_EQ(host == be[w], got(_metadata, self, &m))
			TH_LOG("width %u", w);

		p->value = be[w];
		ASSERT_EQ(0, set(self, &f));
		EXPECT_TRUE(got(_metadata, self, &m)) TH_LOG("width %u", w);

		p->flags = 0;
		ASSERT_EQ(0, set(self, &f));
		EXPECT_EQ(host == be[w], got(_metadata, self, &m))
			TH_LOG("width %u", w);
	}
}

/* Big-endian fields are signed and masked after the byte swap. */
TEST_F(filter, payload_big_endian_signed_masked)
{
	static const struct {
		__u8 op, flags;
		__u64 mask, value;
		bool holds;
	} cases[] = {
		{ PCB_OP_EQ, PCB_PRED_SIGNED, 0, MINUS(2), true },
		{ PCB_OP_LT, PCB_PRED_SIGNED, 0, MINUS(1), true },
		{ PCB_OP_GT, PCB_PRED_SIGNED, 0, MINUS(2), false },
		{ PCB_OP_EQ, 0, 0, 0xfffe, true },
		{ PCB_OP_GT, 0, 0, 0xfffd, true },
		{ PCB_OP_EQ, 0, 0xff00, 0xff00, true },
		{ PCB_OP_EQ, 0, 0x00ff, 0x00fe, true },
		{ PCB_OP_EQ, 0, 0x00ff, 0x00ff, false },
		{ PCB_OP_ALL, 0, 0, 0x8002, true },
		{ PCB_OP_ALL, 0, 0, 0x0001, false },
		{ PCB_OP_EQ, PCB_PRED_SIGNED, 0x00ff, 0xfe, true },
	};
	struct msg m = msg_make(1, 12);
	struct pcb_filter_pred *p;
	union pcbt_filter f;
	unsigned int i;

	ASSERT_EQ(0, sub(self, NULL));
	m.data[10] = 0xff;
	m.data[11] = 0xfe;
	for (i = 0; i < ARRAY_SIZE(cases); i++) {
		pcbt_filter_init(&f);
		p = pcbt_pred_payload(&f, 2, 10, cases[i].op, cases[i].value);
		p->flags = PCB_PRED_BE | cases[i].flags;
		p->mask = cases[i].mask;
		ASSERT_EQ(0, set(self, &f)) TH_LOG("case %u", i);
		EXPECT_EQ(cases[i].holds, got(_metadata, self, &m))
			TH_LOG("case %u", i);
	}
}

/*
 * Every width at every offset the topic allows, aligned or not: the
 * predicate sees exactly its bytes, not the noise around them.
 */
TEST_F(filter, payload_every_offset)
{
	static const __u8 widths[] = { 1, 2, 4, 8 };
	const __u64 pattern = 0x8877665544332211ULL;
	struct pcb_filter_pred *p;
	union pcbt_filter f;
	unsigned int i, off;

	ASSERT_EQ(0, sub(self, NULL));
	for (i = 0; i < ARRAY_SIZE(widths); i++) {
		__u8 w = widths[i];
		__u64 v = pattern & ones(w);

		for (off = 0; off + w <= MAX_MSG; off++) {
			struct msg m = msg_make(off, MAX_MSG);

			put_host(m.data + off, w, v);
			pcbt_filter_init(&f);
			p = pcbt_pred_payload(&f, w, off, PCB_OP_EQ, v);
			ASSERT_EQ(0, set(self, &f));
			ASSERT_TRUE(got(_metadata, self, &m))
				TH_LOG("width %u offset %u", w, off);
			/* And in big-endian order. */
			put_be(m.data + off, w, v);
			p->flags = PCB_PRED_BE;
			ASSERT_EQ(0, set(self, &f));
			ASSERT_TRUE(got(_metadata, self, &m))
				TH_LOG("BE width %u offset %u", w, off);
			/* The same bytes one further on are not there. */
			if (off + 1 + w > MAX_MSG)
				continue;
			p->offset = off + 1;
			ASSERT_EQ(0, set(self, &f));
			ASSERT_FALSE(got(_metadata, self, &m))
				TH_LOG("width %u offset %u", w, off + 1);
		}
	}
}

/* Seeded random predicates against the reference. */
TEST_F(filter, random_cases)
{
	__u64 seed = pcbt_seed(), st = seed;
	unsigned int i, delivered = 0;

	TH_LOG("seed %llu (PCB_TEST_SEED reproduces)",
	       (unsigned long long)seed);
	ASSERT_EQ(0, sub(self, NULL));
	for (i = 0; i < 600; i++) {
		const struct field *fd =
			&fields[pcbt_rand_below(&st, ARRAY_SIZE(fields))];
		__u8 op = all_ops[pcbt_rand_below(&st, ARRAY_SIZE(all_ops))];
		__u64 w1 = ones(fd->width), x, value, mask = 0;
		__u8 flags = 0;

		x = pcbt_rand(&st) & w1;
		if (fd->field == PCB_FIELD_LEN)
			x = pcbt_rand_below(&st, MAX_MSG + 1);
		if (fd->field == PCB_FIELD_UID || fd->field == PCB_FIELD_PID)
			x = fixed_value(fd);
		switch (pcbt_rand_below(&st, 4)) {
		case 0:
			value = x;
			break;
		case 1:
			value = (x + pcbt_rand_below(&st, 5) - 2) & w1;
			break;
		default:
			value = pcbt_rand(&st) & w1;
		}
		if (pcbt_rand_below(&st, 2))
			mask = pcbt_rand(&st) & w1;
		if (op != PCB_OP_ALL && op != PCB_OP_ANY &&
		    pcbt_rand_below(&st, 2)) {
			flags = PCB_PRED_SIGNED;
			value = (__u64)sext(value, fd->width);
		}
		delivered += check_pred(_metadata, self, fd, op, flags, mask,
					value, &x, 1);
	}
	expect_counts(_metadata, self->ring.fd, self->topic_id, delivered, 0,
		      600 - delivered);
}

/* PCB_PRED_OR: runs of alternatives, ANDed together. */
TEST_F(filter, or_groups)
{
	union pcbt_filter f;
	struct msg m;
	__u64 key;

	ASSERT_EQ(0, sub(self, NULL));

	/* (key == 1 || key == 2) && len > 4, the uapi's example */
	pcbt_filter_init(&f);
	pcbt_pred(&f, PCB_FIELD_KEY, PCB_OP_EQ, 1)->flags = PCB_PRED_OR;
	pcbt_pred(&f, PCB_FIELD_KEY, PCB_OP_EQ, 2);
	pcbt_pred(&f, PCB_FIELD_LEN, PCB_OP_GT, 4);
	ASSERT_EQ(0, set(self, &f));
	m = msg_make(1, 5);
	EXPECT_TRUE(got(_metadata, self, &m));
	m = msg_make(2, 5);
	EXPECT_TRUE(got(_metadata, self, &m));
	m = msg_make(3, 5);
	EXPECT_FALSE(got(_metadata, self, &m));
	m = msg_make(1, 4);
	EXPECT_FALSE(got(_metadata, self, &m));

	/* (key == 1 || key == 2) && (len == 1 || len == 2) */
	pcbt_filter_init(&f);
	pcbt_pred(&f, PCB_FIELD_KEY, PCB_OP_EQ, 1)->flags = PCB_PRED_OR;
	pcbt_pred(&f, PCB_FIELD_KEY, PCB_OP_EQ, 2);
	pcbt_pred(&f, PCB_FIELD_LEN, PCB_OP_EQ, 1)->flags = PCB_PRED_OR;
	pcbt_pred(&f, PCB_FIELD_LEN, PCB_OP_EQ, 2);
	ASSERT_EQ(0, set(self, &f));
	m = msg_make(1, 1);
	EXPECT_TRUE(got(_metadata, self, &m));
	m = msg_make(2, 2);
	EXPECT_TRUE(got(_metadata, self, &m));
	m = msg_make(2, 1);
	EXPECT_TRUE(got(_metadata, self, &m));
	m = msg_make(1, 3);
	EXPECT_FALSE(got(_metadata, self, &m));
	m = msg_make(3, 1);
	EXPECT_FALSE(got(_metadata, self, &m));

	/* (key < 10 || key > 100 || key == 50) && u8@0 == 7 */
	pcbt_filter_init(&f);
	pcbt_pred(&f, PCB_FIELD_KEY, PCB_OP_LT, 10)->flags = PCB_PRED_OR;
	pcbt_pred(&f, PCB_FIELD_KEY, PCB_OP_GT, 100)->flags = PCB_PRED_OR;
	pcbt_pred(&f, PCB_FIELD_KEY, PCB_OP_EQ, 50);
	pcbt_pred_payload(&f, 1, 0, PCB_OP_EQ, 7);
	ASSERT_EQ(0, set(self, &f));
	for (key = 0; key < 120; key += 7) {
		bool alt = key < 10 || key > 100 || key == 50;

		m = msg_make(key, 1);
		m.data[0] = 7;
		EXPECT_EQ(alt, got(_metadata, self, &m)) TH_LOG("key %llu",
							(unsigned long long)key);
		m.data[0] = 8;
		EXPECT_FALSE(got(_metadata, self, &m));
	}
	m = msg_make(50, 1);
	m.data[0] = 7;
	EXPECT_TRUE(got(_metadata, self, &m));

	/* Sixteen alternatives in one run: key 0 .. 15 */
	pcbt_filter_init(&f);
	for (key = 0; key < PCB_FILTER_MAX_PREDS; key++)
		pcbt_pred(&f, PCB_FIELD_KEY, PCB_OP_EQ, key)->flags =
			key + 1 < PCB_FILTER_MAX_PREDS ? PCB_PRED_OR : 0;
	ASSERT_EQ(0, set(self, &f));
	for (key = 0; key < 20; key++)
		EXPECT_EQ(key < PCB_FILTER_MAX_PREDS,
			  got_key(_metadata, self, key));

	/* A short message fails its payload alternative, not the others. */
	pcbt_filter_init(&f);
	pcbt_pred_payload(&f, 1, 10, PCB_OP_EQ, 0)->flags = PCB_PRED_OR;
	pcbt_pred(&f, PCB_FIELD_KEY, PCB_OP_EQ, 5);
	ASSERT_EQ(0, set(self, &f));
	m = msg_make(5, 5);
	EXPECT_TRUE(got(_metadata, self, &m));
	m = msg_make(6, 5);
	EXPECT_FALSE(got(_metadata, self, &m));
	m = msg_make(6, 11);
	m.data[10] = 0;
	EXPECT_TRUE(got(_metadata, self, &m));
}

/* The last bytes of the largest message are reachable, no further. */
TEST_F(filter, boundary_offsets)
{
	static const __u8 widths[] = { 1, 2, 4, 8 };
	char tiny[PCB_NAME_MAX];
	struct pcb_filter_pred *p;
	union pcbt_filter f;
	struct pcbt_ring r;
	unsigned int i;

	ASSERT_EQ(0, sub(self, NULL));
	for (i = 0; i < ARRAY_SIZE(widths); i++) {
		__u8 w = widths[i];
		struct msg m = msg_make(w, MAX_MSG);

		put_host(m.data + MAX_MSG - w, w, 0x0102030405060708ULL);
		pcbt_filter_init(&f);
		p = pcbt_pred_payload(&f, w, MAX_MSG - w, PCB_OP_EQ,
				      0x0102030405060708ULL & ones(w));
		ASSERT_EQ(0, set(self, &f)) TH_LOG("width %u", w);
		EXPECT_TRUE(got(_metadata, self, &m)) TH_LOG("width %u", w);
		m.len = MAX_MSG - 1;
		EXPECT_FALSE(got(_metadata, self, &m)) TH_LOG("width %u", w);

		p->offset = MAX_MSG - w + 1;
		EXPECT_EQ(-EINVAL, set(self, &f)) TH_LOG("width %u", w);
		/* offset + width must not wrap around 2^32 either. */
		p->offset = 0x100000000ULL - w;
		EXPECT_EQ(-EINVAL, set(self, &f)) TH_LOG("width %u", w);
		p->offset = 0xffffffff;
		EXPECT_EQ(-EINVAL, set(self, &f)) TH_LOG("width %u", w);
		if (w > 1) {
			p->offset = 0x100000000ULL - w + 1;
			EXPECT_EQ(-EINVAL, set(self, &f)) TH_LOG("width %u", w);
		}
	}

	/* The same at SUBSCRIBE, on a topic of one byte. */
	pcbt_name(tiny, "tiny");
	ASSERT_EQ(0, pcbt_create(self->pfd, tiny, SCHEMA, 1, 0700, NULL));
	ASSERT_LE(0, pcbt_ring_open(SMALL_RING, &r));
	pcbt_filter_init(&f);
	p = pcbt_pred_payload(&f, 2, 0, PCB_OP_EQ, 0);
	EXPECT_EQ(-EINVAL, pcbt_subscribe_filter(r.fd, tiny, SCHEMA, 0, &f.f,
						 NULL));
	p->width = 1;
	p->offset = 1;
	EXPECT_EQ(-EINVAL, pcbt_subscribe_filter(r.fd, tiny, SCHEMA, 0, &f.f,
						 NULL));
	p->offset = 0;
	EXPECT_EQ(0, pcbt_subscribe_filter(r.fd, tiny, SCHEMA, 0, &f.f, NULL));
	pcbt_ring_close(&r);
}

/*
 * A message shorter than offset + width never matches, whatever the
 * operator, even one that would hold for any value.
 */
TEST_F(filter, short_messages_never_match)
{
	static const struct {
		__u8 op;
		__u64 value;
	} always[] = {
		{ PCB_OP_GE, 0 }, { PCB_OP_LE, ~0ULL }, { PCB_OP_ALL, 0 },
		{ PCB_OP_NE, 0x1234567 }, { PCB_OP_EQ, 0 },
		{ PCB_OP_NE, NOISE },
	};
	static const __u8 widths[] = { 1, 2, 4, 8 };
	union pcbt_filter f;
	unsigned int i, j;
	__u32 len;

	ASSERT_EQ(0, sub(self, NULL));
	for (i = 0; i < ARRAY_SIZE(widths); i++) {
		__u8 w = widths[i];

		for (j = 0; j < ARRAY_SIZE(always); j++) {
			__u64 v = always[j].value & ones(w);

			pcbt_filter_init(&f);
			pcbt_pred_payload(&f, w, 9, always[j].op, v);
			ASSERT_EQ(0, set(self, &f));
			for (len = 0; len <= 9U + w; len++) {
				struct msg m = msg_make(len, len);

				/* Zeros where the predicate looks. */
				memset(m.data + 9, 0, w);
				EXPECT_EQ(len == 9U + w,
					  got(_metadata, self, &m))
					TH_LOG("width %u op %u len %u", w,
					       always[j].op, len);
			}
		}
	}
}

/* A filter that accepts nothing: no record, no ring space, all counted. */
TEST_F(filter, accepts_nothing)
{
	union pcbt_filter f;
	__u64 key;

	pcbt_filter_init(&f);
	pcbt_pred(&f, PCB_FIELD_KEY, PCB_OP_EQ, 1);
	pcbt_pred(&f, PCB_FIELD_KEY, PCB_OP_EQ, 2);
	ASSERT_EQ(0, sub(self, &f));
	for (key = 0; key < 40; key++)
		EXPECT_FALSE(got_key(_metadata, self, key));
	pcbt_filter_init(&f);
	pcbt_pred(&f, PCB_FIELD_LEN, PCB_OP_GT, MAX_MSG);
	ASSERT_EQ(0, set(self, &f));
	for (key = 0; key < 10; key++) {
		struct msg m = msg_make(key, MAX_MSG);

		EXPECT_FALSE(got(_metadata, self, &m));
	}
	EXPECT_EQ(0ULL, pcbt_prod_pos(&self->ring));
	expect_counts(_metadata, self->ring.fd, self->topic_id, 0, 0, 50);
	EXPECT_EQ(50LL, pcbt_published(self->pfd, self->name));
}

/* No predicate, or only ones that always hold: everything arrives. */
TEST_F(filter, accepts_everything)
{
	struct pcb_sub_info si;
	union pcbt_filter f;
	__u64 key;
	int i;

	pcbt_filter_init(&f);
	ASSERT_EQ(0, sub(self, &f));
	ASSERT_EQ(0, pcbt_sub_info(self->ring.fd, self->topic_id, &si));
	EXPECT_EQ(0U, si.nr_preds);
	for (key = 0; key < 20; key++)
		EXPECT_TRUE(got_key(_metadata, self, key * 0x1111111111ULL));

	for (i = 0; i < PCB_FILTER_MAX_PREDS; i++)
		pcbt_pred_payload(&f, 8, 0, PCB_OP_GE, 0);
	ASSERT_EQ(0, set(self, &f));
	ASSERT_EQ(0, pcbt_sub_info(self->ring.fd, self->topic_id, &si));
	EXPECT_EQ((__u32)PCB_FILTER_MAX_PREDS, si.nr_preds);
	for (key = 0; key < 20; key++) {
		struct msg m = msg_make(key, 8 + (__u32)key);

		EXPECT_TRUE(got(_metadata, self, &m));
	}
	expect_counts(_metadata, self->ring.fd, self->topic_id, 40, 0, 0);
}

/*
 * Filters for the validation tests: one predicate, or a shape around it.
 * The predicate's fields are named in full, zeros included: a zero can be
 * the very thing under test.
 */
enum shape {
	ONE,			/* just the predicate */
	SIXTEEN,		/* fifteen valid ones, then the predicate */
	SEVENTEEN,		/* the predicate, then sixteen valid ones */
	THREE,			/* two valid ones joined by OR, then it */
	NR_PREDS_ALL_ONES,	/* the predicate, nr_preds UINT32_MAX */
	NR_PREDS_2_31,		/* the predicate, nr_preds 2^31 */
	FLAGS_1,		/* struct pcb_filter's flags 1 */
	FLAGS_TOP,		/* its flags' top bit */
	RESERVED_1,		/* its reserved word 1 */
	RESERVED_TOP,		/* its reserved word's top bit */
};

struct filter_case {
	const char *what;
	enum shape shape;
	struct pcb_filter_pred p;
};

#define PRED(fld, o, w, fl, off, m, v) {				\
	.field = (fld), .op = (o), .width = (w), .flags = (fl),		\
	.offset = (off), .mask = (m), .value = (v) }
#define KEY_EQ_7	PRED(PCB_FIELD_KEY, PCB_OP_EQ, 0, 0, 0, 0, 7)
#define PAYLOAD_EQ(w, off, m, v)					\
	PRED(PCB_FIELD_PAYLOAD, PCB_OP_EQ, w, 0, off, m, v)
#define SGN		PCB_PRED_SIGNED

/* One rule broken at a time, on a topic of MAX_MSG bytes. */
static const struct filter_case bad_filters[] = {
	{ "nr_preds one too many", SEVENTEEN, KEY_EQ_7 },
	{ "nr_preds UINT32_MAX", NR_PREDS_ALL_ONES, KEY_EQ_7 },
	{ "nr_preds 2^31", NR_PREDS_2_31, KEY_EQ_7 },
	{ "filter flags 1", FLAGS_1, KEY_EQ_7 },
	{ "filter flags top bit", FLAGS_TOP, KEY_EQ_7 },
	{ "filter reserved 1", RESERVED_1, KEY_EQ_7 },
	{ "filter reserved top bit", RESERVED_TOP, KEY_EQ_7 },
	{ "field 0", ONE, PRED(0, PCB_OP_EQ, 0, 0, 0, 0, 7) },
	{ "field 6", ONE, PRED(PCB_FIELD_PAYLOAD + 1, PCB_OP_EQ, 0, 0, 0, 0, 7) },
	{ "field 255", ONE, PRED(255, PCB_OP_EQ, 0, 0, 0, 0, 7) },
	{ "op 0", ONE, PRED(PCB_FIELD_KEY, 0, 0, 0, 0, 0, 7) },
	{ "op 9", ONE, PRED(PCB_FIELD_KEY, PCB_OP_ANY + 1, 0, 0, 0, 0, 7) },
	{ "op 255", ONE, PRED(PCB_FIELD_KEY, 255, 0, 0, 0, 0, 7) },
	{ "pred flags 0x08", ONE,
	  PRED(PCB_FIELD_KEY, PCB_OP_EQ, 0, PCB_PRED_FLAGS_ALL + 1, 0, 0, 7) },
	{ "pred flags 0x80", ONE, PRED(PCB_FIELD_KEY, PCB_OP_EQ, 0, 0x80, 0, 0, 7) },
	{ "payload width 0", ONE, PAYLOAD_EQ(0, 0, 0, 7) },
	{ "payload width 3", ONE, PAYLOAD_EQ(3, 0, 0, 7) },
	{ "payload width 5", ONE, PAYLOAD_EQ(5, 0, 0, 7) },
	{ "payload width 6", ONE, PAYLOAD_EQ(6, 0, 0, 7) },
	{ "payload width 16", ONE, PAYLOAD_EQ(16, 0, 0, 7) },
	{ "payload width 255", ONE, PAYLOAD_EQ(255, 0, 0, 7) },
	{ "key width 8", ONE, PRED(PCB_FIELD_KEY, PCB_OP_EQ, 8, 0, 0, 0, 7) },
	{ "uid width 4", ONE, PRED(PCB_FIELD_UID, PCB_OP_EQ, 4, 0, 0, 0, 0) },
	{ "pid width 4", ONE, PRED(PCB_FIELD_PID, PCB_OP_EQ, 4, 0, 0, 0, 0) },
	{ "len width 1", ONE, PRED(PCB_FIELD_LEN, PCB_OP_EQ, 1, 0, 0, 0, 7) },
	{ "key offset 1", ONE, PRED(PCB_FIELD_KEY, PCB_OP_EQ, 0, 0, 1, 0, 7) },
	{ "len offset 4", ONE, PRED(PCB_FIELD_LEN, PCB_OP_EQ, 0, 0, 4, 0, 7) },
	{ "uid offset 2^31", ONE,
	  PRED(PCB_FIELD_UID, PCB_OP_EQ, 0, 0, 0x80000000, 0, 7) },
	{ "u32 one byte past the end", ONE, PAYLOAD_EQ(4, MAX_MSG - 3, 0, 7) },
	{ "u64 one byte past the end", ONE, PAYLOAD_EQ(8, MAX_MSG - 7, 0, 7) },
	{ "u8 at max_msg_size", ONE, PAYLOAD_EQ(1, MAX_MSG, 0, 7) },
	{ "u64 wrapping round to 4", ONE, PAYLOAD_EQ(8, 0xfffffffc, 0, 7) },
	{ "u16 at UINT32_MAX", ONE, PAYLOAD_EQ(2, 0xffffffff, 0, 7) },
	{ "uid value of 33 bits", ONE,
	  PRED(PCB_FIELD_UID, PCB_OP_EQ, 0, 0, 0, 0, 1ULL << 32) },
	{ "uid mask of 33 bits", ONE,
	  PRED(PCB_FIELD_UID, PCB_OP_EQ, 0, 0, 0, 0x1ffffffffULL, 0) },
	{ "pid mask all ones", ONE,
	  PRED(PCB_FIELD_PID, PCB_OP_EQ, 0, 0, 0, ~0ULL, 7) },
	{ "len value of 33 bits", ONE,
	  PRED(PCB_FIELD_LEN, PCB_OP_EQ, 0, 0, 0, 0, 1ULL << 32) },
	{ "len value -1 unsigned", ONE,
	  PRED(PCB_FIELD_LEN, PCB_OP_EQ, 0, 0, 0, 0, ~0ULL) },
	{ "u8 value 0x100", ONE, PAYLOAD_EQ(1, 0, 0, 0x100) },
	{ "u8 mask 0x1ff", ONE, PAYLOAD_EQ(1, 0, 0x1ff, 7) },
	{ "u16 mask 0x10000", ONE, PAYLOAD_EQ(2, 0, 0x10000, 7) },
	{ "u32 value 2^32", ONE, PAYLOAD_EQ(4, 0, 0, 1ULL << 32) },
	{ "signed u8 0x80, not sign-extended", ONE,
	  PRED(PCB_FIELD_PAYLOAD, PCB_OP_EQ, 1, SGN, 0, 0, 0x80) },
	{ "signed u16 0xffff, not sign-extended", ONE,
	  PRED(PCB_FIELD_PAYLOAD, PCB_OP_EQ, 2, SGN, 0, 0, 0xffff) },
	{ "signed u32 0x80000000, not sign-extended", ONE,
	  PRED(PCB_FIELD_PAYLOAD, PCB_OP_EQ, 4, SGN, 0, 0, 0x80000000) },
	{ "signed uid 0xffffffff, not sign-extended", ONE,
	  PRED(PCB_FIELD_UID, PCB_OP_EQ, 0, SGN, 0, 0, 0xffffffff) },
	{ "signed u8 of 9 bits", ONE,
	  PRED(PCB_FIELD_PAYLOAD, PCB_OP_EQ, 1, SGN, 0, 0, MINUS(0x81)) },
	{ "signed u8 mask 0x100", ONE,
	  PRED(PCB_FIELD_PAYLOAD, PCB_OP_EQ, 1, SGN, 0, 0x100, 0) },
	{ "big-endian key", ONE,
	  PRED(PCB_FIELD_KEY, PCB_OP_EQ, 0, PCB_PRED_BE, 0, 0, 7) },
	{ "big-endian uid", ONE,
	  PRED(PCB_FIELD_UID, PCB_OP_EQ, 0, PCB_PRED_BE, 0, 0, 7) },
	{ "big-endian pid", ONE,
	  PRED(PCB_FIELD_PID, PCB_OP_EQ, 0, PCB_PRED_BE, 0, 0, 7) },
	{ "big-endian len", ONE,
	  PRED(PCB_FIELD_LEN, PCB_OP_EQ, 0, PCB_PRED_BE, 0, 0, 7) },
	{ "OR on the only predicate", ONE,
	  PRED(PCB_FIELD_KEY, PCB_OP_EQ, 0, PCB_PRED_OR, 0, 0, 7) },
	{ "OR on the last of three", THREE,
	  PRED(PCB_FIELD_KEY, PCB_OP_EQ, 0, PCB_PRED_OR, 0, 0, 7) },
	{ "third predicate bad", THREE, PRED(PCB_FIELD_KEY, 0, 0, 0, 0, 0, 7) },
	{ "sixteenth predicate bad", SIXTEEN,
	  PRED(PCB_FIELD_KEY, PCB_OP_EQ, 4, 0, 0, 0, 7) },
};

/* At the edge of every rule: valid. */
static const struct filter_case good_filters[] = {
	{ "one predicate", ONE, KEY_EQ_7 },
	{ "sixteen predicates", SIXTEEN, KEY_EQ_7 },
	{ "OR, OR, then the last", THREE, KEY_EQ_7 },
	{ "key value and mask of 64 bits", ONE,
	  PRED(PCB_FIELD_KEY, PCB_OP_EQ, 0, 0, 0, ~0ULL, ~0ULL) },
	{ "signed key -1", ONE,
	  PRED(PCB_FIELD_KEY, PCB_OP_EQ, 0, SGN, 0, 0, MINUS(1)) },
	{ "uid all ones", ONE,
	  PRED(PCB_FIELD_UID, PCB_OP_EQ, 0, 0, 0, 0xffffffff, 0xffffffff) },
	{ "signed uid -1", ONE,
	  PRED(PCB_FIELD_UID, PCB_OP_EQ, 0, SGN, 0, 0, ~0ULL) },
	{ "signed u8 -128", ONE,
	  PRED(PCB_FIELD_PAYLOAD, PCB_OP_EQ, 1, SGN, 0, 0, MINUS(128)) },
	{ "signed u8 127", ONE,
	  PRED(PCB_FIELD_PAYLOAD, PCB_OP_EQ, 1, SGN, 0, 0, 127) },
	{ "signed u8 mask 0xff", ONE,
	  PRED(PCB_FIELD_PAYLOAD, PCB_OP_EQ, 1, SGN, 0, 0xff, 0) },
	{ "u8 0xff", ONE, PAYLOAD_EQ(1, 0, 0xff, 0xff) },
	{ "u64 at the end", ONE, PAYLOAD_EQ(8, MAX_MSG - 8, 0, 7) },
	{ "u8 at the end", ONE, PAYLOAD_EQ(1, MAX_MSG - 1, 0, 7) },
	{ "big-endian signed masked u32", ONE,
	  PRED(PCB_FIELD_PAYLOAD, PCB_OP_EQ, 4, PCB_PRED_BE | SGN, 0,
	       0xffffffff, MINUS(1)) },
	{ "len, any bit", ONE, PRED(PCB_FIELD_LEN, PCB_OP_ANY, 0, 0, 0, 0, 1) },
	{ "pid, all bits", ONE, PRED(PCB_FIELD_PID, PCB_OP_ALL, 0, 0, 0, 0, 1) },
};

#undef SGN
#undef PAYLOAD_EQ
#undef KEY_EQ_7
#undef PRED

/* Builds @c's filter into @f. */
static void build_filter(union pcbt_filter *f, const struct filter_case *c)
{
	__u32 i;

	pcbt_filter_init(f);
	if (c->shape == SIXTEEN)
		for (i = 1; i < PCB_FILTER_MAX_PREDS; i++)
			pcbt_pred(f, PCB_FIELD_KEY, PCB_OP_NE, i);
	if (c->shape == THREE) {
		pcbt_pred(f, PCB_FIELD_KEY, PCB_OP_NE, 1)->flags = PCB_PRED_OR;
		pcbt_pred(f, PCB_FIELD_LEN, PCB_OP_NE, 2)->flags = PCB_PRED_OR;
	}
	f->f.preds[f->f.nr_preds++] = c->p;
	if (c->shape == SEVENTEEN)
		for (i = 1; i < PCB_FILTER_MAX_PREDS + 1; i++)
			pcbt_pred(f, PCB_FIELD_KEY, PCB_OP_NE, i);

	switch (c->shape) {
	case NR_PREDS_ALL_ONES:
		f->f.nr_preds = ~0U;
		break;
	case NR_PREDS_2_31:
		f->f.nr_preds = 1U << 31;
		break;
	case FLAGS_1:
		f->f.flags = 1;
		break;
	case FLAGS_TOP:
		f->f.flags = 1U << 31;
		break;
	case RESERVED_1:
		f->f.reserved = 1;
		break;
	case RESERVED_TOP:
		f->f.reserved = 1ULL << 63;
		break;
	default:
		break;
	}
}

/* Each invalid filter: EINVAL, and no subscription is left behind. */
TEST_F(filter, subscribe_einval)
{
	struct pcb_sub_info si;
	union pcbt_filter f;
	const char *what;
	unsigned int i;

	for (i = 0; i < ARRAY_SIZE(bad_filters); i++) {
		build_filter(&f, &bad_filters[i]);
		what = bad_filters[i].what;
		EXPECT_EQ(-EINVAL, sub(self, &f)) TH_LOG("%s", what);
		EXPECT_EQ(-EINVAL, pcbt_subscribe_filter(self->ring.fd,
							 self->name, SCHEMA,
							 PCB_SUB_LOSSY, &f.f,
							 NULL))
			TH_LOG("%s, lossy", what);
		EXPECT_EQ(0LL, pcbt_nr_subs(self->pfd, self->name))
			TH_LOG("%s", what);
		EXPECT_EQ(-ENOENT, pcbt_sub_info(self->ring.fd, self->topic_id,
						 &si))
			TH_LOG("%s", what);
	}
	TH_LOG("%u invalid filters", i);

	/* Nothing half-made: subscribing now works and delivers. */
	ASSERT_EQ(0, sub(self, NULL));
	EXPECT_TRUE(got_key(_metadata, self, 1));
}

/* Each invalid filter: EINVAL, and the filter in place stays. */
TEST_F(filter, set_filter_einval)
{
	struct pcb_sub_info si;
	union pcbt_filter f, keep;
	const char *what;
	unsigned int i;

	pcbt_filter_init(&keep);
	pcbt_pred(&keep, PCB_FIELD_KEY, PCB_OP_EQ, 7);
	pcbt_pred(&keep, PCB_FIELD_LEN, PCB_OP_EQ, 8);
	ASSERT_EQ(0, sub(self, &keep));
	for (i = 0; i < ARRAY_SIZE(bad_filters); i++) {
		build_filter(&f, &bad_filters[i]);
		what = bad_filters[i].what;
		EXPECT_EQ(-EINVAL, set(self, &f)) TH_LOG("%s", what);
		ASSERT_EQ(0, pcbt_sub_info(self->ring.fd, self->topic_id, &si));
		EXPECT_EQ(2U, si.nr_preds) TH_LOG("%s", what);
	}
	EXPECT_TRUE(got_key(_metadata, self, 7));
	EXPECT_FALSE(got_key(_metadata, self, 8));
	expect_counts(_metadata, self->ring.fd, self->topic_id, 1, 0, 1);
}

TEST_F(filter, valid_edges)
{
	struct pcb_sub_info si;
	union pcbt_filter f;
	const char *what;
	unsigned int i;

	for (i = 0; i < ARRAY_SIZE(good_filters); i++) {
		build_filter(&f, &good_filters[i]);
		what = good_filters[i].what;
		EXPECT_EQ(0, sub(self, &f)) TH_LOG("%s", what);
		ASSERT_EQ(0, pcbt_sub_info(self->ring.fd, self->topic_id, &si));
		EXPECT_EQ(f.f.nr_preds, si.nr_preds) TH_LOG("%s", what);
		EXPECT_EQ(0, pcbt_unsubscribe(self->ring.fd, self->topic_id));
		EXPECT_EQ(0, sub(self, NULL));
		EXPECT_EQ(0, set(self, &f)) TH_LOG("%s", what);
		ASSERT_EQ(0, pcbt_sub_info(self->ring.fd, self->topic_id, &si));
		EXPECT_EQ(f.f.nr_preds, si.nr_preds) TH_LOG("%s", what);
		EXPECT_EQ(0, pcbt_unsubscribe(self->ring.fd, self->topic_id));
	}
}

/*
 * Far too many predicates: EINVAL before anything is read, even when
 * every one of them is readable and valid.
 */
TEST_F(filter, too_many_predicates)
{
	static const __u32 counts[] = {
		PCB_FILTER_MAX_PREDS + 1, 64, 1000, 4096,
	};
	size_t size = sizeof(struct pcb_filter) +
		      4096 * sizeof(struct pcb_filter_pred);
	struct pcb_filter *f = calloc(1, size);
	unsigned int i;

	ASSERT_NE(NULL, f);
	for (i = 0; i < 4096; i++) {
		f->preds[i].field = PCB_FIELD_KEY;
		f->preds[i].op = PCB_OP_NE;
		f->preds[i].value = i;
	}
	for (i = 0; i < ARRAY_SIZE(counts); i++) {
		f->nr_preds = counts[i];
		EXPECT_EQ(-EINVAL, pcbt_subscribe_filter(self->ring.fd,
							 self->name, SCHEMA, 0,
							 f, NULL))
			TH_LOG("%u predicates", counts[i]);
	}
	EXPECT_EQ(0LL, pcbt_nr_subs(self->pfd, self->name));
	f->nr_preds = 1;
	ASSERT_EQ(0, pcbt_subscribe_filter(self->ring.fd, self->name, SCHEMA, 0,
					   f, NULL));
	for (i = 0; i < ARRAY_SIZE(counts); i++) {
		f->nr_preds = counts[i];
		EXPECT_EQ(-EINVAL, pcbt_set_filter(self->ring.fd,
						   self->topic_id, f))
			TH_LOG("%u predicates", counts[i]);
	}
	free(f);
}

/* Filters the kernel cannot read: EFAULT, and nothing changes. */
TEST_F(filter, filter_efault)
{
	char *guarded1 = pcbt_guarded_page();
	char *guarded2 = pcbt_guarded_page();
	struct pcb_filter *end1, *end2;
	struct pcb_sub_info si;
	union pcbt_filter keep;
	const void *bad[4];
	unsigned int i;

	ASSERT_NE(NULL, guarded1);
	ASSERT_NE(NULL, guarded2);
	/* One predicate announced, its bytes in the page after. */
	end1 = (void *)(guarded1 + 4096 - sizeof(*end1));
	memset(end1, 0, sizeof(*end1));
	end1->nr_preds = 1;
	/* Two predicates, only the first one readable. */
	end2 = (void *)(guarded2 + 4096 - sizeof(*end2) -
			sizeof(struct pcb_filter_pred));
	memset(end2, 0, sizeof(*end2) + sizeof(struct pcb_filter_pred));
	end2->nr_preds = 2;
	end2->preds[0].field = PCB_FIELD_KEY;
	end2->preds[0].op = PCB_OP_EQ;
	bad[0] = (void *)(uintptr_t)8;
	bad[1] = pcbt_no_access_page();
	bad[2] = end1;
	bad[3] = end2;
	ASSERT_NE(NULL, bad[1]);

	for (i = 0; i < ARRAY_SIZE(bad); i++) {
		EXPECT_EQ(-EFAULT, pcbt_subscribe_filter(self->ring.fd,
							 self->name, SCHEMA, 0,
							 bad[i], NULL))
			TH_LOG("pointer %u", i);
		EXPECT_EQ(-EFAULT, pcbt_subscribe_filter(self->ring.fd,
							 self->name, SCHEMA,
							 PCB_SUB_LOSSY, bad[i],
							 NULL))
			TH_LOG("pointer %u", i);
		EXPECT_EQ(0LL, pcbt_nr_subs(self->pfd, self->name));
	}

	pcbt_filter_init(&keep);
	pcbt_pred(&keep, PCB_FIELD_KEY, PCB_OP_EQ, 7);
	ASSERT_EQ(0, sub(self, &keep));
	for (i = 0; i < ARRAY_SIZE(bad); i++) {
		EXPECT_EQ(-EFAULT, pcbt_set_filter(self->ring.fd,
						   self->topic_id, bad[i]))
			TH_LOG("pointer %u", i);
		ASSERT_EQ(0, pcbt_sub_info(self->ring.fd, self->topic_id, &si));
		EXPECT_EQ(1U, si.nr_preds);
	}
	EXPECT_TRUE(got_key(_metadata, self, 7));
	EXPECT_FALSE(got_key(_metadata, self, 6));
}

/* The kernel keeps its own copy: changing ours afterwards changes nothing. */
TEST_F(filter, filter_is_copied)
{
	union pcbt_filter f;

	pcbt_filter_init(&f);
	pcbt_pred(&f, PCB_FIELD_KEY, PCB_OP_EQ, 7);
	ASSERT_EQ(0, sub(self, &f));
	f.f.preds[0].value = 8;
	EXPECT_TRUE(got_key(_metadata, self, 7));
	EXPECT_FALSE(got_key(_metadata, self, 8));

	ASSERT_EQ(0, set(self, &f));
	f.f.preds[0].value = 9;
	EXPECT_TRUE(got_key(_metadata, self, 8));
	EXPECT_FALSE(got_key(_metadata, self, 9));
}

/* SET_FILTER's own errors. */
TEST_F(filter, set_filter_errors)
{
	struct pcb_sub_filter sf = { .topic_id = self->topic_id };
	char other[PCB_NAME_MAX];
	struct pcb_ring_setup rs;
	union pcbt_filter f;
	__u32 other_id;
	int bare;

	pcbt_filter_init(&f);
	pcbt_pred(&f, PCB_FIELD_KEY, PCB_OP_EQ, 1);

	/* Not subscribed (yet, to that topic, any more). */
	EXPECT_EQ(-ENOENT, set(self, &f));
	EXPECT_EQ(-ENOENT, set(self, NULL));
	pcbt_name(other, "other");
	ASSERT_EQ(0, pcbt_create(self->pfd, other, SCHEMA, MAX_MSG, 0700,
				 &other_id));
	ASSERT_EQ(0, sub(self, NULL));
	EXPECT_EQ(-ENOENT, pcbt_set_filter(self->ring.fd, other_id, &f.f));
	EXPECT_EQ(-ENOENT, pcbt_set_filter(self->ring.fd, 0, &f.f));
	EXPECT_EQ(-ENOENT, pcbt_set_filter(self->ring.fd, ~0U, &f.f));
	/* The publisher endpoint has no ring at all. */
	EXPECT_EQ(-EBADFD, pcbt_set_filter(self->pfd, self->topic_id, &f.f));
	bare = pcbt_open();
	ASSERT_LE(0, bare);
	EXPECT_EQ(-EBADFD, pcbt_set_filter(bare, self->topic_id, NULL));
	/* Another endpoint's ring is not subscribed to anything. */
	ASSERT_EQ(0, pcbt_ring_setup(bare, SMALL_RING, &rs));
	EXPECT_EQ(-ENOENT, pcbt_set_filter(bare, self->topic_id, &f.f));
	close(bare);

	/* Flags and reserved words. */
	sf.filter = (uintptr_t)&f.f;
	sf.flags = 1;
	EXPECT_EQ(-EINVAL, pcbt_ioctl(self->ring.fd, PCB_IOC_SET_FILTER, &sf));
	sf.flags = 0x80000000;
	EXPECT_EQ(-EINVAL, pcbt_ioctl(self->ring.fd, PCB_IOC_SET_FILTER, &sf));
	sf.flags = 0;
	sf.reserved[0] = 1;
	EXPECT_EQ(-EINVAL, pcbt_ioctl(self->ring.fd, PCB_IOC_SET_FILTER, &sf));
	sf.reserved[0] = 0;
	sf.reserved[1] = 1ULL << 63;
	EXPECT_EQ(-EINVAL, pcbt_ioctl(self->ring.fd, PCB_IOC_SET_FILTER, &sf));
	sf.reserved[1] = 0;

	/* The argument itself unreadable. */
	EXPECT_EQ(-EFAULT, pcbt_ioctl(self->ring.fd, PCB_IOC_SET_FILTER,
				      (void *)(uintptr_t)8));
	EXPECT_EQ(-EFAULT, pcbt_ioctl(self->ring.fd, PCB_IOC_SET_FILTER,
				      pcbt_no_access_page()));

	/* None of that set a filter. */
	EXPECT_TRUE(got_key(_metadata, self, 2));
	ASSERT_EQ(0, pcbt_ioctl(self->ring.fd, PCB_IOC_SET_FILTER, &sf));
	EXPECT_FALSE(got_key(_metadata, self, 2));

	/* After UNSUBSCRIBE the subscription is gone. */
	ASSERT_EQ(0, pcbt_unsubscribe(self->ring.fd, self->topic_id));
	EXPECT_EQ(-ENOENT, set(self, &f));
}

/* SUB_INFO's own errors, and what it says. */
TEST_F(filter, sub_info)
{
	struct pcb_sub_info si, *ro;
	union pcbt_filter f;
	char lossy[PCB_NAME_MAX];
	__u32 lossy_id;
	int bare, i;

	EXPECT_EQ(-ENOENT, pcbt_sub_info(self->ring.fd, self->topic_id, &si));
	EXPECT_EQ(-EBADFD, pcbt_sub_info(self->pfd, self->topic_id, &si));
	bare = pcbt_open();
	ASSERT_LE(0, bare);
	EXPECT_EQ(-EBADFD, pcbt_sub_info(bare, self->topic_id, &si));
	close(bare);

	pcbt_filter_init(&f);
	pcbt_pred(&f, PCB_FIELD_KEY, PCB_OP_LT, 3);
	pcbt_pred(&f, PCB_FIELD_LEN, PCB_OP_EQ, 8);
	pcbt_pred(&f, PCB_FIELD_UID, PCB_OP_EQ, geteuid());
	ASSERT_EQ(0, sub(self, &f));
	pcbt_name(lossy, "lossy");
	ASSERT_EQ(0, pcbt_create(self->pfd, lossy, SCHEMA, MAX_MSG, 0700,
				 &lossy_id));
	ASSERT_EQ(0, pcbt_subscribe_filter(self->ring.fd, lossy, SCHEMA,
					   PCB_SUB_LOSSY, NULL, NULL));

	ASSERT_EQ(0, pcbt_sub_info(self->ring.fd, self->topic_id, &si));
	EXPECT_EQ(self->topic_id, si.topic_id);
	EXPECT_EQ(0U, si.flags);
	EXPECT_EQ(3U, si.nr_preds);
	EXPECT_EQ(0ULL, si.delivered);
	EXPECT_EQ(0ULL, si.dropped);
	EXPECT_EQ(0ULL, si.rejected);
	EXPECT_EQ(0U, si.reserved0);
	for (i = 0; i < 4; i++)
		EXPECT_EQ(0ULL, si.reserved[i]);
	ASSERT_EQ(0, pcbt_sub_info(self->ring.fd, lossy_id, &si));
	EXPECT_EQ(lossy_id, si.topic_id);
	EXPECT_EQ(PCB_SUB_LOSSY, si.flags);
	EXPECT_EQ(0U, si.nr_preds);
	EXPECT_EQ(-ENOENT, pcbt_sub_info(self->ring.fd, 0, &si));
	EXPECT_EQ(-ENOENT, pcbt_sub_info(self->ring.fd, ~0U, &si));

	/* Reserved words. */
	memset(&si, 0, sizeof(si));
	si.topic_id = self->topic_id;
	si.reserved0 = 1;
	EXPECT_EQ(-EINVAL, pcbt_ioctl(self->ring.fd, PCB_IOC_SUB_INFO, &si));
	for (i = 0; i < 4; i++) {
		memset(&si, 0, sizeof(si));
		si.topic_id = self->topic_id;
		si.reserved[i] = 1ULL << (i * 16);
		EXPECT_EQ(-EINVAL, pcbt_ioctl(self->ring.fd, PCB_IOC_SUB_INFO,
					      &si))
			TH_LOG("reserved[%d]", i);
	}

	/* Unreadable, and readable but not writable. */
	EXPECT_EQ(-EFAULT, pcbt_ioctl(self->ring.fd, PCB_IOC_SUB_INFO,
				      (void *)(uintptr_t)8));
	EXPECT_EQ(-EFAULT, pcbt_ioctl(self->ring.fd, PCB_IOC_SUB_INFO,
				      pcbt_no_access_page()));
	ro = mmap(NULL, 4096, PROT_READ | PROT_WRITE,
		  MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, ro);
	ro->topic_id = self->topic_id;
	ASSERT_EQ(0, mprotect(ro, 4096, PROT_READ));
	EXPECT_EQ(-EFAULT, pcbt_ioctl(self->ring.fd, PCB_IOC_SUB_INFO, ro));
	munmap(ro, 4096);

	/* Counters follow; SET_FILTER carries them on. */
	EXPECT_TRUE(got_key(_metadata, self, 1));
	EXPECT_FALSE(got_key(_metadata, self, 5));
	EXPECT_FALSE(got_key(_metadata, self, 6));
	expect_counts(_metadata, self->ring.fd, self->topic_id, 1, 0, 2);
	ASSERT_EQ(0, set(self, NULL));
	ASSERT_EQ(0, pcbt_sub_info(self->ring.fd, self->topic_id, &si));
	EXPECT_EQ(0U, si.nr_preds);
	EXPECT_EQ(1ULL, si.delivered);
	EXPECT_EQ(2ULL, si.rejected);
	EXPECT_TRUE(got_key(_metadata, self, 5));
	expect_counts(_metadata, self->ring.fd, self->topic_id, 2, 0, 2);

	/* A new subscription starts from 0. */
	ASSERT_EQ(0, pcbt_unsubscribe(self->ring.fd, self->topic_id));
	EXPECT_EQ(-ENOENT, pcbt_sub_info(self->ring.fd, self->topic_id, &si));
	ASSERT_EQ(0, sub(self, &f));
	expect_counts(_metadata, self->ring.fd, self->topic_id, 0, 0, 0);
}

/* UNSUBSCRIBE takes no filter. */
TEST_F(filter, unsubscribe_with_filter_einval)
{
	struct pcb_subscribe s = { .topic_id = self->topic_id };
	union pcbt_filter f;

	pcbt_filter_init(&f);
	ASSERT_EQ(0, sub(self, NULL));
	s.filter = (uintptr_t)&f.f;
	EXPECT_EQ(-EINVAL, pcbt_ioctl(self->ring.fd, PCB_IOC_UNSUBSCRIBE, &s));
	EXPECT_EQ(1LL, pcbt_nr_subs(self->pfd, self->name));
	s.filter = 0;
	EXPECT_EQ(0, pcbt_ioctl(self->ring.fd, PCB_IOC_UNSUBSCRIBE, &s));
}

/* Rejected messages take no ring space: the ring holds the others only. */
TEST_F(filter, rejected_take_no_space)
{
	const __u64 rec = PCB_REC_SIZE(sizeof(struct pcb_record) + 8);
	const struct pcb_record *r;
	struct pcb_filter_pred *p;
	union pcbt_filter f;
	struct pcb_publish pp;
	__u64 key, seq = 0;

	pcbt_filter_init(&f);
	p = pcbt_pred(&f, PCB_FIELD_KEY, PCB_OP_EQ, 0);
	p->mask = 1;				/* even keys */
	ASSERT_EQ(0, sub(self, &f));
	for (key = 0; key < 100; key++) {
		struct msg m = msg_make(key, 8);
		__u64 prod = pcbt_prod_pos(&self->ring);

		ASSERT_EQ(0, send_msg(self, &m, &pp));
		EXPECT_EQ(++seq, pp.seq);
		EXPECT_EQ(prod + (key & 1 ? 0 : rec),
			  pcbt_prod_pos(&self->ring)) TH_LOG("key %llu",
						(unsigned long long)key);
	}
	EXPECT_EQ(50 * rec, pcbt_prod_pos(&self->ring));
	for (key = 0; key < 100; key += 2) {
		r = pcbt_ring_peek(&self->ring);
		ASSERT_NE(NULL, r);
		EXPECT_EQ(key, r->key);
		EXPECT_EQ(key + 1, r->seq);	/* the topic's numbering */
		pcbt_ring_pop(&self->ring);
	}
	EXPECT_TRUE(ring_empty(&self->ring));
	EXPECT_EQ(0ULL, self->ring.hdr->dropped);
	expect_counts(_metadata, self->ring.fd, self->topic_id, 50, 0, 50);
}

/* Each subscription its own filter, the topic one numbering. */
TEST_F(filter, subscribers_filter_independently)
{
	struct pcbt_ring rings[3];
	const struct pcb_record *rec;
	union pcbt_filter f;
	__u64 i, key;
	int r;

	for (r = 0; r < 3; r++)
		ASSERT_LE(0, pcbt_ring_open(RING, &rings[r]));
	for (r = 0; r < 2; r++) {
		pcbt_filter_init(&f);
		pcbt_pred(&f, PCB_FIELD_KEY, PCB_OP_EQ, r + 1);
		ASSERT_EQ(0, pcbt_subscribe_filter(rings[r].fd, self->name,
						   SCHEMA, r ? PCB_SUB_LOSSY : 0,
						   &f.f, NULL));
	}
	ASSERT_EQ(0, pcbt_subscribe_filter(rings[2].fd, self->name, SCHEMA, 0,
					   NULL, NULL));
	for (i = 0; i < 9; i++) {
		struct msg m = msg_make(i % 3 + 1, 4);

		ASSERT_EQ(0, send_msg(self, &m, NULL));
	}
	for (r = 0; r < 3; r++) {
		for (i = 0; i < 9; i++) {
			key = i % 3 + 1;
			if (r < 2 && key != (__u64)r + 1)
				continue;
			rec = pcbt_ring_peek(&rings[r]);
			ASSERT_NE(NULL, rec) TH_LOG("ring %d message %llu", r,
						    (unsigned long long)i);
			EXPECT_EQ(key, rec->key);
			EXPECT_EQ(i + 1, rec->seq);
			pcbt_ring_pop(&rings[r]);
		}
		EXPECT_TRUE(ring_empty(&rings[r])) TH_LOG("ring %d", r);
		expect_counts(_metadata, rings[r].fd, self->topic_id,
			      r < 2 ? 3 : 9, 0, r < 2 ? 6 : 0);
		pcbt_ring_close(&rings[r]);
	}
}

/* A thread asleep in PCB_IOC_WAIT or poll(), and what woke it. */
struct sleeper {
	int fd;
	bool use_poll;
	__u64 timeout_ns;
	pthread_t thread;
	int done;		/* atomic */
	int ret;		/* WAIT: 0 or -errno; poll: its return */
	short revents;
	long switches;		/* voluntary context switches meanwhile */
	__u64 woke_at;
};

static long voluntary_switches(void)
{
	struct rusage ru;

	getrusage(RUSAGE_THREAD, &ru);
	return ru.ru_nvcsw;
}

static void *sleeper_run(void *arg)
{
	struct sleeper *s = arg;
	long before = voluntary_switches();

	if (s->use_poll) {
		struct pollfd pfd = { .fd = s->fd, .events = POLLIN };

		s->ret = poll(&pfd, 1, (int)(s->timeout_ns / PCBT_MS));
		s->revents = pfd.revents;
	} else {
		struct pcb_wait w = { .timeout_ns = s->timeout_ns };

		s->ret = pcbt_ioctl(s->fd, PCB_IOC_WAIT, &w);
	}
	/*
	 * Each time the sleeper is woken and goes back to sleep costs one
	 * voluntary switch: that is how a needless wake-up shows.
	 */
	s->switches = voluntary_switches() - before;
	s->woke_at = pcbt_now_ns(CLOCK_MONOTONIC);
	__atomic_store_n(&s->done, 1, __ATOMIC_RELEASE);
	return NULL;
}

static bool sleeper_done(struct sleeper *s)
{
	return __atomic_load_n(&s->done, __ATOMIC_ACQUIRE);
}

/* Starts a sleeper and returns once it has announced NEED_WAKEUP. */
static void sleeper_start(struct __test_metadata *_metadata,
			  struct sleeper *s, struct pcbt_ring *r,
			  bool use_poll, __u64 timeout_ns)
{
	unsigned int ms;

	memset(s, 0, sizeof(*s));
	s->fd = r->fd;
	s->use_poll = use_poll;
	s->timeout_ns = timeout_ns;
	pcbt_store_release(&r->cons->flags, 0);
	ASSERT_EQ(0, pthread_create(&s->thread, NULL, sleeper_run, s));
	for (ms = 0; ms < 10000; ms++) {
		if (pcbt_load_acquire(&r->cons->flags) & PCB_CONS_NEED_WAKEUP)
			break;
		pcbt_sleep_ms(1);
	}
	ASSERT_GT(10000U, ms) TH_LOG("the sleeper never set NEED_WAKEUP");
	/* Let it get from setting the flag to sleeping. */
	pcbt_sleep_ms(50);
}

#define REJECTS		100
#define MAX_SWITCHES	20

/*
 * Rejected messages must not wake a consumer asleep with NEED_WAKEUP set;
 * the first accepted one must.
 */
static void sleep_through_rejects(struct __test_metadata *_metadata,
				  FIXTURE_DATA(filter) *self, bool use_poll)
{
	union pcbt_filter f;
	struct sleeper s;
	struct msg m;
	__u64 sent_at;
	int i;

	pcbt_filter_init(&f);
	pcbt_pred(&f, PCB_FIELD_KEY, PCB_OP_EQ, 1);
	ASSERT_EQ(0, sub(self, &f));

	/* Only rejected messages: the sleeper times out, undisturbed. */
	sleeper_start(_metadata, &s, &self->ring, use_poll, 2 * PCBT_SEC);
	for (i = 0; i < REJECTS && !sleeper_done(&s); i++) {
		ASSERT_FALSE(got_key(_metadata, self, 2));
		pcbt_sleep_ms(2);
	}
	pthread_join(s.thread, NULL);
	TH_LOG("%d rejected messages while asleep, %ld voluntary switches",
	       i, s.switches);
	EXPECT_LT(REJECTS / 4, i);
	EXPECT_EQ(use_poll ? 0 : -ETIMEDOUT, s.ret);
	EXPECT_GT(MAX_SWITCHES, s.switches);
	EXPECT_EQ(0ULL, pcbt_prod_pos(&self->ring));

	/* Rejected messages, then an accepted one, which wakes it. */
	sleeper_start(_metadata, &s, &self->ring, use_poll, 60 * PCBT_SEC);
	for (i = 0; i < REJECTS; i++) {
		ASSERT_FALSE(got_key(_metadata, self, 3));
		pcbt_sleep_ms(2);
	}
	EXPECT_FALSE(sleeper_done(&s));
	m = msg_make(1, 8);
	sent_at = pcbt_now_ns(CLOCK_MONOTONIC);
	ASSERT_EQ(0, send_msg(self, &m, NULL));
	for (i = 0; i < 20000 && !sleeper_done(&s); i++)
		pcbt_sleep_ms(1);
	ASSERT_TRUE(sleeper_done(&s)) TH_LOG("the accepted message woke nobody");
	pthread_join(s.thread, NULL);
	TH_LOG("woken %llu us after the accepted message, %ld voluntary switches",
	       (unsigned long long)(s.woke_at - sent_at) / 1000, s.switches);
	if (use_poll) {
		EXPECT_EQ(1, s.ret);
		EXPECT_EQ(POLLIN, s.revents & (POLLIN | POLLERR));
	} else {
		EXPECT_EQ(0, s.ret);
	}
	EXPECT_LE(sent_at, s.woke_at);
	EXPECT_GT(MAX_SWITCHES, s.switches);
	EXPECT_EQ(1U, pcbt_ring_drain(&self->ring));
}

TEST_F_TIMEOUT(filter, rejected_never_wake_wait, 120)
{
	sleep_through_rejects(_metadata, self, false);
}

TEST_F_TIMEOUT(filter, rejected_never_wake_poll, 120)
{
	sleep_through_rejects(_metadata, self, true);
}

/* A topic of BIG messages, its id and a publish handle to it. */
struct big_topic {
	char name[PCB_NAME_MAX];
	__u32 id;
	__u32 handle;
};

/*
 * A new big topic whose subscriber @r (SMALL_RING, reliable, rejecting
 * key 99) is full of key-0 records: how many.
 */
static int full_rejecting_ring(struct __test_metadata *_metadata,
			       FIXTURE_DATA(filter) *self, struct pcbt_ring *r,
			       struct big_topic *t)
{
	static const char buf[BIG];
	union pcbt_filter f;
	int n = 0, ret;

	pcbt_name(t->name, "full");
	ASSERT_EQ(0, pcbt_create(self->pfd, t->name, SCHEMA, BIG, 0700,
				 &t->id));
	ASSERT_EQ(0, pcbt_open_topic(self->pfd, t->name, SCHEMA, &t->handle));
	ASSERT_LE(0, pcbt_ring_open(SMALL_RING, r));
	pcbt_filter_init(&f);
	pcbt_pred(&f, PCB_FIELD_KEY, PCB_OP_NE, 99);
	ASSERT_EQ(0, pcbt_subscribe_filter(r->fd, t->name, SCHEMA, 0, &f.f,
					   NULL));
	while (!(ret = pcbt_publish_deps(self->pfd, t->handle, buf, BIG, 0,
					 NULL, 0, PCB_PUB_NONBLOCK, NULL)))
		n++;
	ASSERT_EQ(-EAGAIN, ret);
	ASSERT_EQ((int)(SMALL_RING / BIG_REC), n);
	return n;
}

static void set_entry(struct pcb_batch_entry *e, __u32 handle, __u64 key,
		      const void *buf, __u32 len)
{
	memset(e, 0, sizeof(*e));
	e->handle = handle;
	e->key = key;
	e->payload = (uintptr_t)buf;
	e->len = len;
	e->result = 0x5eadbeef;
}

static int batch(int fd, struct pcb_batch_entry *e, __u32 count, __u32 flags,
		 __u64 timeout_ns, __u32 *published)
{
	struct pcb_publish_batch b = {
		.entries = (uintptr_t)e,
		.count = count,
		.flags = flags,
		.timeout_ns = timeout_ns,
	};
	int ret = pcbt_ioctl(fd, PCB_IOC_PUBLISH_BATCH, &b);

	if (published)
		*published = b.published;
	return ret;
}

static int pub_key(FIXTURE_DATA(filter) *self, __u32 handle, __u64 key,
		   __u32 flags, __u64 timeout_ns)
{
	static const char buf[BIG];
	struct pcb_publish p = {
		.handle = handle,
		.flags = flags,
		.payload = (uintptr_t)buf,
		.len = BIG,
		.key = key,
		.timeout_ns = timeout_ns,
	};

	return pcbt_ioctl(self->pfd, PCB_IOC_PUBLISH, &p);
}

/*
 * A reliable subscriber whose ring is full makes publishers wait, or fail
 * with EAGAIN, only for messages its filter accepts.
 */
TEST_F(filter, rejected_never_make_publisher_wait)
{
	static const char buf[BIG];
	struct pcb_batch_entry e[3];
	struct big_topic t;
	struct pcbt_ring r, all;
	const struct pcb_record *rec;
	__u32 h, published;
	__u64 t0;
	int n, i, rejected = 0;

	n = full_rejecting_ring(_metadata, self, &r, &t);
	h = t.handle;
	/* A second subscriber, with room and no filter, gets what follows. */
	ASSERT_LE(0, pcbt_ring_open(RING, &all));
	ASSERT_EQ(0, pcbt_subscribe(all.fd, t.name, SCHEMA, 0, NULL));

	/* One at a time, without and with waiting. */
	EXPECT_EQ(0, pub_key(self, h, 99, PCB_PUB_NONBLOCK, 0));
	t0 = pcbt_now_ns(CLOCK_MONOTONIC);
	EXPECT_EQ(0, pub_key(self, h, 99, 0, 20 * PCBT_SEC));
	EXPECT_GT(10 * PCBT_SEC, pcbt_now_ns(CLOCK_MONOTONIC) - t0);
	rejected += 2;
	EXPECT_EQ(0U, pcbt_ring_flags(&r) & PCB_RING_PUB_WAITING);
	/* The ring is full all the same. */
	EXPECT_EQ(-EAGAIN, pub_key(self, h, 0, PCB_PUB_NONBLOCK, 0));

	/* Batches: an entry rejected by the full ring passes. */
	for (i = 0; i < 3; i++)
		set_entry(&e[i], h, i == 1 ? 0 : 99, buf, BIG);
	EXPECT_EQ(0, batch(self->pfd, e, 3, PCB_PUB_NONBLOCK, 0, &published));
	EXPECT_EQ(2U, published);
	EXPECT_EQ(0, e[0].result);
	EXPECT_EQ(-EAGAIN, e[1].result);
	EXPECT_EQ(0, e[2].result);
	rejected += 2;
	for (i = 0; i < 3; i++)
		set_entry(&e[i], h, 99, buf, BIG);
	EXPECT_EQ(0, batch(self->pfd, e, 3, PCB_PUB_NONBLOCK | PCB_PUB_ATOMIC,
			   0, &published));
	EXPECT_EQ(3U, published);
	rejected += 3;
	t0 = pcbt_now_ns(CLOCK_MONOTONIC);
	EXPECT_EQ(0, batch(self->pfd, e, 3, PCB_PUB_ATOMIC, 20 * PCBT_SEC,
			   &published));
	EXPECT_GT(10 * PCBT_SEC, pcbt_now_ns(CLOCK_MONOTONIC) - t0);
	EXPECT_EQ(3U, published);
	rejected += 3;
	/* One accepted entry makes the atomic batch wait: nothing goes. */
	e[2].key = 0;
	EXPECT_EQ(-EAGAIN, batch(self->pfd, e, 3,
				 PCB_PUB_NONBLOCK | PCB_PUB_ATOMIC, 0, NULL));
	EXPECT_EQ(0U, pcbt_ring_flags(&r) & PCB_RING_PUB_WAITING);

	expect_counts(_metadata, r.fd, t.id, n, 0, rejected);
	EXPECT_EQ((long long)n + rejected, pcbt_published(self->pfd, t.name));
	for (i = 0; i < n; i++) {
		rec = pcbt_ring_peek(&r);
		ASSERT_NE(NULL, rec);
		EXPECT_EQ(0ULL, rec->key);
		pcbt_ring_pop(&r);
	}
	EXPECT_TRUE(ring_empty(&r));
	/* It got what was published since it subscribed, and only that. */
	EXPECT_EQ((unsigned int)rejected, pcbt_ring_drain(&all));
	pcbt_ring_close(&all);
	pcbt_ring_close(&r);
}

/*
 * An atomic batch must fit in each reliable ring, but only with the
 * records that ring's filter accepts.
 */
TEST_F(filter, atomic_batch_sized_by_filter)
{
	static const char buf[BIG];
	const int fit = SMALL_RING / BIG_REC;
	struct pcb_batch_entry e[2 * (SMALL_RING / BIG_REC)];
	struct big_topic t;
	union pcbt_filter f;
	struct pcbt_ring r;
	__u32 published;
	int i;

	pcbt_name(t.name, "sized");
	ASSERT_EQ(0, pcbt_create(self->pfd, t.name, SCHEMA, BIG, 0700, &t.id));
	ASSERT_EQ(0, pcbt_open_topic(self->pfd, t.name, SCHEMA, &t.handle));
	ASSERT_LE(0, pcbt_ring_open(SMALL_RING, &r));
	pcbt_filter_init(&f);
	pcbt_pred(&f, PCB_FIELD_KEY, PCB_OP_NE, 99);
	ASSERT_EQ(0, pcbt_subscribe_filter(r.fd, t.name, SCHEMA, 0, &f.f, NULL));

	/* One accepted record more than the ring holds: E2BIG. */
	for (i = 0; i <= fit; i++)
		set_entry(&e[i], t.handle, i, buf, BIG);
	EXPECT_EQ(-E2BIG, batch(self->pfd, e, fit + 1, PCB_PUB_ATOMIC, 0,
				NULL));
	EXPECT_EQ(0LL, pcbt_published(self->pfd, t.name));

	/* Twice as many entries, half of them rejected: they go. */
	for (i = 0; i < 2 * fit; i++)
		set_entry(&e[i], t.handle, i % 2 ? 99 : i, buf, BIG);
	EXPECT_EQ(0, batch(self->pfd, e, 2 * fit, PCB_PUB_ATOMIC, 0,
			   &published));
	EXPECT_EQ((__u32)(2 * fit), published);
	expect_counts(_metadata, r.fd, t.id, fit, 0, fit);
	EXPECT_EQ((unsigned int)fit, pcbt_ring_drain(&r));
	pcbt_ring_close(&r);
}

static struct pcb_uring_publish uring_cmd(__u32 handle, __u64 key,
					  const void *buf, __u32 len,
					  __u32 flags)
{
	return (struct pcb_uring_publish){
		.handle = handle,
		.flags = flags,
		.payload = (uintptr_t)buf,
		.len = len,
		.key = key,
	};
}

/* The same through io_uring. */
TEST_F(filter, rejected_never_make_uring_publisher_wait)
{
	static const char buf[BIG];
	struct pcb_uring_publish up;
	struct big_topic t;
	struct io_uring u;
	struct pcbt_ring r;
	__u64 t0;
	int n;

	PCBT_URING_INIT(&u, 8);
	n = full_rejecting_ring(_metadata, self, &r, &t);
	up = uring_cmd(t.handle, 99, buf, BIG, PCB_PUB_NONBLOCK);
	EXPECT_EQ(0, pcbt_uring_publish(&u, self->pfd, &up, NULL));
	up = uring_cmd(t.handle, 99, buf, BIG, 0);
	up.timeout_ns = 20 * PCBT_SEC;
	t0 = pcbt_now_ns(CLOCK_MONOTONIC);
	EXPECT_EQ(0, pcbt_uring_publish(&u, self->pfd, &up, NULL));
	EXPECT_GT(10 * PCBT_SEC, pcbt_now_ns(CLOCK_MONOTONIC) - t0);
	up = uring_cmd(t.handle, 0, buf, BIG, PCB_PUB_NONBLOCK);
	EXPECT_EQ(-EAGAIN, pcbt_uring_publish(&u, self->pfd, &up, NULL));
	EXPECT_EQ(0U, pcbt_ring_flags(&r) & PCB_RING_PUB_WAITING);
	expect_counts(_metadata, r.fd, t.id, n, 0, 2);
	EXPECT_EQ((unsigned int)n, pcbt_ring_drain(&r));
	io_uring_queue_exit(&u);
	pcbt_ring_close(&r);
}

/* A lossy subscriber: delivered, dropped and rejected, each exactly. */
TEST_F(filter, counters_lossy_full_ring)
{
	struct big_topic t;
	union pcbt_filter f;
	struct pcbt_ring r;
	int n, i;

	pcbt_name(t.name, "lossy");
	ASSERT_EQ(0, pcbt_create(self->pfd, t.name, SCHEMA, BIG, 0700, &t.id));
	ASSERT_EQ(0, pcbt_open_topic(self->pfd, t.name, SCHEMA, &t.handle));
	ASSERT_LE(0, pcbt_ring_open(SMALL_RING, &r));
	pcbt_filter_init(&f);
	pcbt_pred(&f, PCB_FIELD_KEY, PCB_OP_NE, 99);
	ASSERT_EQ(0, pcbt_subscribe_filter(r.fd, t.name, SCHEMA, PCB_SUB_LOSSY,
					   &f.f, NULL));
	n = SMALL_RING / BIG_REC;
	for (i = 0; i < n; i++) {
		ASSERT_EQ(0, pub_key(self, t.handle, 99, PCB_PUB_NONBLOCK, 0));
		ASSERT_EQ(0, pub_key(self, t.handle, 0, PCB_PUB_NONBLOCK, 0));
	}
	expect_counts(_metadata, r.fd, t.id, n, 0, n);
	/* Full: accepted ones are dropped, rejected ones still rejected. */
	for (i = 0; i < 5; i++)
		ASSERT_EQ(0, pub_key(self, t.handle, 1, PCB_PUB_NONBLOCK, 0));
	for (i = 0; i < 7; i++)
		ASSERT_EQ(0, pub_key(self, t.handle, 99, 0, 0));
	expect_counts(_metadata, r.fd, t.id, n, 5, n + 7);
	EXPECT_EQ(5ULL, r.hdr->dropped);

	EXPECT_EQ((unsigned int)n, pcbt_ring_drain(&r));
	ASSERT_EQ(0, pub_key(self, t.handle, 2, PCB_PUB_NONBLOCK, 0));
	ASSERT_EQ(0, pub_key(self, t.handle, 99, PCB_PUB_NONBLOCK, 0));
	expect_counts(_metadata, r.fd, t.id, n + 1, 5, n + 8);
	EXPECT_EQ(5ULL, r.hdr->dropped);
	EXPECT_EQ(1U, pcbt_ring_drain(&r));
	pcbt_ring_close(&r);
}

/* One ring, several subscriptions: counted each on its own. */
TEST_F(filter, counters_per_subscription)
{
	struct big_topic t[3];
	union pcbt_filter f;
	__u64 key;
	int i;

	for (i = 0; i < 3; i++) {
		pcbt_name(t[i].name, "multi");
		ASSERT_EQ(0, pcbt_create(self->pfd, t[i].name, SCHEMA, BIG,
					 0700, &t[i].id));
		ASSERT_EQ(0, pcbt_open_topic(self->pfd, t[i].name, SCHEMA,
					     &t[i].handle));
	}
	pcbt_filter_init(&f);
	pcbt_pred(&f, PCB_FIELD_KEY, PCB_OP_LT, 10);
	ASSERT_EQ(0, pcbt_subscribe_filter(self->ring.fd, t[0].name, SCHEMA, 0,
					   &f.f, NULL));
	f.f.preds[0].op = PCB_OP_GE;
	ASSERT_EQ(0, pcbt_subscribe_filter(self->ring.fd, t[1].name, SCHEMA,
					   PCB_SUB_LOSSY, &f.f, NULL));
	ASSERT_EQ(0, pcbt_subscribe_filter(self->ring.fd, t[2].name, SCHEMA, 0,
					   NULL, NULL));
	for (key = 0; key < 25; key++)
		for (i = 0; i < 3; i++)
			ASSERT_EQ(0, pub_key(self, t[i].handle, key,
					     PCB_PUB_NONBLOCK, 0));
	expect_counts(_metadata, self->ring.fd, t[0].id, 10, 0, 15);
	expect_counts(_metadata, self->ring.fd, t[1].id, 15, 0, 10);
	expect_counts(_metadata, self->ring.fd, t[2].id, 25, 0, 0);
	EXPECT_EQ(50U, pcbt_ring_drain(&self->ring));
}

/* A broken ring receives nothing more, and counts nothing more. */
TEST_F(filter, counters_of_a_broken_ring)
{
	union pcbt_filter f;
	int i;

	pcbt_filter_init(&f);
	pcbt_pred(&f, PCB_FIELD_KEY, PCB_OP_NE, 99);
	ASSERT_EQ(0, sub(self, &f));
	ASSERT_TRUE(got_key(_metadata, self, 1));
	pcbt_store_release(&self->ring.cons->cons_pos,
			   pcbt_prod_pos(&self->ring) + 8);
	for (i = 0; i < 5; i++) {
		struct msg m = msg_make(2, 8);

		ASSERT_EQ(0, send_msg(self, &m, NULL));
	}
	ASSERT_TRUE(!!(pcbt_ring_flags(&self->ring) & PCB_RING_BROKEN));
	expect_counts(_metadata, self->ring.fd, self->topic_id, 1, 0, 0);
	EXPECT_EQ(0ULL, self->ring.hdr->dropped);
}

/* Odd keys pass. */
static void odd_keys_filter(union pcbt_filter *f)
{
	pcbt_filter_init(f);
	pcbt_pred(f, PCB_FIELD_KEY, PCB_OP_ANY, 1);
}

/* The next record of @r is the message of entry @e. */
static void expect_entry(struct __test_metadata *_metadata, struct pcbt_ring *r,
			 const struct pcb_batch_entry *e)
{
	const struct pcb_record *rec = pcbt_ring_peek(r);

	ASSERT_NE(NULL, rec) TH_LOG("key %llu missing",
				    (unsigned long long)e->key);
	EXPECT_EQ(e->key, rec->key);
	EXPECT_EQ(e->msg_id, rec->msg_id);
	EXPECT_EQ(e->seq, rec->seq);
	pcbt_ring_pop(r);
}

/* PCB_IOC_PUBLISH_BATCH, atomic or not, is filtered message by message. */
TEST_F(filter, batch_path)
{
	static const __u32 flags[] = { 0, PCB_PUB_ATOMIC };
	struct pcb_batch_entry e[10];
	union pcbt_filter f;
	__u32 published;
	unsigned int i, k;

	odd_keys_filter(&f);
	ASSERT_EQ(0, sub(self, &f));
	for (k = 0; k < ARRAY_SIZE(flags); k++) {
		for (i = 0; i < 10; i++)
			set_entry(&e[i], self->handle, 10 * k + i, "12345678", 8);
		ASSERT_EQ(0, batch(self->pfd, e, 10, flags[k], 0, &published));
		EXPECT_EQ(10U, published);
		for (i = 0; i < 10; i++) {
			EXPECT_EQ(0, e[i].result);
			if (i & 1)
				expect_entry(_metadata, &self->ring, &e[i]);
		}
		EXPECT_TRUE(ring_empty(&self->ring)) TH_LOG("flags %#x",
							    flags[k]);
		pcbt_ring_release(&self->ring);
	}
	expect_counts(_metadata, self->ring.fd, self->topic_id, 10, 0, 10);
}

/* An atomic batch across two topics, each subscription its own filter. */
TEST_F(filter, batch_atomic_two_topics)
{
	struct pcb_batch_entry e[10];
	const struct pcb_record *rec;
	struct big_topic t;
	union pcbt_filter f;
	bool seen[10] = { 0 };
	__u32 published;
	unsigned int i, n = 0;

	pcbt_name(t.name, "second");
	ASSERT_EQ(0, pcbt_create(self->pfd, t.name, SCHEMA, BIG, 0700, &t.id));
	ASSERT_EQ(0, pcbt_open_topic(self->pfd, t.name, SCHEMA, &t.handle));
	odd_keys_filter(&f);
	ASSERT_EQ(0, sub(self, &f));
	pcbt_filter_init(&f);
	pcbt_pred(&f, PCB_FIELD_KEY, PCB_OP_GE, 2);
	ASSERT_EQ(0, pcbt_subscribe_filter(self->ring.fd, t.name, SCHEMA, 0,
					   &f.f, NULL));
	/* Entry i goes to topic i % 2 with key i / 2. */
	for (i = 0; i < 10; i++)
		set_entry(&e[i], i % 2 ? t.handle : self->handle, i / 2, "ab",
			  2);
	ASSERT_EQ(0, batch(self->pfd, e, 10, PCB_PUB_ATOMIC, 0, &published));
	EXPECT_EQ(10U, published);
	while ((rec = pcbt_ring_peek(&self->ring))) {
		for (i = 0; i < 10; i++)
			if (e[i].msg_id == rec->msg_id)
				break;
		ASSERT_GT(10U, i) TH_LOG("a record of no entry");
		EXPECT_FALSE(seen[i]);
		seen[i] = true;
		EXPECT_EQ(e[i].key, rec->key);
		EXPECT_EQ(i % 2 ? t.id : self->topic_id, rec->topic_id);
		pcbt_ring_pop(&self->ring);
		n++;
	}
	/* Topic 0: keys 1, 3 (entries 2, 6); topic 1: keys 2, 3, 4. */
	for (i = 0; i < 10; i++) {
		bool want = i % 2 ? i / 2 >= 2 : (i / 2) & 1;

		EXPECT_EQ(want, seen[i]) TH_LOG("entry %u", i);
	}
	EXPECT_EQ(5U, n);
	expect_counts(_metadata, self->ring.fd, self->topic_id, 2, 0, 3);
	expect_counts(_metadata, self->ring.fd, t.id, 3, 0, 2);
}

/* PCB_URING_CMD_PUBLISH is filtered too, from user memory or a fixed buffer. */
TEST_F(filter, uring_path)
{
	const __u32 magic = 0xfeedf00d;
	struct pcb_uring_publish up;
	const struct pcb_record *rec;
	union pcbt_filter f;
	struct pcbt_cqe c;
	struct io_uring u;
	struct iovec iov;
	unsigned char *buf;
	__u64 ids[10];
	unsigned int i;
	int ret;

	PCBT_URING_INIT(&u, 16);
	odd_keys_filter(&f);
	ASSERT_EQ(0, sub(self, &f));
	for (i = 0; i < 10; i++) {
		up = uring_cmd(self->handle, i, "abcd", 4, PCB_PUB_NONBLOCK);
		ASSERT_NE(NULL, pcbt_uring_queue(&u, self->pfd, &up, i));
	}
	ASSERT_EQ(10, io_uring_submit(&u));
	for (i = 0; i < 10; i++) {
		ASSERT_EQ(0, pcbt_uring_reap(&u, &c, PCBT_CQE_WAIT_MS));
		ASSERT_EQ(0, c.res);
		ASSERT_GT(10U, c.user_data);
		ids[c.user_data] = c.msg_id;
	}
	for (i = 1; i < 10; i += 2) {
		rec = pcbt_ring_peek(&self->ring);
		ASSERT_NE(NULL, rec);
		EXPECT_EQ(i, rec->key);
		EXPECT_EQ(ids[i], rec->msg_id);
		pcbt_ring_pop(&self->ring);
	}
	EXPECT_TRUE(ring_empty(&self->ring));
	expect_counts(_metadata, self->ring.fd, self->topic_id, 5, 0, 5);

	/* A payload predicate on a registered buffer. */
	buf = mmap(NULL, 4096, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, buf);
	memset(buf, NOISE, 4096);
	memcpy(buf + 100 + 4, &magic, 4);
	iov.iov_base = buf;
	iov.iov_len = 4096;
	ret = io_uring_register_buffers(&u, &iov, 1);
	if (ret == -ENOMEM)
		SKIP(return, "cannot lock one page (RLIMIT_MEMLOCK)");
	ASSERT_EQ(0, ret);
	pcbt_filter_init(&f);
	pcbt_pred_payload(&f, 4, 4, PCB_OP_EQ, magic);
	ASSERT_EQ(0, set(self, &f));
	for (i = 0; i < 4; i++) {
		struct io_uring_sqe *sqe;

		/* Only the message at 100 has the magic at its offset 4. */
		up = uring_cmd(self->handle, i, buf + 98 + i, 8,
			       PCB_PUB_NONBLOCK);
		sqe = pcbt_uring_queue(&u, self->pfd, &up, i);
		ASSERT_NE(NULL, sqe);
		sqe->uring_cmd_flags = IORING_URING_CMD_FIXED;
		sqe->buf_index = 0;
		ASSERT_EQ(1, io_uring_submit(&u));
		ASSERT_EQ(0, pcbt_uring_reap(&u, &c, PCBT_CQE_WAIT_MS));
		ASSERT_EQ(0, c.res);
		rec = pcbt_ring_peek(&self->ring);
		EXPECT_EQ(i == 2, rec != NULL) TH_LOG("offset %u", 98 + i);
		if (rec) {
			EXPECT_EQ(c.msg_id, rec->msg_id);
			EXPECT_EQ(0, memcmp(buf + 100, pcbt_payload(rec), 8));
			pcbt_ring_pop(&self->ring);
		}
	}
	expect_counts(_metadata, self->ring.fd, self->topic_id, 6, 0, 8);
	io_uring_unregister_buffers(&u);
	io_uring_queue_exit(&u);
	munmap(buf, 4096);
}

/*
 * Payload predicates on pages the publisher has not touched yet: the
 * kernel must fault them in, not reject the message or fail.
 */
#define PAGES	8

static const unsigned char *untouched(struct __test_metadata *_metadata,
				      int fd)
{
	const unsigned char *p;

	p = mmap(NULL, PAGES * 4096, PROT_READ, MAP_SHARED, fd, 0);
	ASSERT_NE(MAP_FAILED, p);
	return p;
}

static void forget(struct __test_metadata *_metadata, const void *p)
{
	ASSERT_EQ(0, madvise((void *)p, PAGES * 4096, MADV_DONTNEED));
}

TEST_F(filter, payload_not_faulted_in)
{
	const __u32 magic = 0xfeedf00d;
	struct pcb_batch_entry e[PAGES];
	unsigned char page[4096];
	const unsigned char *map;
	struct pcb_uring_publish up;
	union pcbt_filter f;
	struct io_uring u;
	struct pcbt_cqe c;
	unsigned int i, k;
	__u32 published;
	int fd;

	/* Page i holds a message at its start; even pages have the magic. */
	fd = memfd_create("pcbt-payload", MFD_CLOEXEC);
	ASSERT_LE(0, fd);
	for (i = 0; i < PAGES; i++) {
		memset(page, (int)i, sizeof(page));
		if (!(i & 1))
			memcpy(page + 4, &magic, 4);
		ASSERT_EQ((ssize_t)sizeof(page), write(fd, page, sizeof(page)));
	}
	map = untouched(_metadata, fd);
	pcbt_filter_init(&f);
	pcbt_pred_payload(&f, 4, 4, PCB_OP_EQ, magic);
	ASSERT_EQ(0, sub(self, &f));

	for (i = 0; i < PAGES; i++) {
		ASSERT_EQ(0, pcbt_publish_deps(self->pfd, self->handle,
					       map + i * 4096, 16, i, NULL, 0,
					       PCB_PUB_NONBLOCK, NULL));
	}
	forget(_metadata, map);
	for (k = 0; k < 2; k++) {
		for (i = 0; i < PAGES; i++)
			set_entry(&e[i], self->handle, i, map + i * 4096, 16);
		ASSERT_EQ(0, batch(self->pfd, e, PAGES, k ? PCB_PUB_ATOMIC : 0,
				   0, &published));
		EXPECT_EQ((__u32)PAGES, published);
		forget(_metadata, map);
	}
	if (!pcbt_uring_init(&u, 16, IORING_SETUP_SQE128 | IORING_SETUP_CQE32)) {
		for (i = 0; i < PAGES; i++) {
			up = uring_cmd(self->handle, i, map + i * 4096, 16,
				       PCB_PUB_NONBLOCK);
			ASSERT_EQ(0, pcbt_uring_publish(&u, self->pfd, &up, &c));
		}
		io_uring_queue_exit(&u);
		k++;
	} else {
		TH_LOG("no io_uring: that path is not tried");
	}

	/* Each round: the even pages, in order, with their bytes. */
	for (i = 0; i < (k + 1) * PAGES / 2; i++) {
		const struct pcb_record *rec = pcbt_ring_peek(&self->ring);

		ASSERT_NE(NULL, rec) TH_LOG("record %u", i);
		ASSERT_EQ((i % (PAGES / 2)) * 2, rec->key);
		ASSERT_EQ(16U, rec->payload_len);
		EXPECT_EQ(0, memcmp(pcbt_payload(rec), map + rec->key * 4096,
				    16));
		pcbt_ring_pop(&self->ring);
	}
	EXPECT_TRUE(ring_empty(&self->ring));
	expect_counts(_metadata, self->ring.fd, self->topic_id,
		      (k + 1) * PAGES / 2, 0, (k + 1) * PAGES / 2);
	munmap((void *)map, PAGES * 4096);
	close(fd);
}

/* A payload the kernel cannot read is EFAULT, not a rejected message. */
TEST_F(filter, payload_efault_is_not_rejected)
{
	const void *bad = pcbt_no_access_page();
	union pcbt_filter f;

	ASSERT_NE(NULL, bad);
	pcbt_filter_init(&f);
	pcbt_pred_payload(&f, 1, 0, PCB_OP_EQ, 0);
	ASSERT_EQ(0, sub(self, &f));
	EXPECT_EQ(-EFAULT, pcbt_publish_deps(self->pfd, self->handle, bad, 8, 1,
					     NULL, 0, PCB_PUB_NONBLOCK, NULL));
	EXPECT_EQ(-EFAULT, pcbt_publish_deps(self->pfd, self->handle,
					     (void *)(uintptr_t)16, 8, 1, NULL,
					     0, PCB_PUB_NONBLOCK, NULL));
	EXPECT_EQ(0LL, pcbt_published(self->pfd, self->name));
	expect_counts(_metadata, self->ring.fd, self->topic_id, 0, 0, 0);
	EXPECT_EQ(0ULL, pcbt_prod_pos(&self->ring));
}

/* Payload offsets count from the payload, after the dependencies. */
TEST_F(filter, payload_after_dependencies)
{
	const struct pcb_record *rec;
	struct pcb_publish p;
	union pcbt_filter f;
	__u64 dep, zero = 0;

	ASSERT_EQ(0, sub(self, NULL));
	ASSERT_EQ(0, pcbt_publish_deps(self->pfd, self->handle, "x", 1, 0, NULL,
				       0, 0, &p));
	dep = p.msg_id;
	EXPECT_EQ(1U, pcbt_ring_drain(&self->ring));

	pcbt_filter_init(&f);
	pcbt_pred_payload(&f, 8, 0, PCB_OP_EQ, dep);
	pcbt_pred(&f, PCB_FIELD_LEN, PCB_OP_EQ, 8);
	ASSERT_EQ(0, set(self, &f));
	/* The dependency sits where a wrong offset would find it. */
	ASSERT_EQ(0, pcbt_publish_deps(self->pfd, self->handle, &zero, 8, 1,
				       &dep, 1, 0, NULL));
	EXPECT_TRUE(ring_empty(&self->ring));
	ASSERT_EQ(0, pcbt_publish_deps(self->pfd, self->handle, &dep, 8, 2,
				       &dep, 1, 0, &p));
	rec = pcbt_ring_peek(&self->ring);
	ASSERT_NE(NULL, rec);
	EXPECT_EQ(2ULL, rec->key);
	EXPECT_EQ(1U, rec->nr_deps);
	EXPECT_EQ(dep, pcbt_rec_deps(rec)[0]);
	pcbt_ring_pop(&self->ring);
	expect_counts(_metadata, self->ring.fd, self->topic_id, 2, 0, 1);
}

/* Deleting the topic takes its subscriptions, filters and all. */
TEST_F(filter, topic_deleted)
{
	struct pcb_sub_info si;
	union pcbt_filter f;

	pcbt_filter_init(&f);
	pcbt_pred(&f, PCB_FIELD_KEY, PCB_OP_EQ, 1);
	ASSERT_EQ(0, sub(self, &f));
	EXPECT_TRUE(got_key(_metadata, self, 1));
	ASSERT_EQ(0, pcbt_delete(self->pfd, self->name));
	EXPECT_EQ(-ENOENT, set(self, &f));
	EXPECT_EQ(-ENOENT, set(self, NULL));
	EXPECT_EQ(-ENOENT, pcbt_sub_info(self->ring.fd, self->topic_id, &si));
}

/*
 * SET_FILTER, SUB_INFO, SUBSCRIBE and UNSUBSCRIBE of one subscription
 * from four threads while a fifth publishes: each call succeeds or finds
 * the subscription gone, and nothing breaks.
 */
#define RACE_MS		1500

struct race {
	int fd;			/* the ring's endpoint */
	const char *name;
	__u32 topic_id;
	int pfd;
	__u32 handle;
	int stop;		/* atomic */
	int err;		/* first unexpected result */
	const char *who;
	__u64 calls[4];
};

static void race_check(struct race *r, int ret, int ok2, const char *who)
{
	if (ret && ret != ok2 && !r->err) {
		r->err = ret;
		r->who = who;
	}
}

static bool race_on(struct race *r)
{
	return !__atomic_load_n(&r->stop, __ATOMIC_ACQUIRE);
}

static void *race_set(void *arg)
{
	struct race *r = arg;
	union pcbt_filter f;
	__u64 n;

	for (n = 0; race_on(r); n++) {
		pcbt_filter_init(&f);
		pcbt_pred(&f, PCB_FIELD_KEY, PCB_OP_NE, n);
		pcbt_pred_payload(&f, 1, 0, PCB_OP_GE, 0);
		race_check(r, pcbt_set_filter(r->fd, r->topic_id,
					      n % 3 ? &f.f : NULL),
			   -ENOENT, "SET_FILTER");
		r->calls[0]++;
	}
	return NULL;
}

static void *race_info(void *arg)
{
	struct race *r = arg;
	struct pcb_sub_info si;

	while (race_on(r)) {
		race_check(r, pcbt_sub_info(r->fd, r->topic_id, &si), -ENOENT,
			   "SUB_INFO");
		r->calls[1]++;
	}
	return NULL;
}

static void *race_sub(void *arg)
{
	struct race *r = arg;
	union pcbt_filter f;

	pcbt_filter_init(&f);
	pcbt_pred(&f, PCB_FIELD_LEN, PCB_OP_GT, 0);
	while (race_on(r)) {
		race_check(r, pcbt_subscribe_filter(r->fd, r->name, SCHEMA,
						    PCB_SUB_LOSSY, &f.f, NULL),
			   0, "SUBSCRIBE");
		race_check(r, pcbt_unsubscribe(r->fd, r->topic_id), 0,
			   "UNSUBSCRIBE");
		r->calls[2]++;
	}
	return NULL;
}

static void *race_pub(void *arg)
{
	struct race *r = arg;
	char byte = 1;

	while (race_on(r)) {
		race_check(r, pcbt_publish_deps(r->pfd, r->handle, &byte, 1,
						r->calls[3], NULL, 0,
						PCB_PUB_NONBLOCK, NULL),
			   0, "PUBLISH");
		r->calls[3]++;
	}
	return NULL;
}

TEST_F_TIMEOUT(filter, set_filter_races_unsubscribe, 120)
{
	void *(*fns[])(void *) = { race_set, race_info, race_sub, race_pub };
	struct race r = {
		.fd = self->ring.fd,
		.name = self->name,
		.topic_id = self->topic_id,
		.pfd = self->pfd,
		.handle = self->handle,
	};
	pthread_t threads[ARRAY_SIZE(fns)];
	unsigned int i;

	for (i = 0; i < ARRAY_SIZE(fns); i++)
		ASSERT_EQ(0, pthread_create(&threads[i], NULL, fns[i], &r));
	for (i = 0; i < RACE_MS / 10; i++) {
		pcbt_ring_drain(&self->ring);
		pcbt_sleep_ms(10);
	}
	__atomic_store_n(&r.stop, 1, __ATOMIC_RELEASE);
	for (i = 0; i < ARRAY_SIZE(fns); i++)
		pthread_join(threads[i], NULL);
	EXPECT_EQ(0, r.err) TH_LOG("%s", r.who);
	TH_LOG("%llu SET_FILTER, %llu SUB_INFO, %llu SUBSCRIBE, %llu PUBLISH",
	       (unsigned long long)r.calls[0], (unsigned long long)r.calls[1],
	       (unsigned long long)r.calls[2], (unsigned long long)r.calls[3]);
	EXPECT_EQ(NULL, self->ring.corrupt);
	EXPECT_EQ(0U, pcbt_ring_flags(&self->ring) & PCB_RING_BROKEN);
}

/*
 * A filter swapped under load.  Publishers send every combination of key
 * and u32@0 in {1, 2} x {1, 2}; a swapper alternates the filter between
 * {key == 1, u32@0 == 1} and {key == 2, u32@0 == 2}.  A message checked
 * against half of one filter and half of the other would be (1, 2) or
 * (2, 1): the consumer must never see one.
 *
 * The swapper also keeps @state: the filter's generation << 1, plus 1
 * while a SET_FILTER is under way.  A publisher that reads the same even
 * state before and after its publish knows which filter its message met,
 * so whether it must arrive or must not; the swapper's own probes,
 * published after each SET_FILTER returned, too.
 */
#define SWAP_PUBS	2
#define SWAPS		300
#define SWAP_MAX	200000	/* messages per publisher at most */
#define SWAP_RING	(256U * 1024)
#define PROBER		SWAP_PUBS	/* the swapper's index */

enum { MAY, MUST, MUST_NOT };

struct swap_payload {
	__u32 v;		/* u32@0 */
	__u32 pub;
	__u64 n;
};

struct swap {
	const char *name;
	struct pcbt_ring ring;
	__u32 topic_id;
	__u64 state;		/* atomic */
	int stop;		/* atomic: publishers stop */
	int pubs_done;		/* atomic: the consumer drains and stops */
	unsigned char *expect[SWAP_PUBS + 1];
	unsigned char *seen[SWAP_PUBS + 1];
	__u64 sent[SWAP_PUBS + 1];
	int err[SWAP_PUBS + 1];
	const char *consumer_err;
	__u64 consumed;
};

struct swap_pub {
	struct swap *sw;
	unsigned int index;
};

static const __u32 combos[4][2] = { { 1, 1 }, { 1, 2 }, { 2, 1 }, { 2, 2 } };

static __u32 swap_k(__u64 gen)
{
	return gen % 2 ? 2 : 1;
}

static void swap_filter(union pcbt_filter *f, __u64 gen)
{
	pcbt_filter_init(f);
	pcbt_pred(f, PCB_FIELD_KEY, PCB_OP_EQ, swap_k(gen));
	pcbt_pred_payload(f, 4, 0, PCB_OP_EQ, swap_k(gen));
}

static int swap_send(int fd, __u32 handle, __u32 key, __u32 v, __u32 pub,
		     __u64 n)
{
	struct swap_payload pl = { .v = v, .pub = pub, .n = n };
	struct pcb_publish p = {
		.handle = handle,
		.payload = (uintptr_t)&pl,
		.len = sizeof(pl),
		.key = key,
		.timeout_ns = 30 * PCBT_SEC,
	};

	return pcbt_ioctl(fd, PCB_IOC_PUBLISH, &p);
}

static bool swap_stopped(struct swap *sw)
{
	return __atomic_load_n(&sw->stop, __ATOMIC_ACQUIRE);
}

static void *swap_publisher(void *arg)
{
	struct swap_pub *a = arg;
	struct swap *sw = a->sw;
	unsigned int me = a->index;
	__u32 h;
	__u64 n;
	int fd = pcbt_open();

	if (fd < 0) {
		sw->err[me] = fd;
		return NULL;
	}
	sw->err[me] = pcbt_open_topic(fd, sw->name, SCHEMA, &h);
	for (n = 0; !sw->err[me] && n < SWAP_MAX && !swap_stopped(sw); n++) {
		const __u32 *c = combos[n % 4];
		__u64 before, after;
		int ret;

		before = __atomic_load_n(&sw->state, __ATOMIC_SEQ_CST);
		ret = swap_send(fd, h, c[0], c[1], me, n);
		pcbt_smp_mb();
		after = __atomic_load_n(&sw->state, __ATOMIC_SEQ_CST);
		if (ret) {
			sw->err[me] = ret;
			break;
		}
		if (before != after || (before & 1))
			sw->expect[me][n] = MAY;
		else if (c[0] == swap_k(before >> 1) && c[1] == c[0])
			sw->expect[me][n] = MUST;
		else
			sw->expect[me][n] = MUST_NOT;
	}
	sw->sent[me] = n;
	close(fd);
	return NULL;
}

static bool swap_record(struct swap *sw, const struct pcb_record *rec)
{
	struct swap_payload pl;

	if (rec->payload_len != sizeof(pl)) {
		sw->consumer_err = "payload length";
		return false;
	}
	memcpy(&pl, pcbt_payload(rec), sizeof(pl));
	if (rec->key != pl.v) {
		sw->consumer_err = "a message only half of a filter accepts";
		return false;
	}
	if (pl.pub > PROBER || pl.n >= SWAP_MAX) {
		sw->consumer_err = "a message nobody sent";
		return false;
	}
	if (sw->seen[pl.pub][pl.n]) {
		sw->consumer_err = "a message seen twice";
		return false;
	}
	sw->seen[pl.pub][pl.n] = 1;
	sw->consumed++;
	return true;
}

static void *swap_consumer(void *arg)
{
	struct swap *sw = arg;
	const struct pcb_record *rec;

	for (;;) {
		int done = __atomic_load_n(&sw->pubs_done, __ATOMIC_ACQUIRE);

		while ((rec = pcbt_ring_peek(&sw->ring))) {
			if (!swap_record(sw, rec))
				return NULL;
			pcbt_ring_pop(&sw->ring);
		}
		if (sw->ring.corrupt) {
			sw->consumer_err = sw->ring.corrupt;
			return NULL;
		}
		pcbt_ring_release(&sw->ring);
		if (done)
			return NULL;
		pcbt_ring_wait(&sw->ring, 10 * PCBT_MS);
	}
}

/* The swapper: SWAPS filter changes, two probes after each. */
static int swap_run(struct swap *sw, int pfd, __u32 handle)
{
	union pcbt_filter f;
	__u64 gen, n = 0;
	int ret;

	for (gen = 1; gen <= SWAPS; gen++) {
		__u32 k = swap_k(gen);

		__atomic_store_n(&sw->state, ((gen - 1) << 1) | 1,
				 __ATOMIC_SEQ_CST);
		swap_filter(&f, gen);
		ret = pcbt_set_filter(sw->ring.fd, sw->topic_id, &f.f);
		if (ret)
			return ret;
		__atomic_store_n(&sw->state, gen << 1, __ATOMIC_SEQ_CST);

		ret = swap_send(pfd, handle, k, k, PROBER, n);
		if (ret)
			return ret;
		sw->expect[PROBER][n++] = MUST;
		ret = swap_send(pfd, handle, 3 - k, 3 - k, PROBER, n);
		if (ret)
			return ret;
		sw->expect[PROBER][n++] = MUST_NOT;
		pcbt_sleep_ms(1);
	}
	sw->sent[PROBER] = n;
	return 0;
}

TEST_F_TIMEOUT(filter, swap_under_load, 300)
{
	struct swap_pub pubs[SWAP_PUBS];
	pthread_t threads[SWAP_PUBS], consumer;
	__u64 total = 0, must = 0, must_not = 0;
	struct swap *sw = calloc(1, sizeof(*sw));
	struct pcb_sub_info si;
	union pcbt_filter f;
	unsigned int i;
	__u64 n;

	ASSERT_NE(NULL, sw);
	sw->name = self->name;
	sw->topic_id = self->topic_id;
	for (i = 0; i <= PROBER; i++) {
		sw->expect[i] = calloc(SWAP_MAX, 1);
		sw->seen[i] = calloc(SWAP_MAX, 1);
		ASSERT_NE(NULL, sw->expect[i]);
		ASSERT_NE(NULL, sw->seen[i]);
	}
	ASSERT_LE(0, pcbt_ring_open(SWAP_RING, &sw->ring));
	swap_filter(&f, 0);
	ASSERT_EQ(0, pcbt_subscribe_filter(sw->ring.fd, self->name, SCHEMA, 0,
					   &f.f, NULL));

	ASSERT_EQ(0, pthread_create(&consumer, NULL, swap_consumer, sw));
	for (i = 0; i < SWAP_PUBS; i++) {
		pubs[i] = (struct swap_pub){ .sw = sw, .index = i };
		ASSERT_EQ(0, pthread_create(&threads[i], NULL, swap_publisher,
					    &pubs[i]));
	}
	EXPECT_EQ(0, swap_run(sw, self->pfd, self->handle));
	__atomic_store_n(&sw->stop, 1, __ATOMIC_RELEASE);
	for (i = 0; i < SWAP_PUBS; i++)
		pthread_join(threads[i], NULL);
	__atomic_store_n(&sw->pubs_done, 1, __ATOMIC_RELEASE);
	pthread_join(consumer, NULL);

	ASSERT_EQ(NULL, sw->consumer_err) TH_LOG("%s", sw->consumer_err);
	for (i = 0; i <= PROBER; i++) {
		EXPECT_EQ(0, sw->err[i]) TH_LOG("publisher %u", i);
		total += sw->sent[i];
		for (n = 0; n < SWAP_MAX; n++) {
			unsigned char want = n < sw->sent[i] ? sw->expect[i][n]
							     : MUST_NOT;

			if (want == MUST) {
				must++;
				ASSERT_TRUE(sw->seen[i][n])
					TH_LOG("publisher %u message %llu missing",
					       i, (unsigned long long)n);
			} else if (want == MUST_NOT && n < sw->sent[i]) {
				must_not++;
				ASSERT_FALSE(sw->seen[i][n])
					TH_LOG("publisher %u message %llu arrived",
					       i, (unsigned long long)n);
			} else if (want == MUST_NOT) {
				ASSERT_FALSE(sw->seen[i][n]);
			}
		}
	}
	TH_LOG("%llu messages, %llu delivered; %llu had to arrive, %llu had not to",
	       (unsigned long long)total, (unsigned long long)sw->consumed,
	       (unsigned long long)must, (unsigned long long)must_not);
	EXPECT_LT((__u64)SWAPS, must);
	EXPECT_LT((__u64)SWAPS, must_not);

	/* Every message counted once: delivered or rejected. */
	EXPECT_EQ((long long)total, pcbt_published(self->pfd, self->name));
	ASSERT_EQ(0, pcbt_sub_info(sw->ring.fd, self->topic_id, &si));
	EXPECT_EQ(sw->consumed, si.delivered);
	EXPECT_EQ(0ULL, si.dropped);
	EXPECT_EQ(total, si.delivered + si.rejected);

	pcbt_ring_close(&sw->ring);
	for (i = 0; i <= PROBER; i++) {
		free(sw->expect[i]);
		free(sw->seen[i]);
	}
	free(sw);
}

TEST_HARNESS_MAIN
