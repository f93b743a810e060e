/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Shared helpers of the pcb selftests.
 *
 * The tests talk to the module through the raw ABI of <linux/pcb.h>
 * (ioctl() and mmap()), not through libpcb, so that they check the kernel
 * contract itself.  Helpers return 0 or a negative errno and never leave
 * the answer in errno, so a test can write
 *	ASSERT_EQ(-EEXIST, pcbt_create(...));
 * and a failure prints both numbers.
 *
 * Include this file first: it sets _GNU_SOURCE.
 */
#ifndef PCB_SELFTEST_UTIL_H
#define PCB_SELFTEST_UTIL_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/time.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/*
 * kselftest_harness.h of 6.1 declares parameters it does not use (in
 * TEST() wrappers and its SIGALRM handler); that is its business, not a
 * defect of these tests, so only that one warning is silenced.
 */
#pragma GCC diagnostic ignored "-Wunused-parameter"
#include "kselftest_harness.h"

#include <linux/pcb.h>

#define PCBT_NOBODY		65534
#define PCBT_MS			1000000ULL
#define PCBT_SEC		1000000000ULL

/* Ring barriers, named after the kernel ones they pair with. */
#define pcbt_load_acquire(p)	__atomic_load_n((p), __ATOMIC_ACQUIRE)
#define pcbt_store_release(p, v) __atomic_store_n((p), (v), __ATOMIC_RELEASE)
#define pcbt_load_once(p)	__atomic_load_n((p), __ATOMIC_RELAXED)
#define pcbt_store_once(p, v)	__atomic_store_n((p), (v), __ATOMIC_RELAXED)
#define pcbt_smp_mb()		__atomic_thread_fence(__ATOMIC_SEQ_CST)

/*
 * SKIP() of the 6.1 harness does not stop a test when used in a fixture's
 * setup, so leave the test process with the harness' skip status instead.
 */
#define PCBT_SKIP(fmt, ...) SKIP(_exit(255), fmt, ##__VA_ARGS__)

static inline int pcbt_ioctl(int fd, unsigned long cmd, void *arg)
{
	return ioctl(fd, cmd, arg) ? -errno : 0;
}

static inline int pcbt_ioctl_val(int fd, unsigned long cmd, unsigned long arg)
{
	return ioctl(fd, cmd, arg) ? -errno : 0;
}

static inline __u64 pcbt_now_ns(clockid_t clock)
{
	struct timespec ts;

	clock_gettime(clock, &ts);
	return (__u64)ts.tv_sec * PCBT_SEC + (__u64)ts.tv_nsec;
}

static inline void pcbt_sleep_ms(unsigned int ms)
{
	struct timespec ts = {
		.tv_sec = ms / 1000,
		.tv_nsec = (long)(ms % 1000) * 1000000L,
	};

	while (nanosleep(&ts, &ts) && errno == EINTR)
		;
}

static inline bool pcbt_is_root(void)
{
	return geteuid() == 0;
}

/* Opens an endpoint: an fd or -errno. */
static inline int pcbt_open(void)
{
	int fd = open(PCB_DEVICE_PATH, O_RDWR | O_CLOEXEC);

	return fd < 0 ? -errno : fd;
}

/* Opens an endpoint or makes the whole test skip when the bus is absent. */
#define PCBT_OPEN(fd) do {						\
	(fd) = pcbt_open();						\
	if ((fd) == -ENOENT || (fd) == -ENODEV || (fd) == -ENXIO)	\
		PCBT_SKIP(PCB_DEVICE_PATH " is missing (module not loaded)"); \
	if ((fd) == -EACCES)						\
		PCBT_SKIP(PCB_DEVICE_PATH " is not accessible to uid %d", \
			  (int)geteuid());				\
	ASSERT_LE(0, (fd));						\
} while (0)

