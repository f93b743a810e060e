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
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
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

#include <linux/capability.h>
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
 * D: sleep until the record at r->pos is complete.  Releases what was
 * consumed first, as PCB_IOC_WAIT returns at once while the record at
 * cons_pos is complete.
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

/*
 * Small files of /proc and /sys.  pcbt_write_file(): 0 or -errno.
 * pcbt_read_file(): bytes read (NUL-terminated) or -errno.
 */
static inline int pcbt_write_file(const char *path, const char *text)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	ssize_t len = strlen(text);
	int ret = 0;

	if (fd < 0)
		return -errno;
	if (write(fd, text, len) != len)
		ret = errno ? -errno : -EIO;
	close(fd);
	return ret;
}

static inline int pcbt_read_file(const char *path, char *buf, size_t size)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	size_t len = 0;
	ssize_t n = 0;

	if (fd < 0)
		return -errno;
	while (len + 1 < size && (n = read(fd, buf + len, size - 1 - len)) > 0)
		len += n;
	n = n < 0 ? -errno : 0;
	close(fd);
	buf[len] = '\0';
	return n < 0 ? (int)n : (int)len;
}

/*
 * /proc/pcb/usage: what the module holds over all buses, one "name value"
 * line per count, in this order.  Root only.
 */
enum {
	PCBT_U_BUSES,
	PCBT_U_TOPICS,
	PCBT_U_ENDPOINTS,
	PCBT_U_SUBSCRIPTIONS,
	PCBT_U_HANDLES,
	PCBT_U_RINGS,
	PCBT_U_RING_PAGES,
	PCBT_U_FILTERS,
	PCBT_U_USERS,
	PCBT_U_NR,
};

static const char *const pcbt_usage_names[PCBT_U_NR] = {
	"buses", "topics", "endpoints", "subscriptions", "handles", "rings",
	"ring_pages", "filters", "users",
};

#define PCBT_USAGE_PATH		"/proc/pcb/usage"

struct pcbt_usage {
	long long v[PCBT_U_NR];
};

/* 0, -errno of the read, or -EPROTO when the file is not as documented. */
static inline int pcbt_usage_read(struct pcbt_usage *u)
{
	char buf[1024], *line, *save = NULL;
	unsigned int i = 0;
	int ret = pcbt_read_file(PCBT_USAGE_PATH, buf, sizeof(buf));

	if (ret < 0)
		return ret;
	for (line = strtok_r(buf, "\n", &save); line;
	     line = strtok_r(NULL, "\n", &save), i++) {
		char name[32], end;

		if (i >= PCBT_U_NR ||
		    sscanf(line, "%31s %lld%c", name, &u->v[i], &end) != 2 ||
		    strcmp(name, pcbt_usage_names[i]) || u->v[i] < 0)
			return -EPROTO;
	}
	return i == PCBT_U_NR ? 0 : -EPROTO;
}

/* "name a->b" for every count that differs, for a failure message. */
static inline const char *pcbt_usage_diff(const struct pcbt_usage *a,
					  const struct pcbt_usage *b,
					  char *buf, size_t size)
{
	size_t len = 0;
	unsigned int i;

	buf[0] = '\0';
	for (i = 0; i < PCBT_U_NR && len < size; i++)
		if (a->v[i] != b->v[i])
			len += snprintf(buf + len, size - len, " %s %lld->%lld",
					pcbt_usage_names[i], a->v[i], b->v[i]);
	return buf;
}

static inline bool pcbt_usage_equal(const struct pcbt_usage *a,
				    const struct pcbt_usage *b)
{
	return !memcmp(a, b, sizeof(*a));
}

/*
 * Rings (and what an endpoint holds) are freed after an RCU grace period
 * and a work item, so a count expected to drop is polled for: until
 * usage->v[@idx] == @want (any @idx < 0: until all of @want), up to
 * @timeout_ms.  @now (may be NULL) gets the last reading.  0, -ETIMEDOUT
 * or a read error.
 */
static inline int pcbt_usage_wait(const struct pcbt_usage *want, int idx,
				  unsigned int timeout_ms,
				  struct pcbt_usage *now)
{
	__u64 deadline = pcbt_now_ns(CLOCK_MONOTONIC) + timeout_ms * PCBT_MS;
	struct pcbt_usage u = { { 0 } };
	int ret;