/* Reads /sys/module/pcb/parameters/<name>, else @def. */
static inline unsigned long long pcbt_param(const char *name,
					    unsigned long long def)
{
	char path[128];
	unsigned long long val;
	FILE *f;

	snprintf(path, sizeof(path), "/sys/module/pcb/parameters/%s", name);
	f = fopen(path, "r");
	if (!f)
		return def;
	if (fscanf(f, "%llu", &val) != 1)
		val = def;
	fclose(f);
	return val;
}

/* Writes a module parameter; 0 or -errno. */
static inline int pcbt_set_param(const char *name, unsigned long long val)
{
	char path[128];
	FILE *f;
	int ret = 0;

	snprintf(path, sizeof(path), "/sys/module/pcb/parameters/%s", name);
	f = fopen(path, "w");
	if (!f)
		return -errno;
	if (fprintf(f, "%llu\n", val) < 0)
		ret = -EIO;
	if (fclose(f))
		ret = -errno;
	return ret;
}

/*
 * Topic names.  Every name carries the pid of the test process so that
 * concurrent runs (and the tests of one run, each in its own process)
 * never collide.  Created topics are remembered so that a fixture's
 * teardown can delete them even when the test failed half-way.
 */
#define PCBT_MAX_TOPICS		64

static char pcbt_topics[PCBT_MAX_TOPICS][PCB_NAME_MAX];
static unsigned int pcbt_nr_topics;
static unsigned int pcbt_name_seq;

static inline void pcbt_copy_name(char dst[PCB_NAME_MAX], const char *src)
{
	memset(dst, 0, PCB_NAME_MAX);
	memcpy(dst, src, strnlen(src, PCB_NAME_MAX));
}

static inline void pcbt_remember(const char *name)
{
	unsigned int i;

	for (i = 0; i < pcbt_nr_topics; i++)
		if (!strcmp(pcbt_topics[i], name))
			return;
	if (pcbt_nr_topics < PCBT_MAX_TOPICS)
		pcbt_copy_name(pcbt_topics[pcbt_nr_topics++], name);
}

static inline void pcbt_name(char name[PCB_NAME_MAX], const char *tag)
{
	snprintf(name, PCB_NAME_MAX, "pcbt-%d-%u-%s", (int)getpid(),
		 pcbt_name_seq++, tag);
	pcbt_remember(name);
}

static inline int pcbt_delete(int fd, const char *name)
{
	struct pcb_topic_name tn = { 0 };

	pcbt_copy_name(tn.name, name);
	return pcbt_ioctl(fd, PCB_IOC_TOPIC_DELETE, &tn);
}

/* Deletes every topic this process named (errors ignored). */
static inline void pcbt_cleanup(void)
{
	unsigned int i;
	int fd = pcbt_open();

	if (fd < 0)
		return;
	for (i = 0; i < pcbt_nr_topics; i++)
		pcbt_delete(fd, pcbt_topics[i]);
	pcbt_nr_topics = 0;
	close(fd);
}

static inline int pcbt_create_raw(int fd, struct pcb_topic_create *tc)
{
	return pcbt_ioctl(fd, PCB_IOC_TOPIC_CREATE, tc);
}

static inline int pcbt_create(int fd, const char *name, __u64 schema,
			      __u32 max_msg_size, __u32 mode, __u32 *topic_id)
{
	struct pcb_topic_create tc = {
		.schema_id = schema,
		.max_msg_size = max_msg_size,
		.mode = mode,
		.uid = PCB_OWNER_CALLER,
		.gid = PCB_OWNER_CALLER,
	};
	int ret;

	pcbt_copy_name(tc.name, name);
	ret = pcbt_create_raw(fd, &tc);
	if (!ret && topic_id)
		*topic_id = tc.topic_id;
	return ret;
}

static inline int pcbt_info(int fd, const char *name,
			    struct pcb_topic_info *info)
{
	memset(info, 0, sizeof(*info));
	pcbt_copy_name(info->name, name);
	return pcbt_ioctl(fd, PCB_IOC_TOPIC_INFO, info);
}

/* The topic's nr_subscribers, or -errno. */
static inline long long pcbt_nr_subs(int fd, const char *name)
{
	struct pcb_topic_info info;
	int ret = pcbt_info(fd, name, &info);

	return ret ? ret : (long long)info.nr_subscribers;
}

/* The topic's published count, or -errno. */
static inline long long pcbt_published(int fd, const char *name)
{
	struct pcb_topic_info info;
	int ret = pcbt_info(fd, name, &info);

	return ret ? ret : (long long)info.published;
}

static inline int pcbt_open_topic(int fd, const char *name, __u64 schema,
				  __u32 *handle)
{
	struct pcb_topic_open to = { .schema_id = schema };
	int ret;

	pcbt_copy_name(to.name, name);
	ret = pcbt_ioctl(fd, PCB_IOC_TOPIC_OPEN, &to);
	if (!ret && handle)
		*handle = to.handle;
	return ret;
}

static inline int pcbt_close_topic(int fd, __u32 handle)
{
	struct pcb_topic_close tc = { .handle = handle };

	return pcbt_ioctl(fd, PCB_IOC_TOPIC_CLOSE, &tc);
}

/* Publishes; @out (may be NULL) receives the struct with msg_id and seq. */
static inline int pcbt_publish(int fd, __u32 handle, const void *buf,
			       __u32 len, __u32 flags, __u64 timeout_ns,
			       struct pcb_publish *out)
{
	struct pcb_publish p = {
		.handle = handle,
		.flags = flags,
		.payload = (uintptr_t)buf,
		.len = len,
		.timeout_ns = timeout_ns,
	};
	int ret = pcbt_ioctl(fd, PCB_IOC_PUBLISH, &p);

	if (out)
		*out = p;
	return ret;
}

static inline int pcbt_subscribe(int fd, const char *name, __u64 schema,
				 __u32 flags, __u32 *topic_id)
{
	struct pcb_subscribe s = { .schema_id = schema, .flags = flags };
	int ret;

	pcbt_copy_name(s.name, name);
	ret = pcbt_ioctl(fd, PCB_IOC_SUBSCRIBE, &s);
	if (!ret && topic_id)
		*topic_id = s.topic_id;
	return ret;
}

static inline int pcbt_unsubscribe(int fd, __u32 topic_id)
{
	struct pcb_subscribe s = { .topic_id = topic_id };

	return pcbt_ioctl(fd, PCB_IOC_UNSUBSCRIBE, &s);
}

/*
 * A ring and the raw consumer of the barrier table in <linux/pcb.h>.
 * @pos is the local consumer position: records below it are consumed but
 * only handed back to the kernel by pcbt_ring_release().
 */
struct pcbt_ring {
	int fd;
	struct pcb_ring_setup setup;
	struct pcb_ring_consumer *cons;
	const struct pcb_ring_header *hdr;
	const unsigned char *data;	/* 2 * size bytes */
	__u64 size;
	__u64 pos;
	__u64 next_size;		/* of the record pcbt_ring_peek() gave */
	__u64 discarded;		/* DISCARD records skipped */
	const char *corrupt;		/* why the ring made no sense */
};

static inline int pcbt_ring_setup(int fd, __u32 size, struct pcb_ring_setup *rs)
{
	memset(rs, 0, sizeof(*rs));
	rs->data_size = size;
	return pcbt_ioctl(fd, PCB_IOC_RING_SETUP, rs);
}

static inline void *pcbt_mmap(int fd, size_t len, int prot, int flags,
			      __u64 off)
{
	return mmap(NULL, len, prot, flags, fd, (off_t)off);
}

/* Maps the consumer page RW, the header and the doubled data area RO. */
static inline int pcbt_ring_map(int fd, const struct pcb_ring_setup *rs,
				struct pcbt_ring *r)
{
	void *cons, *hdr, *data;