	for (;;) {
		ret = pcbt_usage_read(&u);
		if (now)
			*now = u;
		if (ret)
			return ret;
		if (idx < 0 ? pcbt_usage_equal(&u, want) :
			      u.v[idx] == want->v[idx])
			return 0;
		if (pcbt_now_ns(CLOCK_MONOTONIC) > deadline)
			return -ETIMEDOUT;
		pcbt_sleep_ms(10);
	}
}

/*
 * A baseline: earlier tests' rings and endpoints may still be on their
 * way out (RCU-deferred), so wait until the counts hold still for
 * @stable_ms (at most @timeout_ms), and return that reading.
 */
static inline int pcbt_usage_quiesce(struct pcbt_usage *u,
				     unsigned int stable_ms,
				     unsigned int timeout_ms)
{
	__u64 now = pcbt_now_ns(CLOCK_MONOTONIC);
	__u64 deadline = now + timeout_ms * PCBT_MS;
	__u64 since = now;
	struct pcbt_usage prev;
	int ret = pcbt_usage_read(&prev);

	while (!ret) {
		pcbt_sleep_ms(20);
		ret = pcbt_usage_read(u);
		if (ret)
			break;
		now = pcbt_now_ns(CLOCK_MONOTONIC);
		if (!pcbt_usage_equal(u, &prev))
			since = now;
		else if (now - since >= stable_ms * PCBT_MS)
			return 0;
		if (now > deadline)
			return -ETIMEDOUT;
		prev = *u;
	}
	return ret;
}

/*
 * Module parameters a test may change.  A test writes them with
 * pcbt_param_push() and its teardown calls pcbt_params_restore(), which
 * puts back the value each had when the test program started (or, if
 * that is unknown, before the first push), also after a failed ASSERT.
 * A test program that defines PCBT_GUARD_PARAMS before including this
 * file also restores them when it exits, so that a test the harness had
 * to kill does not leave the module misconfigured for the next one.
 */
static const char *const pcbt_param_names[] = {
	"max_topics", "max_subscribers", "max_endpoints",
	"max_endpoints_per_user", "max_ring_size", "max_msg_size",
	"fail_nth", "max_subscriptions_per_user", "max_handles_per_user",
	"max_buses_per_user",
};
#define PCBT_NR_PARAMS	ARRAY_SIZE(pcbt_param_names)

struct pcbt_param_state {
	bool known;		/* @orig holds the value to restore */
	bool dirty;		/* pushed since the last restore */
	unsigned long long orig;
};

static struct pcbt_param_state pcbt_params[PCBT_NR_PARAMS];

static inline int pcbt_param_index(const char *name)
{
	unsigned int i;

	for (i = 0; i < PCBT_NR_PARAMS; i++)
		if (!strcmp(pcbt_param_names[i], name))
			return i;
	return -1;
}

/* Reads a parameter: 0 or -errno. */
static inline int pcbt_param_get(const char *name, unsigned long long *val)
{
	char path[128], buf[64], *end;
	int ret;

	snprintf(path, sizeof(path), "/sys/module/pcb/parameters/%s", name);
	ret = pcbt_read_file(path, buf, sizeof(buf));
	if (ret < 0)
		return ret;
	errno = 0;
	*val = strtoull(buf, &end, 0);
	if (errno || end == buf)
		return -EPROTO;
	return 0;
}

/* Writes @val, remembering the value to restore: 0 or -errno. */
static inline int pcbt_param_push(const char *name, unsigned long long val)
{
	int i = pcbt_param_index(name);
	struct pcbt_param_state *p;

	if (i < 0)
		return -EINVAL;
	p = &pcbt_params[i];
	if (!p->known) {
		int ret = pcbt_param_get(name, &p->orig);

		if (ret)
			return ret;
		/* fail_nth always goes back to 0. */
		if (!strcmp(name, "fail_nth"))
			p->orig = 0;
		p->known = true;
	}
	p->dirty = true;
	return pcbt_set_param(name, val);
}