	memset(r, 0, sizeof(*r));
	r->fd = fd;
	r->setup = *rs;
	r->size = rs->data_size;
	cons = pcbt_mmap(fd, rs->page_size, PROT_READ | PROT_WRITE,
			 MAP_SHARED, rs->cons_offset);
	if (cons == MAP_FAILED)
		return -errno;
	hdr = pcbt_mmap(fd, rs->page_size, PROT_READ, MAP_SHARED,
			rs->header_offset);
	if (hdr == MAP_FAILED) {
		int ret = -errno;

		munmap(cons, rs->page_size);
		return ret;
	}
	data = pcbt_mmap(fd, 2 * r->size, PROT_READ, MAP_SHARED,
			 rs->data_offset);
	if (data == MAP_FAILED) {
		int ret = -errno;

		munmap(cons, rs->page_size);
		munmap(hdr, rs->page_size);
		return ret;
	}
	r->cons = cons;
	r->hdr = hdr;
	r->data = data;
	r->pos = pcbt_load_acquire(&r->cons->cons_pos);
	return 0;
}

static inline int pcbt_ring_init(int fd, __u32 size, struct pcbt_ring *r)
{
	struct pcb_ring_setup rs;
	int ret = pcbt_ring_setup(fd, size, &rs);

	if (ret) {
		memset(r, 0, sizeof(*r));
		r->fd = -1;
		return ret;
	}
	return pcbt_ring_map(fd, &rs, r);
}

static inline void pcbt_ring_unmap(struct pcbt_ring *r)
{
	if (r->cons)
		munmap(r->cons, r->setup.page_size);
	if (r->hdr)
		munmap((void *)r->hdr, r->setup.page_size);
	if (r->data)
		munmap((void *)r->data, 2 * r->size);
	r->cons = NULL;
	r->hdr = NULL;
	r->data = NULL;
}

/* An endpoint with a mapped ring; its fd or -errno. */
static inline int pcbt_ring_open(__u32 size, struct pcbt_ring *r)
{
	int fd = pcbt_open();
	int ret;

	if (fd < 0)
		return fd;
	ret = pcbt_ring_init(fd, size, r);
	if (ret) {
		close(fd);
		return ret;
	}
	return fd;
}

static inline void pcbt_ring_close(struct pcbt_ring *r)
{
	pcbt_ring_unmap(r);
	if (r->fd >= 0)
		close(r->fd);
	r->fd = -1;
}

static inline const struct pcb_record *pcbt_ring_at(const struct pcbt_ring *r,
						    __u64 pos)
{
	return (const void *)(r->data + (pos & (r->size - 1)));
}

static inline const unsigned char *pcbt_payload(const struct pcb_record *rec)
{
	return (const unsigned char *)rec + rec->hdr_len;
}

static inline __u64 pcbt_prod_pos(const struct pcbt_ring *r)
{
	return pcbt_load_acquire(&r->hdr->prod_pos);
}

static inline __u32 pcbt_ring_flags(const struct pcbt_ring *r)
{
	return pcbt_load_acquire(&r->hdr->flags);
}

/*
 * The next complete record at r->pos, or NULL when the ring is empty or
 * the next record is still BUSY.  DISCARD records are stepped over.
 */
static inline const struct pcb_record *pcbt_ring_peek(struct pcbt_ring *r)
{
	/* A: pairs with the kernel's release of prod_pos (1). */
	__u64 prod = pcbt_load_acquire(&r->hdr->prod_pos);

	if (prod - r->pos > r->size) {
		r->corrupt = "prod_pos more than data_size ahead";
		return NULL;
	}
	while (r->pos != prod) {
		const struct pcb_record *rec = pcbt_ring_at(r, r->pos);
		/* B: pairs with the kernel's release of rec->len (2). */
		__u32 len = pcbt_load_acquire(&rec->len);
		__u64 size = PCB_REC_SIZE(len);

		if (len & PCB_REC_BUSY)
			return NULL;
		if (size < PCB_REC_ALIGN || size > prod - r->pos) {
			r->corrupt = "record length out of range";
			return NULL;
		}
		if (!(len & PCB_REC_DISCARD)) {
			if ((len & PCB_REC_LEN_MASK) < sizeof(*rec)) {
				r->corrupt = "record shorter than its header";
				return NULL;
			}
			r->next_size = size;
			return rec;
		}
		r->pos += size;
		r->discarded++;
	}
	return NULL;
}

/* Consumes the record pcbt_ring_peek() returned (locally). */
static inline void pcbt_ring_pop(struct pcbt_ring *r)
{
	r->pos += r->next_size;
	r->next_size = 0;
}

/* C only: hand the consumed bytes back, without waking publishers. */
static inline void pcbt_ring_store_cons(struct pcbt_ring *r)
{
	/* C: pairs with the kernel's acquire of cons_pos (3). */
	pcbt_store_release(&r->cons->cons_pos, r->pos);
}

/* C and E: hand the bytes back and wake a publisher waiting for room. */
static inline int pcbt_ring_release(struct pcbt_ring *r)
{
	pcbt_ring_store_cons(r);
	/* E: pairs with the publisher's barrier after PUB_WAITING (5). */
	pcbt_smp_mb();
	if (pcbt_load_once(&r->hdr->flags) & PCB_RING_PUB_WAITING)
		return pcbt_ioctl_val(r->fd, PCB_IOC_NOTIFY, 0);
	return 0;
}

/*
 * D: sleep until a record is pending.  Releases what was consumed first,
 * as PCB_IOC_WAIT returns at once while prod_pos != cons_pos.
 */
static inline int pcbt_ring_wait(struct pcbt_ring *r, __u64 timeout_ns)
{
	struct pcb_wait w = { .timeout_ns = timeout_ns };
	int ret = 0;

	pcbt_ring_store_cons(r);
	__atomic_fetch_or(&r->cons->flags, PCB_CONS_NEED_WAKEUP,
			  __ATOMIC_RELAXED);
	/* D: pairs with the kernel's barrier before testing NEED_WAKEUP (4). */
	pcbt_smp_mb();
	if (!pcbt_ring_peek(r))
		ret = pcbt_ioctl(r->fd, PCB_IOC_WAIT, &w);
	__atomic_fetch_and(&r->cons->flags, ~PCB_CONS_NEED_WAKEUP,
			   __ATOMIC_RELAXED);
	return ret;
}

/* The next record, sleeping up to @timeout_ns for it; NULL on timeout. */
static inline const struct pcb_record *pcbt_ring_next(struct pcbt_ring *r,
						      __u64 timeout_ns)
{
	__u64 deadline = pcbt_now_ns(CLOCK_MONOTONIC) + timeout_ns;
	const struct pcb_record *rec;

	while (!(rec = pcbt_ring_peek(r)) && !r->corrupt) {
		__u64 now = pcbt_now_ns(CLOCK_MONOTONIC);
		int ret;

		if (now >= deadline)
			return NULL;
		ret = pcbt_ring_wait(r, deadline - now);
		if (ret && ret != -ETIMEDOUT && ret != -EINTR)
			return NULL;
	}
	return rec;
}

/* Consumes and releases every complete record; returns how many. */
static inline unsigned int pcbt_ring_drain(struct pcbt_ring *r)
{
	unsigned int n = 0;

	while (pcbt_ring_peek(r)) {
		pcbt_ring_pop(r);
		n++;
	}
	pcbt_ring_release(r);
	return n;
}

/*
 * Filters.  struct pcb_filter ends in a flexible array; the union gives it
 * room for one predicate more than the ABI allows, so that a test can also
 * pass too many.
 */
union pcbt_filter {
	struct pcb_filter f;
	unsigned char room[sizeof(struct pcb_filter) +
			   (PCB_FILTER_MAX_PREDS + 1) *
			   sizeof(struct pcb_filter_pred)];
};