/* Puts back every pushed parameter: 0 or the first -errno. */
static inline int pcbt_params_restore(void)
{
	unsigned int i;
	int ret = 0;

	for (i = 0; i < PCBT_NR_PARAMS; i++) {
		struct pcbt_param_state *p = &pcbt_params[i];
		int err;

		if (!p->dirty)
			continue;
		err = pcbt_set_param(pcbt_param_names[i], p->orig);
		if (err && !ret)
			ret = err;
		if (!err)
			p->dirty = false;
	}
	return ret;
}

#ifdef PCBT_GUARD_PARAMS
static pid_t pcbt_guard_pid;

static void __attribute__((constructor)) pcbt_guard_params_init(void)
{
	unsigned int i;

	if (geteuid() != 0)
		return;
	pcbt_guard_pid = getpid();
	for (i = 0; i < PCBT_NR_PARAMS; i++) {
		struct pcbt_param_state *p = &pcbt_params[i];

		p->known = !pcbt_param_get(pcbt_param_names[i], &p->orig);
		if (!strcmp(pcbt_param_names[i], "fail_nth"))
			p->orig = 0;
	}
}

static void __attribute__((destructor)) pcbt_guard_params_fini(void)
{
	unsigned int i;

	if (!pcbt_guard_pid || getpid() != pcbt_guard_pid)
		return;
	for (i = 0; i < PCBT_NR_PARAMS; i++) {
		unsigned long long now;

		if (pcbt_params[i].known &&
		    !pcbt_param_get(pcbt_param_names[i], &now) &&
		    now != pcbt_params[i].orig)
			pcbt_set_param(pcbt_param_names[i],
				       pcbt_params[i].orig);
	}
}
#endif

/* Whether capability @cap is in the caller's effective set. */
static inline bool pcbt_has_cap(int cap)
{
	struct __user_cap_header_struct hdr = {
		.version = _LINUX_CAPABILITY_VERSION_3,
	};
	struct __user_cap_data_struct data[2] = { { 0 } };

	if (syscall(SYS_capget, &hdr, data))
		return false;
	return data[cap / 32].effective & (1U << (cap % 32));
}

/* Lowers RLIMIT_MEMLOCK (soft and hard) to @bytes: 0 or -errno. */
static inline int pcbt_set_memlock(unsigned long long bytes)
{
	struct rlimit rl = { .rlim_cur = bytes, .rlim_max = bytes };

	return setrlimit(RLIMIT_MEMLOCK, &rl) ? -errno : 0;
}

/*
 * User namespaces.  pcbt_userns_self(): unshare a new user namespace
 * (with @flags: more namespaces at once) and map its uid and gid 0 to
 * the caller's, as an unprivileged process can.  pcbt_userns_map(): a
 * privileged parent writes the maps of process @pid ("inner outer
 * count" lines).  0 or -errno; -EPERM from unshare() means user
 * namespaces cannot be made here (a chroot, a sysctl): tests skip.
 */
static inline int pcbt_userns_self(int flags)
{
	uid_t uid = geteuid();
	gid_t gid = getegid();
	char map[64];
	int ret;

	if (unshare(CLONE_NEWUSER | flags))
		return -errno;
	/*
	 * A process that changed its ids (root that dropped to another
	 * user) is not dumpable: its /proc files are root's and it could
	 * not write its own maps.
	 */
	if (prctl(PR_SET_DUMPABLE, 1))
		return -errno;
	ret = pcbt_write_file("/proc/self/setgroups", "deny");
	if (ret)
		return ret;
	snprintf(map, sizeof(map), "0 %u 1", (unsigned int)uid);
	ret = pcbt_write_file("/proc/self/uid_map", map);
	if (ret)
		return ret;
	snprintf(map, sizeof(map), "0 %u 1", (unsigned int)gid);
	return pcbt_write_file("/proc/self/gid_map", map);
}

static inline int pcbt_userns_map(pid_t pid, const char *uid_map,
				  const char *gid_map)
{
	char path[64];
	int ret;

	snprintf(path, sizeof(path), "/proc/%d/uid_map", (int)pid);
	ret = pcbt_write_file(path, uid_map);
	if (ret)
		return ret;
	snprintf(path, sizeof(path), "/proc/%d/gid_map", (int)pid);
	return pcbt_write_file(path, gid_map);
}