static inline void pcbt_filter_init(union pcbt_filter *f)
{
	memset(f, 0, sizeof(*f));
}

/* Appends a predicate on a header field; returns it for adjusting. */
static inline struct pcb_filter_pred *pcbt_pred(union pcbt_filter *f,
						__u8 field, __u8 op,
						__u64 value)
{
	struct pcb_filter_pred *p = &f->f.preds[f->f.nr_preds++];

	memset(p, 0, sizeof(*p));
	p->field = field;
	p->op = op;
	p->value = value;
	return p;
}

/* Appends a predicate on @width payload bytes at @offset. */
static inline struct pcb_filter_pred *pcbt_pred_payload(union pcbt_filter *f,
							__u8 width,
							__u32 offset, __u8 op,
							__u64 value)
{
	struct pcb_filter_pred *p = pcbt_pred(f, PCB_FIELD_PAYLOAD, op, value);

	p->width = width;
	p->offset = offset;
	return p;
}

/* @filter is a user pointer (or NULL), so that tests can pass bad ones. */
static inline int pcbt_subscribe_filter(int fd, const char *name, __u64 schema,
					__u32 flags, const void *filter,
					__u32 *topic_id)
{
	struct pcb_subscribe s = {
		.schema_id = schema,
		.flags = flags,
		.filter = (uintptr_t)filter,
	};
	int ret;

	pcbt_copy_name(s.name, name);
	ret = pcbt_ioctl(fd, PCB_IOC_SUBSCRIBE, &s);
	if (!ret && topic_id)
		*topic_id = s.topic_id;
	return ret;
}

static inline int pcbt_set_filter(int fd, __u32 topic_id, const void *filter)
{
	struct pcb_sub_filter sf = {
		.topic_id = topic_id,
		.filter = (uintptr_t)filter,
	};

	return pcbt_ioctl(fd, PCB_IOC_SET_FILTER, &sf);
}

static inline int pcbt_sub_info(int fd, __u32 topic_id,
				struct pcb_sub_info *info)
{
	memset(info, 0, sizeof(*info));
	info->topic_id = topic_id;
	return pcbt_ioctl(fd, PCB_IOC_SUB_INFO, info);
}

/* Publishes with dependencies; @out (may be NULL) gets msg_id and seq. */
static inline int pcbt_publish_deps(int fd, __u32 handle, const void *buf,
				    __u32 len, __u64 key, const __u64 *deps,
				    __u32 nr_deps, __u32 flags,
				    struct pcb_publish *out)
{
	struct pcb_publish p = {
		.handle = handle,
		.flags = flags,
		.payload = (uintptr_t)buf,
		.len = len,
		.key = key,
		.nr_deps = nr_deps,
		.deps = (uintptr_t)deps,
	};
	int ret = pcbt_ioctl(fd, PCB_IOC_PUBLISH, &p);

	if (out)
		*out = p;
	return ret;
}

/* The dependencies a record carries, between its header and payload. */
static inline const __u64 *pcbt_rec_deps(const struct pcb_record *rec)
{
	return (const __u64 *)(rec + 1);
}

/*
 * Bad user memory.  pcbt_no_access_page(): a page that can be neither
 * read nor written.  pcbt_guarded_page(): a readable and writable page
 * followed by one that is not, so that an object placed at its end runs
 * into the second one.  NULL when mmap() fails.
 */
static inline void *pcbt_no_access_page(void)
{
	void *p = mmap(NULL, 4096, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1,
		       0);

	return p == MAP_FAILED ? NULL : p;
}

static inline void *pcbt_guarded_page(void)
{
	char *p = mmap(NULL, 8192, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED)
		return NULL;
	if (mprotect(p + 4096, 4096, PROT_NONE)) {
		munmap(p, 8192);
		return NULL;
	}
	return p;
}

/*
 * Seeded randomness for property-style tests: PCB_TEST_SEED reproduces a
 * run; otherwise the seed comes from the clock.  Tests print the seed.
 */
static inline __u64 pcbt_seed(void)
{
	const char *s = getenv("PCB_TEST_SEED");

	if (s && *s)
		return strtoull(s, NULL, 0);
	return pcbt_now_ns(CLOCK_REALTIME) ^ ((__u64)getpid() << 32);
}

/* splitmix64: small, and good enough to pick test steps. */
static inline __u64 pcbt_rand(__u64 *state)
{
	__u64 z = (*state += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

/* A number in [0, n), n > 0. */
static inline __u64 pcbt_rand_below(__u64 *state, __u64 n)
{
	return pcbt_rand(state) % n;
}

/*
 * Running a function with other credentials.  The child gets a fresh
 * endpoint when the device lets it open one, else it keeps the one its
 * parent opened: permission checks use the caller's credentials either
 * way.  @fn returns a small status (an errno, or 0); PCBT_CHILD_BROKEN
 * says the child could not even start.
 */
#define PCBT_CHILD_BROKEN	250

struct pcbt_creds {
	uid_t uid;
	gid_t gid;
	int nr_groups;
	gid_t groups[4];
};

static inline int pcbt_child_fd(int inherited)
{
	int fd = pcbt_open();

	return fd >= 0 ? fd : inherited;
}

static inline int pcbt_drop_to(const struct pcbt_creds *c)
{
	if (setgroups(c->nr_groups, c->groups))
		return -errno;
	if (setresgid(c->gid, c->gid, c->gid))
		return -errno;
	if (setresuid(c->uid, c->uid, c->uid))
		return -errno;
	return 0;
}

static inline int pcbt_run_as(const struct pcbt_creds *c,
			      int (*fn)(void *arg), void *arg)
{
	int status;
	pid_t pid;

	fflush(stdout);
	fflush(stderr);
	pid = fork();
	if (pid < 0)
		return -errno;
	if (!pid) {
		if (pcbt_drop_to(c))
			_exit(PCBT_CHILD_BROKEN);
		_exit(fn(arg) & 0xff);
	}
	if (waitpid(pid, &status, 0) != pid)
		return -errno;
	if (!WIFEXITED(status))
		return -ECHILD;
	return WEXITSTATUS(status);
}

static inline int pcbt_run_as_nobody(int (*fn)(void *arg), void *arg)
{
	struct pcbt_creds c = { .uid = PCBT_NOBODY, .gid = PCBT_NOBODY };

	return pcbt_run_as(&c, fn, arg);
}

/*
 * For code that runs in a child process, where the harness' ASSERT_*
 * cannot be used: print what went wrong and return a non-zero status.
 */
#define PCBT_CHILD_EXPECT(expected, seen) do {				\
	long long __e = (expected), __s = (seen);			\
	if (__e != __s) {						\
		fprintf(stderr, "# %s:%d: child uid %d: expected %s (%lld) got %s (%lld)\n", \
			__FILE__, __LINE__, (int)geteuid(), #expected,	\
			__e, #seen, __s);				\
		return 1;						\
	}								\
} while (0)

static inline void pcbt_on_alarm(int sig)
{
	(void)sig;
}

/*
 * SIGALRM in @ms milliseconds, with a handler installed without
 * SA_RESTART: a system call waiting then comes back with EINTR.
 */
static inline int pcbt_alarm_in(unsigned int ms)
{
	struct sigaction sa = { .sa_handler = pcbt_on_alarm };
	struct itimerval it = {
		.it_value = {
			.tv_sec = ms / 1000,
			.tv_usec = (ms % 1000) * 1000,
		},
	};

	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGALRM, &sa, NULL) || setitimer(ITIMER_REAL, &it, NULL))
		return -errno;
	return 0;
}

#endif /* PCB_SELFTEST_UTIL_H */