/*
 * An agent: a child process, with other credentials if asked, that runs
 * functions for the test one at a time and keeps what they leave behind
 * (open endpoints, rings, namespaces) between calls, so that a test can
 * have several users hold resources at once.  A call sends the function
 * and a copy of @arg; the agent runs fn(its copy) and sends back the
 * return value and the copy, which pcbt_agent_call() writes over @arg.
 * Function pointers stay valid in the child: it is a fork.  The agent
 * dies with the test (PR_SET_PDEATHSIG).
 */
#define PCBT_AGENT_ARG_MAX	1024
#define PCBT_AGENT_DEAD		INT_MIN

struct pcbt_agent {
	pid_t pid;
	int to;			/* calls to the agent */
	int from;		/* answers from it */
};

struct pcbt_agent_msg {
	int (*fn)(void *arg);
	int ret;
	unsigned int len;
	unsigned char arg[PCBT_AGENT_ARG_MAX];
};

static inline int pcbt_xfer(int fd, void *buf, size_t len, bool out)
{
	unsigned char *p = buf;

	while (len) {
		ssize_t n = out ? write(fd, p, len) : read(fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -EPIPE;
		p += n;
		len -= n;
	}
	return 0;
}

static inline void pcbt_agent_loop(int in, int out)
{
	struct pcbt_agent_msg m;

	while (!pcbt_xfer(in, &m, sizeof(m), false)) {
		m.ret = m.fn(m.arg);
		if (pcbt_xfer(out, &m, sizeof(m), true))
			break;
	}
	_exit(0);
}

/* @c: the credentials to drop to, or NULL to keep the caller's. */
static inline int pcbt_agent_start(struct pcbt_agent *a,
				   const struct pcbt_creds *c)
{
	int to[2], from[2];
	pid_t parent = getpid();

	a->pid = -1;
	a->to = a->from = -1;
	if (pipe2(to, O_CLOEXEC))
		return -errno;
	if (pipe2(from, O_CLOEXEC)) {
		close(to[0]);
		close(to[1]);
		return -errno;
	}
	fflush(stdout);
	fflush(stderr);
	a->pid = fork();
	if (a->pid < 0) {
		int ret = -errno;

		close(to[0]);
		close(to[1]);
		close(from[0]);
		close(from[1]);
		return ret;
	}
	if (!a->pid) {
		close(to[1]);
		close(from[0]);
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent)
			_exit(0);
		if (c && pcbt_drop_to(c))
			_exit(PCBT_CHILD_BROKEN);
		pcbt_agent_loop(to[0], from[1]);
	}
	close(to[0]);
	close(from[1]);
	a->to = to[1];
	a->from = from[0];
	return 0;
}

/* fn's return value, or PCBT_AGENT_DEAD when the agent is gone. */
static inline int pcbt_agent_call(struct pcbt_agent *a, int (*fn)(void *arg),
				  void *arg, size_t len)
{
	struct pcbt_agent_msg m;

	if (a->pid <= 0 || len > sizeof(m.arg))
		return PCBT_AGENT_DEAD;
	memset(&m, 0, sizeof(m));
	m.fn = fn;
	m.len = len;
	if (len)
		memcpy(m.arg, arg, len);
	if (pcbt_xfer(a->to, &m, sizeof(m), true) ||
	    pcbt_xfer(a->from, &m, sizeof(m), false))
		return PCBT_AGENT_DEAD;
	if (len)
		memcpy(arg, m.arg, len);
	return m.ret;
}

/*
 * Ends the agent (it exits when its call pipe closes; killed if it does
 * not within a second) and reaps it: everything it held is released.
 */
static inline void pcbt_agent_stop(struct pcbt_agent *a)
{
	int i;

	if (a->to >= 0)
		close(a->to);
	if (a->from >= 0)
		close(a->from);
	a->to = a->from = -1;
	if (a->pid <= 0)
		return;
	for (i = 0; i < 100; i++) {
		if (waitpid(a->pid, NULL, WNOHANG) == a->pid)
			break;
		pcbt_sleep_ms(10);
	}
	if (i == 100) {
		kill(a->pid, SIGKILL);
		waitpid(a->pid, NULL, 0);
	}
	a->pid = -1;
}

#endif /* PCB_SELFTEST_UTIL_H */
