// SPDX-License-Identifier: GPL-2.0
/*
 * A seeded fuzzer for /dev/pcb.
 *
 * A supervisor forks NR_PROCS worker processes of NR_THREADS threads each.
 * Every thread runs a random sequence of operations on /dev/pcb: endpoints
 * opened, duplicated, inherited by short-lived children and closed while
 * other threads use them; topics created, deleted, opened, listed and
 * looked up from a small pool of names, so that operations collide; rings
 * set up, mapped and unmapped in pieces, consumed (every record's
 * structure checked), and broken by random consumer positions;
 * subscriptions with valid and invalid filters; publishes through ioctl,
 * batches and io_uring; waits, polls, garbage commands and garbage
 * arguments; and now and then a sibling process killed with SIGKILL and
 * respawned.
 *
 * Every result must be success or an errno that uapi/linux/pcb.h documents
 * for that call; anything else is a failure, printed with the operation,
 * the errno and the seed.
 *
 * Environment:
 *  PCB_FUZZ_SEED     the seed (default: from the clock; always printed)
 *  PCB_FUZZ_SECONDS  wall time of the run (default 20)
 *  PCB_FUZZ_ITERS    optional cap on the operations of the whole run
 *  PCB_FUZZ_KILL     one kill operation in this many kills (default 100)
 *  PCB_FUZZ_SKIP     operations to leave out, by name, comma-separated
 *                    (default: none)
 *
 * The op sequence of each thread is reproducible from the seed (each
 * thread's generator is derived from the seed, its process slot, the
 * slot's respawn count and its thread index); the interleaving of the
 * threads and processes, and so the results, are not.
 *
 * As root, the workers run in a fresh IPC namespace (one of them as uid
 * 65534), and after they are gone /proc/pcb/usage must be back at the
 * baseline taken before the run: the namespace's bus and everything in it
 * must have been freed.
 */
#include "pcb_util.h"
#include "pcb_uring.h"

#include <grp.h>
#include <poll.h>
#include <sched.h>
#include <stddef.h>
#include <sys/resource.h>
#include <sys/wait.h>

#define NR_PROCS	3
#define NR_THREADS	3
#define NR_SLOTS	8	/* endpoint fds per process */
#define NR_MAPS		12	/* mappings per process */
#define NR_HANDLES	16	/* publish handles per process */
#define NR_IDS		16	/* topic ids seen, per process */
#define NR_NAMES	6	/* topic names shared by everyone */
#define NR_MSGIDS	16	/* recent message ids, per thread */
#define PAYLOAD_MAX	(64 * 1024)
#define NR_ERRNO	150
#define SHORT_NS	(2 * PCBT_MS)	/* timeouts of publishes and waits */
#define CQE_WAIT_MS	10000
#define LEAK_WAIT_S	20

/* One shared description of every operation: name and allowed errnos. */
enum op {
	OP_OPEN, OP_CLOSE, OP_DUP, OP_FORK,
	OP_CREATE, OP_DELETE, OP_INFO, OP_LIST, OP_TOPEN, OP_TCLOSE,
	OP_PUBLISH, OP_BATCH, OP_URING,
	OP_RING_SETUP, OP_MMAP_RING, OP_MMAP_JUNK, OP_MUNMAP, OP_MPROTECT,
	OP_SUBSCRIBE, OP_UNSUBSCRIBE, OP_SET_FILTER, OP_SUB_INFO, OP_STATS,
	OP_NOTIFY, OP_WAIT, OP_POLL, OP_CONSUME, OP_CONS_WRITE,
	OP_BAD_CMD, OP_BAD_ARG, OP_KILL, OP_VMA,
	NR_OPS
};

#define E(...) ((const int []){ __VA_ARGS__, 0 })

/* Errors of a publish, single or in a batch (uapi: struct pcb_publish). */
#define PUB_ERRS EBADF, EIDRM, EMSGSIZE, EAGAIN, ETIMEDOUT, EINTR, EFAULT, EINVAL

static const struct op_desc {
	const char *name;
	unsigned int weight;
	const int *errs;
} ops[NR_OPS] = {
	[OP_OPEN]	 = { "open", 4, E(ENFILE, EMFILE, ENOMEM) },
	[OP_CLOSE]	 = { "close", 3, E(0) },
	[OP_DUP]	 = { "dup", 2, E(EMFILE) },
	[OP_FORK]	 = { "fork", 1, E(EAGAIN, ENOMEM) },
	[OP_CREATE]	 = { "topic_create", 4, E(EEXIST, ENOMEM, ENOSPC, EDQUOT,
				EINVAL, EFAULT, ENAMETOOLONG, EPERM) },
	[OP_DELETE]	 = { "topic_delete", 2, E(ENOENT, EPERM, EINVAL, EFAULT,
				ENAMETOOLONG) },
	[OP_INFO]	 = { "topic_info", 2, E(ENOENT, EINVAL, EFAULT,
				ENAMETOOLONG) },
	[OP_LIST]	 = { "topic_list", 2, E(EINVAL, EFAULT) },
	[OP_TOPEN]	 = { "topic_open", 6, E(ENOENT, EACCES, EPROTOTYPE, EMFILE,
				EINVAL, ENAMETOOLONG, EFAULT, ENOMEM) },
	[OP_TCLOSE]	 = { "topic_close", 1, E(EBADF, EINVAL, EFAULT) },
	[OP_PUBLISH]	 = { "publish", 12, E(PUB_ERRS) },
	[OP_BATCH]	 = { "publish_batch", 4, E(PUB_ERRS, E2BIG) },
	[OP_URING]	 = { "uring_publish", 5, E(PUB_ERRS, ENOTTY) },
	[OP_RING_SETUP]	 = { "ring_setup", 6, E(EINVAL, EBUSY, ENOMEM, EFAULT) },
	[OP_MMAP_RING]	 = { "mmap_ring", 4, E(EPERM, EINVAL, EBADFD, ENOMEM) },
	[OP_MMAP_JUNK]	 = { "mmap_junk", 2, E(EPERM, EINVAL, EBADFD, ENOMEM,
				EACCES) },
	[OP_MUNMAP]	 = { "munmap", 2, E(0) },
	[OP_MPROTECT]	 = { "mprotect_rw", 1, E(EACCES) },
	[OP_SUBSCRIBE]	 = { "subscribe", 8, E(EACCES, EBADFD, ENOSPC, EINVAL,
				EALREADY, EDQUOT, ENOENT, EPROTOTYPE,
				ENAMETOOLONG, EFAULT, EPIPE, ENOMEM) },
	[OP_UNSUBSCRIBE] = { "unsubscribe", 2, E(ENOENT, EINVAL, EBADFD,
				EFAULT) },
	[OP_SET_FILTER]	 = { "set_filter", 2, E(ENOENT, EBADFD, EINVAL, EFAULT,
				ENOMEM) },
	[OP_SUB_INFO]	 = { "sub_info", 2, E(ENOENT, EBADFD, EINVAL, EFAULT) },
	[OP_STATS]	 = { "stats", 2, E(ENOENT, EINVAL, EFAULT) },
	[OP_NOTIFY]	 = { "notify", 2, E(EBADFD, EINVAL) },
	[OP_WAIT]	 = { "wait", 2, E(ETIMEDOUT, EINTR, EBADFD, EPIPE, EINVAL,
				EFAULT) },
	[OP_POLL]	 = { "poll", 2, E(EINTR) },
	[OP_CONSUME]	 = { "consume", 8, E(0) },
	[OP_CONS_WRITE]	 = { "cons_write", 1, E(0) },
	[OP_BAD_CMD]	 = { "garbage_cmd", 2, E(ENOTTY) },
	[OP_BAD_ARG]	 = { "garbage_arg", 3, NULL },	/* the command's own */
	[OP_KILL]	 = { "kill_sibling", 1, E(ESRCH, EPERM) },
	/*
	 * mremap, madvise, mlock, msync: the mm's own errnos.  ENODEV is
	 * MADV_REMOVE on the writable consumer page: /dev/pcb cannot punch
	 * holes (vfs_fallocate() on a character device).
	 */
	[OP_VMA]	 = { "vma_ops", 3, E(EINVAL, EFAULT, ENOMEM, EAGAIN, EPERM, EACCES,
				EBUSY, ENODEV) },
};

/* Commands the garbage-argument operation aims at, with their errnos. */
static const struct cmd_desc {
	unsigned long cmd;
	const int *errs;
} cmds[] = {
	{ PCB_IOC_TOPIC_CREATE, E(EEXIST, ENOMEM, ENOSPC, EDQUOT, EINVAL,
				  EFAULT, ENAMETOOLONG, EPERM) },
	{ PCB_IOC_TOPIC_DELETE, E(ENOENT, EPERM, EINVAL, EFAULT, ENAMETOOLONG) },
	{ PCB_IOC_TOPIC_INFO, E(ENOENT, EINVAL, EFAULT, ENAMETOOLONG) },
	{ PCB_IOC_TOPIC_LIST, E(EINVAL, EFAULT) },
	{ PCB_IOC_TOPIC_OPEN, E(ENOENT, EACCES, EPROTOTYPE, EMFILE, EINVAL,
				ENAMETOOLONG, EFAULT, ENOMEM) },
	{ PCB_IOC_TOPIC_CLOSE, E(EBADF, EINVAL, EFAULT) },
	{ PCB_IOC_PUBLISH, E(PUB_ERRS) },
	{ PCB_IOC_RING_SETUP, E(EINVAL, EBUSY, ENOMEM, EFAULT) },
	{ PCB_IOC_SUBSCRIBE, E(EACCES, EBADFD, ENOSPC, EINVAL, EALREADY,
			       EDQUOT, ENOENT, EPROTOTYPE, ENAMETOOLONG,
			       EFAULT, EPIPE, ENOMEM) },
	{ PCB_IOC_UNSUBSCRIBE, E(ENOENT, EINVAL, EBADFD, EFAULT) },
	{ PCB_IOC_WAIT, E(ETIMEDOUT, EINTR, EBADFD, EPIPE, EINVAL, EFAULT) },
	{ PCB_IOC_NOTIFY, E(EBADFD, EINVAL) },
	{ PCB_IOC_PUBLISH_BATCH, E(PUB_ERRS, E2BIG) },
	{ PCB_IOC_SET_FILTER, E(ENOENT, EBADFD, EINVAL, EFAULT, ENOMEM) },
	{ PCB_IOC_SUB_INFO, E(ENOENT, EBADFD, EINVAL, EFAULT) },
	{ PCB_IOC_STATS, E(ENOENT, EINVAL, EFAULT) },
};

#define NR_CMDS (sizeof(cmds) / sizeof(cmds[0]))

/* What the run shares between all processes: one anonymous shared page set. */
struct shared {
	__u64 seed;
	__u64 deadline_ns;		/* CLOCK_MONOTONIC */
	__u64 iters_cap;		/* 0: none */
	__u64 ops_total;
	__u64 count[NR_OPS];
	__u64 errs[NR_OPS][NR_ERRNO];
	__u64 unexpected;
	__u64 records;			/* records whose structure was checked */
	__u64 kills;
	__u64 respawns;
	pid_t pids[NR_PROCS];
	unsigned int tag;		/* makes topic names unique to this run */
	unsigned int kill_rate;
	unsigned int fail_lines;
};

static struct shared *sh;

/* splitmix64 seeds xoshiro256**: one independent stream per thread. */
struct rng {
	__u64 s[4];
};

static __u64 splitmix(__u64 *x)
{
	__u64 z = (*x += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static void rng_seed(struct rng *r, __u64 seed)
{
	for (int i = 0; i < 4; i++)
		r->s[i] = splitmix(&seed);
}

static inline __u64 rotl(__u64 x, int k)
{
	return (x << k) | (x >> (64 - k));
}

static __u64 rnd(struct rng *r)
{
	__u64 *s = r->s;
	__u64 res = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;

	s[2] ^= s[0];
	s[3] ^= s[1];
	s[1] ^= s[2];
	s[0] ^= s[3];
	s[2] ^= t;
	s[3] = rotl(s[3], 45);
	return res;
}

static __u64 below(struct rng *r, __u64 n)
{
	return n ? rnd(r) % n : 0;
}

/* True once in @n. */
static bool one_in(struct rng *r, __u64 n)
{
	return below(r, n) == 0;
}

/* Per process: endpoints, the slots holding their fds, mappings, handles. */
struct ep {
	pthread_mutex_t cons_lock;	/* one consumer at a time */
	bool ring;
	bool tainted;			/* cons_pos written at random */
	struct pcb_ring_setup rs;
};

struct slot {
	int fd;
	unsigned int gen;		/* bumped before the fd is closed */
	struct ep *ep;
};

struct map {
	char *cons;			/* RING: the consumer page, RW */
	char *ro;			/* RING: header + data; JUNK: anything */
	size_t ro_len;
	int prot;			/* of ro */
	bool zapped;			/* MADV_DONTNEED: touching would SIGBUS */
	struct ep *ep;
	__u32 data_size;
	int kind;
};

enum { MAP_NONE, MAP_RING, MAP_JUNK };

struct handle {
	struct ep *ep;
	__u32 handle;
	__u32 max;
	bool used;
};

static pthread_mutex_t plock = PTHREAD_MUTEX_INITIALIZER;
static pthread_rwlock_t maplock = PTHREAD_RWLOCK_INITIALIZER;
static struct slot slots[NR_SLOTS];
static struct map maps[NR_MAPS];
static struct handle handles[NR_HANDLES];
static __u32 topic_ids[NR_IDS];
static int proc_index, proc_gen;
static long page_size;
static char *ro_page, *none_page;

struct thr {
	struct rng r;
	int index;
	int op;				/* the one running */
	__u64 iter;
	__u64 msgids[NR_MSGIDS];
	struct io_uring u;
	bool have_u;
	unsigned char buf[PAYLOAD_MAX + 64];
};

static __u64 now_ns(void)
{
	return pcbt_now_ns(CLOCK_MONOTONIC);
}

static const char *errname(int err)
{
	const char *s = err ? strerrorname_np(err) : "ok";

	return s ?: "E?";
}

/* Prints a failure (the first few in full) and counts it. */
static void __attribute__((format(printf, 3, 4)))
fail(struct thr *t, int op, const char *fmt, ...)
{
	char msg[400];
	va_list ap;

	__atomic_add_fetch(&sh->unexpected, 1, __ATOMIC_RELAXED);
	if (__atomic_fetch_add(&sh->fail_lines, 1, __ATOMIC_RELAXED) >= 20)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	fprintf(stderr,
		"# fuzz: UNEXPECTED %s: %s (seed %#llx proc %d gen %d thread %d iter %llu)\n",
		ops[op].name, msg, (unsigned long long)sh->seed, proc_index,
		proc_gen, t ? t->index : -1,
		(unsigned long long)(t ? t->iter : 0));
}

static bool in_set(const int *set, int err)
{
	for (; set && *set; set++)
		if (*set == err)
			return true;
	return false;
}

/*
 * Counts the result of one call and checks its errno.  @raced: the fd was
 * closed while the call ran, so EBADF is fine too.
 */
static void result_errs(struct thr *t, int op, const int *errs, int ret,
			int err, bool raced)
{
	__atomic_add_fetch(&sh->count[op], 1, __ATOMIC_RELAXED);
	if (ret >= 0)
		err = 0;
	__atomic_add_fetch(&sh->errs[op][err < NR_ERRNO ? err : 0], 1,
			   __ATOMIC_RELAXED);
	if (!err || in_set(errs, err) || (raced && err == EBADF))
		return;
	fail(t, op, "errno %s (%d)", errname(err), err);
}

static void result(struct thr *t, int op, int ret, int err, bool raced)
{
	result_errs(t, op, ops[op].errs, ret, err, raced);
}

/* Slots: an fd and its endpoint, read under plock. */
struct pick {
	int idx;
	int fd;
	unsigned int gen;
	struct ep *ep;
};

static bool pick_slot(struct thr *t, struct pick *p, bool want_ring)
{
	int start = below(&t->r, NR_SLOTS);

	pthread_mutex_lock(&plock);
	for (int i = 0; i < NR_SLOTS; i++) {
		struct slot *s = &slots[(start + i) % NR_SLOTS];

		if (s->fd < 0 || (want_ring && !s->ep->ring))
			continue;
		p->idx = (start + i) % NR_SLOTS;
		p->fd = s->fd;
		p->gen = s->gen;
		p->ep = s->ep;
		pthread_mutex_unlock(&plock);
		return true;
	}
	pthread_mutex_unlock(&plock);
	return false;
}

/* Keeps errno: it is called in the argument lists of result(). */
static bool raced(const struct pick *p)
{
	int err = errno;
	bool r;

	pthread_mutex_lock(&plock);
	r = slots[p->idx].gen != p->gen;
	pthread_mutex_unlock(&plock);
	errno = err;
	return r;
}

/* Empties a slot under plock; the caller closes the returned fd. */
static int take_slot_locked(int idx)
{
	int fd = slots[idx].fd;

	slots[idx].fd = -1;
	slots[idx].gen++;
	return fd;
}

/* Puts @fd in a free slot, or in a random one whose fd gets closed. */
static void put_slot(struct thr *t, int fd, struct ep *ep)
{
	int idx = -1, old = -1;

	pthread_mutex_lock(&plock);
	for (int i = 0; i < NR_SLOTS; i++)
		if (slots[i].fd < 0) {
			idx = i;
			break;
		}
	if (idx < 0) {
		idx = below(&t->r, NR_SLOTS);
		old = take_slot_locked(idx);
	}
	slots[idx].fd = fd;
	slots[idx].gen++;
	slots[idx].ep = ep;
	pthread_mutex_unlock(&plock);
	if (old >= 0)
		close(old);
}

/* A pointer the kernel must refuse, or @good. */
static void *arg_ptr(struct thr *t, void *good, bool written)
{
	static void *const bad[] = {
		NULL, (void *)1, (void *)0xffff888000000000ULL,
		(void *)-4096L,
	};

	if (!one_in(&t->r, 40))
		return good;
	if (one_in(&t->r, 3))
		return written ? (void *)ro_page : (void *)none_page;
	return bad[below(&t->r, 4)];
}

/* Topic names: a small shared pool, now and then an invalid one. */
static void topic_name(struct thr *t, char name[PCB_NAME_MAX])
{
	memset(name, 0, PCB_NAME_MAX);
	switch (one_in(&t->r, 25) ? below(&t->r, 5) : 5) {
	case 0:
		break;				/* "": EINVAL */
	case 1:
		strcpy(name, ".hidden");	/* EINVAL */
		break;
	case 2:
		strcpy(name, "bad name!");	/* EINVAL */
		break;
	case 3:
		memset(name, 'a', PCB_NAME_MAX);	/* ENAMETOOLONG */
		break;
	case 4:
		memset(name, 'b', PCB_NAME_MAX - 1);	/* longest valid */
		break;
	default:
		snprintf(name, PCB_NAME_MAX, "fz%u/t-%u:%s", sh->tag,
			 (unsigned int)below(&t->r, NR_NAMES),
			 one_in(&t->r, 2) ? "a" : "b.c");
	}
}

static __u32 pick_topic_id(struct thr *t)
{
	__u32 id;

	if (one_in(&t->r, 20))
		return one_in(&t->r, 2) ? 0 : (__u32)rnd(&t->r);
	pthread_mutex_lock(&plock);
	id = topic_ids[below(&t->r, NR_IDS)];
	pthread_mutex_unlock(&plock);
	return id;
}

static void remember_topic(struct thr *t, __u32 id)
{
	if (!id)
		return;
	pthread_mutex_lock(&plock);
	topic_ids[below(&t->r, NR_IDS)] = id;
	pthread_mutex_unlock(&plock);
}

static void remember_msgid(struct thr *t, __u64 id)
{
	t->msgids[below(&t->r, NR_MSGIDS)] = id;
}

/* Dependencies: mostly none, some known ids, now and then invalid ones. */
static __u32 make_deps(struct thr *t, __u64 deps[PCB_MAX_DEPS + 2])
{
	__u32 nr;

	if (!one_in(&t->r, 4))
		return 0;
	nr = 1 + below(&t->r, 3);
	for (__u32 i = 0; i < nr; i++)
		deps[i] = t->msgids[below(&t->r, NR_MSGIDS)];
	if (one_in(&t->r, 8)) {
		switch (below(&t->r, 3)) {
		case 0:
			deps[0] = ~0ULL;	/* from the future */
			break;
		case 1:
			nr = PCB_MAX_DEPS + 1;
			for (__u32 i = 0; i < nr; i++)
				deps[i] = i + 1;
			break;
		default:
			deps[nr] = deps[0];	/* twice */
			nr++;
		}
	}
	return nr;
}

/* A filter: valid ones mostly, otherwise one broken rule of the uapi. */
union filter_buf {
	struct pcb_filter f;
	char raw[sizeof(struct pcb_filter) +
		 (PCB_FILTER_MAX_PREDS + 2) * sizeof(struct pcb_filter_pred)];
};

static void make_pred(struct thr *t, struct pcb_filter_pred *p)
{
	static const __u8 widths[] = { 1, 2, 4, 8 };

	memset(p, 0, sizeof(*p));
	p->field = 1 + below(&t->r, 5);
	p->op = 1 + below(&t->r, 8);
	p->value = below(&t->r, 300);
	if (one_in(&t->r, 3))
		p->mask = below(&t->r, 0x100);
	if (one_in(&t->r, 4))
		p->flags |= PCB_PRED_SIGNED;
	if (p->field == PCB_FIELD_PAYLOAD) {
		p->width = widths[below(&t->r, 4)];
		p->offset = below(&t->r, 64);
		if (one_in(&t->r, 3))
			p->flags |= PCB_PRED_BE;
	}
}

static void *make_filter(struct thr *t, union filter_buf *fb)
{
	struct pcb_filter *f = &fb->f;
	struct pcb_filter_pred *p = f->preds;

	memset(fb, 0, sizeof(*fb));
	f->nr_preds = below(&t->r, 5);
	for (__u32 i = 0; i < f->nr_preds; i++) {
		make_pred(t, &p[i]);
		if (i + 1 < f->nr_preds && one_in(&t->r, 3))
			p[i].flags |= PCB_PRED_OR;
	}
	if (one_in(&t->r, 6)) {
		__u32 i = f->nr_preds ? below(&t->r, f->nr_preds) : 0;

		switch (below(&t->r, 10)) {
		case 0:
			f->nr_preds = PCB_FILTER_MAX_PREDS + 1;
			break;
		case 1:
			f->flags = 1;
			break;
		case 2:
			f->reserved = 1;
			break;
		case 3:
			p[i].field = one_in(&t->r, 2) ? 0 : 6 + below(&t->r, 250);
			f->nr_preds = f->nr_preds ?: 1;
			break;
		case 4:
			p[i].op = one_in(&t->r, 2) ? 0 : 9 + below(&t->r, 200);
			f->nr_preds = f->nr_preds ?: 1;
			break;
		case 5:
			p[i].flags |= 0x80;
			f->nr_preds = f->nr_preds ?: 1;
			break;
		case 6:
			p[i].field = PCB_FIELD_PAYLOAD;
			p[i].width = 3;
			f->nr_preds = f->nr_preds ?: 1;
			break;
		case 7:
			p[i].field = PCB_FIELD_UID;
			p[i].mask = 1ULL << 40;
			f->nr_preds = f->nr_preds ?: 1;
			break;
		case 8:
			p[i].field = PCB_FIELD_PAYLOAD;
			p[i].width = 8;
			p[i].offset = 0xfffffffc;
			f->nr_preds = f->nr_preds ?: 1;
			break;
		default:
			f->nr_preds = f->nr_preds ?: 1;
			p[f->nr_preds - 1].flags |= PCB_PRED_OR;
		}
	}
	return arg_ptr(t, f, false);
}

/* Handles: those of @ep mostly, else any, else a made-up number. */
static __u32 pick_handle(struct thr *t, struct ep *ep, __u32 *max)
{
	int start = below(&t->r, NR_HANDLES);
	__u32 h = below(&t->r, 4);

	*max = 256;
	if (one_in(&t->r, 10))
		return one_in(&t->r, 2) ? h : (__u32)rnd(&t->r);
	pthread_mutex_lock(&plock);
	for (int i = 0; i < NR_HANDLES; i++) {
		struct handle *hd = &handles[(start + i) % NR_HANDLES];

		if (hd->used && (hd->ep == ep || one_in(&t->r, 8))) {
			h = hd->handle;
			*max = hd->max;
			break;
		}
	}
	pthread_mutex_unlock(&plock);
	return h;
}

static __u32 payload_len(struct thr *t, __u32 max)
{
	__u32 cap = max < PAYLOAD_MAX ? max : PAYLOAD_MAX;

	if (one_in(&t->r, 20))
		return cap + 1;			/* EMSGSIZE when max is small */
	if (one_in(&t->r, 4))
		return below(&t->r, cap + 1);
	return below(&t->r, (cap < 256 ? cap : 256) + 1);
}

static __u64 short_timeout(struct thr *t)
{
	return 1 + below(&t->r, SHORT_NS);
}

/* ---- operations -------------------------------------------------------- */

static void op_open(struct thr *t)
{
	int flags = O_RDWR | O_CLOEXEC | (one_in(&t->r, 4) ? O_NONBLOCK : 0);
	int fd = open(PCB_DEVICE_PATH, flags);
	struct ep *ep;

	result(t, OP_OPEN, fd, errno, false);
	if (fd < 0)
		return;
	ep = calloc(1, sizeof(*ep));
	if (!ep) {
		close(fd);
		return;
	}
	pthread_mutex_init(&ep->cons_lock, NULL);
	put_slot(t, fd, ep);
}

static void op_close(struct thr *t)
{
	int idx = below(&t->r, NR_SLOTS), fd, ret;

	pthread_mutex_lock(&plock);
	fd = take_slot_locked(idx);
	pthread_mutex_unlock(&plock);
	if (fd < 0)
		return;
	ret = close(fd);
	result(t, OP_CLOSE, ret, errno, false);
}

static void op_dup(struct thr *t)
{
	struct pick p;
	int fd;

	if (!pick_slot(t, &p, false))
		return;
	fd = fcntl(p.fd, F_DUPFD_CLOEXEC, 0);
	result(t, OP_DUP, fd, errno, raced(&p));
	if (fd < 0)
		return;
	/* A raced fd number may have been another endpoint's by then. */
	if (raced(&p))
		close(fd);
	else
		put_slot(t, fd, p.ep);
}

/* A child that inherits everything, uses one fd a little, and exits. */
static void op_fork(struct thr *t)
{
	struct pick p;
	__u64 what = below(&t->r, 4);
	pid_t pid;
	int st;

	if (!pick_slot(t, &p, false))
		return;
	pid = fork();
	result(t, OP_FORK, pid, errno, false);
	if (pid < 0)
		return;
	if (pid == 0) {
		struct pcb_wait w = { .timeout_ns = PCBT_MS };

		if (what == 0)
			close(p.fd);
		else if (what == 1)
			ioctl(p.fd, PCB_IOC_WAIT, &w);
		else if (what == 2)
			ioctl(p.fd, PCB_IOC_NOTIFY, 0);
		_exit(0);
	}
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
}

static void op_create(struct thr *t)
{
	static const __u32 sizes[] = {
		1, 8, 64, 200, 1024, 4096, 60000, 1 << 20, (1 << 20) + 1, 0,
	};
	static const __u32 modes[] = {
		0600, 0644, 0666, 0622, 0000, 0777, 0640, 01000,
	};
	struct pcb_topic_create tc = {
		.schema_id = below(&t->r, 2),
		.max_msg_size = sizes[below(&t->r, 8) + (one_in(&t->r, 10) ? 2 : 0)],
		.mode = modes[below(&t->r, 7) + (one_in(&t->r, 20) ? 1 : 0)],
		.uid = PCB_OWNER_CALLER,
		.gid = PCB_OWNER_CALLER,
	};
	struct pick p;
	int ret;

	if (!pick_slot(t, &p, false))
		return;
	topic_name(t, tc.name);
	if (one_in(&t->r, 15))
		tc.uid = below(&t->r, 2) ? 65534 : 0;
	if (one_in(&t->r, 15))
		tc.gid = below(&t->r, 2) ? 65534 : 0;
	if (one_in(&t->r, 30))
		tc.flags = 1;
	if (one_in(&t->r, 30))
		tc.reserved[below(&t->r, 4)] = 1;
	ret = ioctl(p.fd, PCB_IOC_TOPIC_CREATE, arg_ptr(t, &tc, true));
	result(t, OP_CREATE, ret, errno, raced(&p));
	if (!ret) {
		if (!tc.topic_id)
			fail(t, OP_CREATE, "topic id 0");
		remember_topic(t, tc.topic_id);
	}
}

static void op_delete(struct thr *t)
{
	struct pcb_topic_name tn = { 0 };
	struct pick p;
	int ret;

	if (!pick_slot(t, &p, false))
		return;
	topic_name(t, tn.name);
	if (one_in(&t->r, 30))
		tn.reserved[1] = 1;
	ret = ioctl(p.fd, PCB_IOC_TOPIC_DELETE, arg_ptr(t, &tn, false));
	result(t, OP_DELETE, ret, errno, raced(&p));
}

static void op_info(struct thr *t)
{
	struct pcb_topic_info ti = { 0 };
	struct pick p;
	int ret;

	if (!pick_slot(t, &p, false))
		return;
	topic_name(t, ti.name);
	if (one_in(&t->r, 30))
		ti.reserved[0] = 1;
	ret = ioctl(p.fd, PCB_IOC_TOPIC_INFO, arg_ptr(t, &ti, true));
	result(t, OP_INFO, ret, errno, raced(&p));
	if (!ret) {
		if (!ti.topic_id || !ti.max_msg_size || ti.mode & ~PCB_MODE_MASK)
			fail(t, OP_INFO, "id %u max %u mode %#o", ti.topic_id,
			     ti.max_msg_size, ti.mode);
		remember_topic(t, ti.topic_id);
	}
}

static void op_list(struct thr *t)
{
	struct pcb_topic_info e[8];
	struct pcb_topic_list tl = {
		.entries = (uintptr_t)arg_ptr(t, e, true),
		.capacity = below(&t->r, 9),
		.start_id = one_in(&t->r, 2) ? 0 : pick_topic_id(t),
	};
	struct pick p;
	int ret;

	if (!pick_slot(t, &p, false))
		return;
	if (one_in(&t->r, 30))
		tl.reserved[0] = 1;
	ret = ioctl(p.fd, PCB_IOC_TOPIC_LIST, arg_ptr(t, &tl, true));
	result(t, OP_LIST, ret, errno, raced(&p));
	if (ret)
		return;
	if (tl.count > tl.capacity) {
		fail(t, OP_LIST, "count %u > capacity %u", tl.count,
		     tl.capacity);
		return;
	}
	for (__u32 i = 0; i < tl.count; i++) {
		if (e[i].topic_id < tl.start_id ||
		    (i && e[i].topic_id <= e[i - 1].topic_id) ||
		    (tl.next_id && e[i].topic_id >= tl.next_id))
			fail(t, OP_LIST, "entry %u id %u start %u next %u", i,
			     e[i].topic_id, tl.start_id, tl.next_id);
		remember_topic(t, e[i].topic_id);
	}
}

static void op_topen(struct thr *t)
{
	struct pcb_topic_open to = { .schema_id = below(&t->r, 2) };
	struct pick p;
	int ret;

	if (!pick_slot(t, &p, false))
		return;
	topic_name(t, to.name);
	if (one_in(&t->r, 30))
		to.flags = 1 << below(&t->r, 32);
	ret = ioctl(p.fd, PCB_IOC_TOPIC_OPEN, arg_ptr(t, &to, true));
	result(t, OP_TOPEN, ret, errno, raced(&p));
	if (ret)
		return;
	remember_topic(t, to.topic_id);
	pthread_mutex_lock(&plock);
	handles[below(&t->r, NR_HANDLES)] = (struct handle){
		.ep = p.ep, .handle = to.handle, .max = to.max_msg_size,
		.used = true,
	};
	pthread_mutex_unlock(&plock);
}

static void op_tclose(struct thr *t)
{
	struct pcb_topic_close tc = { 0 };
	struct pick p;
	__u32 max;
	int ret;

	if (!pick_slot(t, &p, false))
		return;
	tc.handle = pick_handle(t, p.ep, &max);
	if (one_in(&t->r, 30))
		tc.reserved0 = 1;
	ret = ioctl(p.fd, PCB_IOC_TOPIC_CLOSE, arg_ptr(t, &tc, false));
	result(t, OP_TCLOSE, ret, errno, raced(&p));
}

static void op_publish(struct thr *t)
{
	__u64 deps[PCB_MAX_DEPS + 2];
	struct pcb_publish pb = { 0 };
	struct pick p;
	__u32 max;
	int ret;

	if (!pick_slot(t, &p, false))
		return;
	pb.handle = pick_handle(t, p.ep, &max);
	pb.len = payload_len(t, max);
	pb.payload = (uintptr_t)arg_ptr(t, t->buf, false);
	pb.key = below(&t->r, 4) ? below(&t->r, 300) : rnd(&t->r);
	pb.flags = one_in(&t->r, 2) ? PCB_PUB_NONBLOCK : 0;
	if (one_in(&t->r, 40))
		pb.flags |= 1U << (1 + below(&t->r, 31));
	pb.timeout_ns = short_timeout(t);
	pb.nr_deps = make_deps(t, deps);
	pb.deps = (uintptr_t)(pb.nr_deps ? arg_ptr(t, deps, false) : NULL);
	if (one_in(&t->r, 40))
		pb.reserved[0] = 1;
	memcpy(t->buf, &t->iter, sizeof(t->iter));
	ret = ioctl(p.fd, PCB_IOC_PUBLISH, arg_ptr(t, &pb, true));
	result(t, OP_PUBLISH, ret, errno, raced(&p));
	if (!ret) {
		if (!pb.msg_id || !pb.seq)
			fail(t, OP_PUBLISH, "msg_id %llu seq %llu",
			     (unsigned long long)pb.msg_id,
			     (unsigned long long)pb.seq);
		remember_msgid(t, pb.msg_id);
	}
}

#define RESULT_UNSET	12345

static void check_batch(struct thr *t, struct pcb_batch_entry *e, __u32 n,
			const struct pcb_publish_batch *b)
{
	static const int ok_errs[] = { PUB_ERRS, E2BIG, ECANCELED, 0 };
	__u32 good = 0;

	for (__u32 i = 0; i < n; i++) {
		if (!e[i].result) {
			good++;
			if (!e[i].msg_id || (i && e[i - 1].result == 0 &&
					     e[i].msg_id <= e[i - 1].msg_id))
				fail(t, OP_BATCH, "entry %u msg_id %llu", i,
				     (unsigned long long)e[i].msg_id);
			remember_msgid(t, e[i].msg_id);
		} else if (e[i].result > 0 || !in_set(ok_errs, -e[i].result)) {
			fail(t, OP_BATCH, "entry %u result %d", i, e[i].result);
		}
	}
	if (good != b->published)
		fail(t, OP_BATCH, "published %u, %u entries say 0", b->published,
		     good);
	if ((b->flags & PCB_PUB_ATOMIC) && good != n)
		fail(t, OP_BATCH, "atomic batch published %u of %u", good, n);
}

static void op_batch(struct thr *t)
{
	struct pcb_batch_entry e[12];
	__u64 deps[PCB_MAX_DEPS + 2];
	struct pcb_publish_batch b = { 0 };
	struct pick p;
	__u32 max;
	int ret;

	if (!pick_slot(t, &p, false))
		return;
	b.count = 1 + below(&t->r, 12);
	for (__u32 i = 0; i < b.count; i++) {
		e[i] = (struct pcb_batch_entry){
			.handle = pick_handle(t, p.ep, &max),
			.payload = (uintptr_t)t->buf,
			.key = below(&t->r, 300),
			.result = RESULT_UNSET,
		};
		e[i].len = payload_len(t, max);
		if (one_in(&t->r, 60))
			e[i].payload = (uintptr_t)none_page;
		if (one_in(&t->r, 60))
			e[i].flags = 1;
	}
	b.entries = (uintptr_t)arg_ptr(t, e, true);
	b.flags = (one_in(&t->r, 2) ? PCB_PUB_NONBLOCK : 0) |
		  (one_in(&t->r, 3) ? PCB_PUB_ATOMIC : 0);
	if (one_in(&t->r, 40))
		b.flags |= 4;
	b.timeout_ns = short_timeout(t);
	b.nr_deps = make_deps(t, deps);
	b.deps = (uintptr_t)(b.nr_deps ? arg_ptr(t, deps, false) : NULL);
	if (one_in(&t->r, 40))
		b.count = one_in(&t->r, 2) ? 0 : PCB_BATCH_MAX + 1;
	if (one_in(&t->r, 40))
		b.reserved[0] = 1;
	ret = ioctl(p.fd, PCB_IOC_PUBLISH_BATCH, arg_ptr(t, &b, true));
	if (!ret || (b.flags & PCB_PUB_ATOMIC) || errno == EINTR)
		result(t, OP_BATCH, ret, errno, raced(&p));
	else	/* without PCB_PUB_ATOMIC only the ioctl's own errors */
		result_errs(t, OP_BATCH, E(EFAULT, EINVAL), ret, errno,
			    raced(&p));
	if (!ret && b.entries == (uintptr_t)e)
		check_batch(t, e, b.count, &b);
}

static void op_uring(struct thr *t)
{
	__u64 deps[PCB_MAX_DEPS + 2], msg_id = 0;
	struct pcb_uring_publish up = { 0 };
	struct io_uring_sqe *sqe;
	struct io_uring_cqe *cqe;
	struct __kernel_timespec ts = { .tv_sec = CQE_WAIT_MS / 1000 };
	struct pick p;
	__u32 max;
	int ret;

	if (!t->have_u || !pick_slot(t, &p, false))
		return;
	up.handle = pick_handle(t, p.ep, &max);
	up.len = payload_len(t, max);
	up.payload = (uintptr_t)arg_ptr(t, t->buf, false);
	up.key = below(&t->r, 300);
	up.flags = one_in(&t->r, 2) ? PCB_PUB_NONBLOCK : 0;
	up.timeout_ns = short_timeout(t);
	up.nr_deps = make_deps(t, deps);
	up.deps = (uintptr_t)(up.nr_deps ? arg_ptr(t, deps, false) : NULL);
	if (one_in(&t->r, 4))
		up.msg_id_addr = (uintptr_t)arg_ptr(t, &msg_id, true);
	if (one_in(&t->r, 40))
		up.reserved[1] = 1;
	sqe = pcbt_uring_queue(&t->u, p.fd, &up, t->iter);
	if (!sqe)
		return;
	if (one_in(&t->r, 30))
		sqe->cmd_op = 2 + below(&t->r, 100);	/* ENOTTY */
	ret = io_uring_submit(&t->u);
	if (ret != 1) {
		fail(t, OP_URING, "submit: %d", ret);
		return;
	}
	do
		ret = io_uring_wait_cqe_timeout(&t->u, &cqe, &ts);
	while (ret == -EINTR);
	if (ret) {
		/* Nothing else may use the ring while a command is lost. */
		fail(t, OP_URING, "no completion within %d ms: %d",
		     CQE_WAIT_MS, ret);
		t->have_u = false;
		return;
	}
	ret = cqe->res;
	io_uring_cqe_seen(&t->u, cqe);
	result(t, OP_URING, ret, -ret, raced(&p));
	if (!ret)
		remember_msgid(t, cqe->big_cqe[0]);
}

static void op_ring_setup(struct thr *t)
{
	static const __u32 good[] = {
		4096, 8192, 16384, 65536, 65536, 262144, 1 << 20,
	};
	static const __u32 odd[] = {
		0, 4095, 3 * 4096, 1U << 27, 4U << 20, 2048, 0x80000000U,
	};
	struct pcb_ring_setup rs = { 0 };
	struct pick p;
	int ret;

	if (!pick_slot(t, &p, false))
		return;
	rs.data_size = one_in(&t->r, 8) ? odd[below(&t->r, 7)] :
					  good[below(&t->r, 7)];
	if (one_in(&t->r, 30))
		rs.flags = 1;
	if (one_in(&t->r, 30))
		rs.reserved[0] = 1;
	ret = ioctl(p.fd, PCB_IOC_RING_SETUP, arg_ptr(t, &rs, true));
	result(t, OP_RING_SETUP, ret, errno, raced(&p));
	if (ret)
		return;
	if (rs.page_size != page_size || rs.cons_offset % page_size ||
	    rs.header_offset % page_size || rs.data_offset % page_size ||
	    rs.mmap_size < rs.data_offset + 2ULL * rs.data_size)
		fail(t, OP_RING_SETUP, "layout: page %u cons %llu hdr %llu data %llu size %llu",
		     rs.page_size, (unsigned long long)rs.cons_offset,
		     (unsigned long long)rs.header_offset,
		     (unsigned long long)rs.data_offset,
		     (unsigned long long)rs.mmap_size);
	pthread_mutex_lock(&plock);
	if (slots[p.idx].gen == p.gen && !p.ep->ring) {
		p.ep->rs = rs;
		p.ep->ring = true;
	}
	pthread_mutex_unlock(&plock);
}

static void check_maps(struct thr *t, int op, int what);

/* Unmaps one entry of maps[]; maplock held for writing. */
static void drop_map(struct thr *t, struct map *m)
{
	if (m->kind == MAP_NONE)
		return;
	if (m->kind == MAP_RING && munmap(m->cons, page_size))
		fail(t, OP_MUNMAP, "cons page: %s", errname(errno));
	if (munmap(m->ro, m->ro_len))
		fail(t, OP_MUNMAP, "%s", errname(errno));
	m->kind = MAP_NONE;
}

/*
 * Unmaps a page in the middle first, so that the mapping gets split, then
 * the pieces on either side.  Never the whole range again: a thread that
 * maps outside maplock may already own the hole.
 */
static void drop_map_in_pieces(struct thr *t, struct map *m)
{
	size_t at = below(&t->r, m->ro_len / page_size) * page_size;
	size_t after = at + page_size;

	if (munmap(m->ro + at, page_size))
		fail(t, OP_MUNMAP, "piece: %s", errname(errno));
	if (at && munmap(m->ro, at))
		fail(t, OP_MUNMAP, "head: %s", errname(errno));
	if (after < m->ro_len && munmap(m->ro + after, m->ro_len - after))
		fail(t, OP_MUNMAP, "tail: %s", errname(errno));
	m->ro_len = 0;
	if (m->kind == MAP_RING && munmap(m->cons, page_size))
		fail(t, OP_MUNMAP, "cons page: %s", errname(errno));
	m->kind = MAP_NONE;
}

static void add_map(struct thr *t, const struct map *m)
{
	struct map *slot = NULL;

	pthread_rwlock_wrlock(&maplock);
	for (int i = 0; i < NR_MAPS; i++)
		if (maps[i].kind == MAP_NONE) {
			slot = &maps[i];
			break;
		}
	if (!slot) {
		slot = &maps[below(&t->r, NR_MAPS)];
		drop_map(t, slot);
	}
	*slot = *m;
	check_maps(t, OP_MMAP_RING, 10 + m->kind);
	pthread_rwlock_unlock(&maplock);
}

/* The documented mapping: the consumer page RW, header and data RO. */
static void op_mmap_ring(struct thr *t)
{
	const struct pcb_ring_header *h;
	struct pcb_ring_setup rs;
	struct map m = { .kind = MAP_RING, .prot = PROT_READ };
	struct pick p;
	int err;

	if (!pick_slot(t, &p, true))
		return;
	pthread_mutex_lock(&plock);
	rs = p.ep->rs;
	pthread_mutex_unlock(&plock);
	m.ep = p.ep;
	m.cons = mmap(NULL, page_size, PROT_READ | PROT_WRITE, MAP_SHARED,
		      p.fd, rs.cons_offset);
	if (m.cons == MAP_FAILED) {
		result(t, OP_MMAP_RING, -1, errno, raced(&p));
		return;
	}
	m.ro_len = rs.mmap_size - rs.header_offset;
	m.ro = mmap(NULL, m.ro_len, PROT_READ, MAP_SHARED, p.fd,
		    rs.header_offset);
	err = errno;
	if (m.ro == MAP_FAILED || raced(&p)) {
		/* A raced fd may have been another endpoint's: forget it. */
		result(t, OP_MMAP_RING, m.ro == MAP_FAILED ? -1 : 0, err, true);
		munmap(m.cons, page_size);
		if (m.ro != MAP_FAILED)
			munmap(m.ro, m.ro_len);
		return;
	}
	result(t, OP_MMAP_RING, 0, 0, false);
	h = (const void *)m.ro;
	if (h->magic != PCB_RING_MAGIC || h->version != PCB_RING_VERSION ||
	    h->data_size != rs.data_size || h->record_align != PCB_REC_ALIGN)
		fail(t, OP_MMAP_RING, "header: magic %#x version %u size %u align %u",
		     h->magic, h->version, h->data_size, h->record_align);
	m.data_size = rs.data_size;
	add_map(t, &m);
}

/* Random ranges and protections: only the documented ones may succeed. */
static void op_mmap_junk(struct thr *t)
{
	static const int prots[] = {
		PROT_READ, PROT_READ, PROT_READ | PROT_WRITE, PROT_WRITE,
		PROT_NONE, PROT_READ | PROT_EXEC,
	};
	struct pcb_ring_setup rs = { 0 };
	struct map m = { .kind = MAP_JUNK };
	struct pick p;
	__u64 pages, off;
	int prot, flags, err;
	bool writable_ok;

	if (!pick_slot(t, &p, false))
		return;
	pthread_mutex_lock(&plock);
	if (p.ep->ring)
		rs = p.ep->rs;
	pthread_mutex_unlock(&plock);
	pages = (rs.mmap_size ?: 8ULL * page_size) / page_size;
	off = below(&t->r, pages + 2);
	m.ro_len = (1 + below(&t->r, pages + 1 - (off < pages ? off : pages)))
		   * page_size;
	prot = m.prot = prots[below(&t->r, 6)];
	flags = one_in(&t->r, 4) ? MAP_PRIVATE : MAP_SHARED;
	m.ro = mmap(NULL, m.ro_len, prot, flags, p.fd, off * page_size);
	err = errno;
	if (m.ro == MAP_FAILED) {
		result(t, OP_MMAP_JUNK, -1, err, raced(&p));
		return;
	}
	result(t, OP_MMAP_JUNK, 0, 0, false);
	writable_ok = rs.mmap_size && off * page_size == rs.cons_offset &&
		      m.ro_len == (size_t)page_size && flags == MAP_SHARED;
	if ((prot & PROT_WRITE) && rs.mmap_size && !writable_ok && !raced(&p))
		fail(t, OP_MMAP_JUNK, "writable mapping at page %llu, %zu bytes, %s",
		     (unsigned long long)off, m.ro_len,
		     flags == MAP_SHARED ? "shared" : "private");
	if (prot & PROT_READ) {
		volatile const char *c = m.ro;

		for (size_t i = 0; i < m.ro_len; i += page_size)
			(void)c[i];
	}
	add_map(t, &m);
}

static void op_munmap(struct thr *t)
{
	struct map *m = &maps[below(&t->r, NR_MAPS)];

	pthread_rwlock_wrlock(&maplock);
	if (m->kind != MAP_NONE) {
		if (m->ro_len > (size_t)page_size && one_in(&t->r, 2))
			drop_map_in_pieces(t, m);
		else
			drop_map(t, m);
		result(t, OP_MUNMAP, 0, 0, false);
		check_maps(t, OP_MUNMAP, 0);
	}
	pthread_rwlock_unlock(&maplock);
}

/* Read-only ring mappings can never become writable. */
static void op_mprotect(struct thr *t)
{
	struct map *m = &maps[below(&t->r, NR_MAPS)];
	int ret;

	pthread_rwlock_wrlock(&maplock);
	if (m->kind == MAP_RING) {
		ret = mprotect(m->ro, page_size, PROT_READ | PROT_WRITE);
		if (!ret)
			fail(t, OP_MPROTECT, "a read-only ring page became writable");
		else
			result(t, OP_MPROTECT, ret, errno, false);
	}
	pthread_rwlock_unlock(&maplock);
}

static void op_subscribe(struct thr *t)
{
	union filter_buf fb;
	struct pcb_subscribe s = { .schema_id = below(&t->r, 2) };
	struct pick p;
	int ret;

	if (!pick_slot(t, &p, false))
		return;
	topic_name(t, s.name);
	s.flags = one_in(&t->r, 2) ? PCB_SUB_LOSSY : 0;
	if (one_in(&t->r, 40))
		s.flags |= 2;
	if (one_in(&t->r, 2))
		s.filter = (uintptr_t)make_filter(t, &fb);
	if (one_in(&t->r, 40))
		s.reserved[0] = 1;
	ret = ioctl(p.fd, PCB_IOC_SUBSCRIBE, arg_ptr(t, &s, true));
	result(t, OP_SUBSCRIBE, ret, errno, raced(&p));
	if (!ret)
		remember_topic(t, s.topic_id);
}

static void op_unsubscribe(struct thr *t)
{
	struct pcb_subscribe s = { .topic_id = pick_topic_id(t) };
	struct pick p;
	int ret;

	if (!pick_slot(t, &p, false))
		return;
	if (one_in(&t->r, 30))
		s.flags = PCB_SUB_LOSSY;
	if (one_in(&t->r, 30))
		s.filter = 8;
	ret = ioctl(p.fd, PCB_IOC_UNSUBSCRIBE, arg_ptr(t, &s, false));
	result(t, OP_UNSUBSCRIBE, ret, errno, raced(&p));
}

static void op_set_filter(struct thr *t)
{
	union filter_buf fb;
	struct pcb_sub_filter sf = { .topic_id = pick_topic_id(t) };
	struct pick p;
	int ret;

	if (!pick_slot(t, &p, false))
		return;
	if (!one_in(&t->r, 4))
		sf.filter = (uintptr_t)make_filter(t, &fb);
	if (one_in(&t->r, 30))
		sf.flags = 1;
	ret = ioctl(p.fd, PCB_IOC_SET_FILTER, arg_ptr(t, &sf, false));
	result(t, OP_SET_FILTER, ret, errno, raced(&p));
}

static void op_sub_info(struct thr *t)
{
	struct pcb_sub_info si = { .topic_id = pick_topic_id(t) };
	struct pick p;
	int ret;

	if (!pick_slot(t, &p, false))
		return;
	if (one_in(&t->r, 30))
		si.reserved[2] = 1;
	ret = ioctl(p.fd, PCB_IOC_SUB_INFO, arg_ptr(t, &si, true));
	result(t, OP_SUB_INFO, ret, errno, raced(&p));
	if (!ret && (si.nr_preds > PCB_FILTER_MAX_PREDS ||
		     si.flags & ~PCB_SUB_FLAGS_ALL))
		fail(t, OP_SUB_INFO, "nr_preds %u flags %#x", si.nr_preds,
		     si.flags);
}

static void op_stats(struct thr *t)
{
	static const __u32 sizes[] = {
		PCB_STATS_SIZE_V1, sizeof(struct pcb_stats), 1024,
		PCB_STATS_SIZE_V1 - 8, 0,
	};
	char buf[1024];
	struct pcb_stats *st = (void *)buf;
	struct pcb_stats_query q = {
		.stats = (uintptr_t)arg_ptr(t, buf, true),
		.size = sizes[below(&t->r, 3) + (one_in(&t->r, 10) ? 2 : 0)],
		.topic_id = one_in(&t->r, 3) ? 0 : pick_topic_id(t),
	};
	struct pick p;
	__u32 asked = q.size;
	int ret;

	if (!pick_slot(t, &p, false))
		return;
	if (one_in(&t->r, 30))
		q.flags = 1;
	ret = ioctl(p.fd, PCB_IOC_STATS, arg_ptr(t, &q, true));
	result(t, OP_STATS, ret, errno, raced(&p));
	if (!ret && q.stats == (uintptr_t)buf &&
	    (st->version != PCB_STATS_VERSION || q.size > asked ||
	     q.size < PCB_STATS_SIZE_V1 || st->topic_id != q.topic_id))
		fail(t, OP_STATS, "version %u size %u of %u topic %u/%u",
		     st->version, q.size, asked, st->topic_id, q.topic_id);
}

static void op_notify(struct thr *t)
{
	struct pick p;
	int ret;

	if (!pick_slot(t, &p, false))
		return;
	ret = ioctl(p.fd, PCB_IOC_NOTIFY, one_in(&t->r, 20) ? 1UL : 0UL);
	result(t, OP_NOTIFY, ret, errno, raced(&p));
}

static void op_wait(struct thr *t)
{
	struct pcb_wait w = { .timeout_ns = short_timeout(t) };
	struct pick p;
	int ret;

	if (!pick_slot(t, &p, false))
		return;
	if (one_in(&t->r, 30))
		w.flags = 1;
	ret = ioctl(p.fd, PCB_IOC_WAIT, arg_ptr(t, &w, false));
	result(t, OP_WAIT, ret, errno, raced(&p));
}

static void op_poll(struct thr *t)
{
	struct pollfd pfd[3];
	struct pick p[3];
	int n = 0, ret;
	bool r = false;

	for (int i = 0; i < 1 + (int)below(&t->r, 3); i++) {
		if (!pick_slot(t, &p[n], false))
			break;
		pfd[n] = (struct pollfd){ .fd = p[n].fd,
					  .events = POLLIN | POLLOUT };
		n++;
	}
	if (!n)
		return;
	ret = poll(pfd, n, below(&t->r, 3));
	for (int i = 0; i < n; i++)
		r |= raced(&p[i]);
	result(t, OP_POLL, ret, errno, r);
	for (int i = 0; ret > 0 && i < n; i++) {
		short ok = POLLIN | POLLRDNORM | POLLERR | (r ? POLLNVAL : 0);

		if (pfd[i].revents & ~ok)
			fail(t, OP_POLL, "revents %#x", pfd[i].revents);
	}
}

static bool record_ok(const struct pcb_record *rec, __u32 len, __u64 room)
{
	__u32 l = len & PCB_REC_LEN_MASK;

	if (l < sizeof(*rec) || PCB_REC_SIZE(l) > room)
		return false;
	if (len & PCB_REC_DISCARD)
		return true;
	return rec->nr_deps <= PCB_MAX_DEPS &&
	       rec->hdr_len == sizeof(*rec) + 8 * rec->nr_deps &&
	       l == rec->hdr_len + rec->payload_len &&
	       rec->topic_id && rec->msg_id && rec->seq;
}

/*
 * Consumes what a mapped ring holds, checking every record.  A check only
 * counts when nobody else moved cons_pos meanwhile: the kernel may reuse
 * the bytes behind a consumer position written by someone else.
 */
static void consume(struct thr *t, struct map *m)
{
	const struct pcb_ring_header *h = (const void *)m->ro;
	struct pcb_ring_consumer *c = (void *)m->cons;
	const char *data = m->ro + m->ep->rs.data_offset - m->ep->rs.header_offset;
	__u64 prod, start, pos, size = m->data_size;
	unsigned int n = 0;
	bool bad = false;
	char why[120] = "";

	if (pthread_mutex_trylock(&m->ep->cons_lock))
		return;
	prod = pcbt_load_acquire(&h->prod_pos);
	start = pos = pcbt_load_acquire(&c->cons_pos);
	while (pos < prod && n < 64 && !m->ep->tainted &&
	       prod - start <= size) {
		const struct pcb_record *rec = (const void *)(data + (pos & (size - 1)));
		__u32 len = pcbt_load_acquire(&rec->len);

		if (len & PCB_REC_BUSY)
			break;
		if (!record_ok(rec, len, prod - pos)) {
			snprintf(why, sizeof(why),
				 "record at %llu: len %#x hdr_len %u deps %u payload %u prod %llu",
				 (unsigned long long)pos, len, rec->hdr_len,
				 rec->nr_deps, rec->payload_len,
				 (unsigned long long)prod);
			bad = true;
			break;
		}
		pos += PCB_REC_SIZE(len);
		n++;
	}
	if (pcbt_load_acquire(&c->cons_pos) == start && !m->ep->tainted) {
		if (bad)
			fail(t, OP_CONSUME, "%s", why);
		__atomic_add_fetch(&sh->records, n, __ATOMIC_RELAXED);
		if (!bad)
			pcbt_store_release(&c->cons_pos, pos);
	}
	pthread_mutex_unlock(&m->ep->cons_lock);
	result(t, OP_CONSUME, 0, 0, false);
}

static struct map *pick_ring_map(struct thr *t)
{
	int start = below(&t->r, NR_MAPS);

	for (int i = 0; i < NR_MAPS; i++) {
		struct map *m = &maps[(start + i) % NR_MAPS];

		if (m->kind == MAP_RING)
			return m;
	}
	return NULL;
}

static void op_consume(struct thr *t)
{
	struct map *m;

	pthread_rwlock_rdlock(&maplock);
	m = pick_ring_map(t);
	if (m)
		consume(t, m);
	pthread_rwlock_unlock(&maplock);
	/* Wakes publishers waiting for room, on any endpoint. */
	if (one_in(&t->r, 2))
		op_notify(t);
}

/* Writes a consumer position that may make no sense: it breaks the ring. */
static void op_cons_write(struct thr *t)
{
	struct map *m;

	pthread_rwlock_rdlock(&maplock);
	m = pick_ring_map(t);
	if (m) {
		const struct pcb_ring_header *h = (const void *)m->ro;
		struct pcb_ring_consumer *c = (void *)m->cons;
		__u64 prod = pcbt_load_acquire(&h->prod_pos), v;

		switch (below(&t->r, 4)) {
		case 0:
			v = prod + 8 * (1 + below(&t->r, 64));
			break;
		case 1:
			v = prod - m->data_size - 8;
			break;
		case 2:
			v = rnd(&t->r);
			break;
		default:
			v = prod - 8 * below(&t->r, 8);
		}
		m->ep->tainted = true;
		pcbt_store_release(&c->cons_pos, v);
		if (one_in(&t->r, 4))
			c->flags = rnd(&t->r);
		result(t, OP_CONS_WRITE, 0, 0, false);
	}
	pthread_rwlock_unlock(&maplock);
}

/*
 * Every recorded mapping must still be there after an operation on the
 * address space (msync() fails with ENOMEM on a hole); maplock held.
 */
static void check_maps(struct thr *t, int op, int what)
{
	for (int i = 0; i < NR_MAPS; i++) {
		const struct map *m = &maps[i];

		if (m->kind == MAP_NONE)
			continue;
		if ((m->kind == MAP_RING && msync(m->cons, page_size, MS_ASYNC)) ||
		    msync(m->ro, m->ro_len, MS_ASYNC))
			fail(t, op, "after step %d, maps[%d] (kind %d, cons %p, ro %p, %zu bytes) is no longer mapped",
			     what, i, m->kind, m->cons, m->ro, m->ro_len);
	}
}

/* Turns a ring mapping into a plain one: consume needs it whole. */
static void demote_map(struct map *m)
{
	if (m->kind == MAP_RING)
		munmap(m->cons, page_size);
	m->kind = MAP_JUNK;
}

/*
 * What else the mm does to a mapping: shrink, grow (never: the ring's
 * size is fixed), move, advise, lock, sync; then touch it again.
 */
static void op_vma(struct thr *t)
{
	static const int advice[] = {
		MADV_DONTNEED, MADV_WILLNEED, MADV_DONTFORK, MADV_DOFORK,
		MADV_DONTDUMP, MADV_COLD, MADV_PAGEOUT, MADV_REMOVE,
		MADV_SEQUENTIAL, MADV_FREE,
	};
	struct map *m = &maps[below(&t->r, NR_MAPS)];
	int ret = 0, adv, what;
	void *p;

	pthread_rwlock_wrlock(&maplock);
	if (m->kind == MAP_NONE)
		goto out;
	switch ((what = below(&t->r, 6))) {
	case 0:
		if (m->ro_len <= (size_t)page_size)
			goto out;
		p = mremap(m->ro, m->ro_len, m->ro_len - page_size, 0);
		ret = p == MAP_FAILED ? -1 : 0;
		if (!ret) {
			m->ro_len -= page_size;
			demote_map(m);
		}
		break;
	case 1:
		p = mremap(m->ro, m->ro_len, m->ro_len + page_size,
			   MREMAP_MAYMOVE);
		if (p != MAP_FAILED) {
			fail(t, OP_VMA, "mremap grew a ring mapping");
			m->ro = p;
			m->ro_len += page_size;
			demote_map(m);
			goto out;
		}
		ret = -1;
		break;
	case 2:
		p = mmap(NULL, m->ro_len, PROT_NONE,
			 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (p == MAP_FAILED)
			goto out;
		/*
		 * A failed move may have unmapped the reservation already,
		 * and another thread may have mapped something there since:
		 * the reservation is left alone (address space only).
		 */
		if (mremap(m->ro, m->ro_len, m->ro_len,
			   MREMAP_MAYMOVE | MREMAP_FIXED, p) == MAP_FAILED)
			ret = -1;
		else
			m->ro = p;
		break;
	case 3:
		adv = advice[below(&t->r, 10)];
		ret = madvise(m->ro, m->ro_len, adv);
		if (!ret && (adv == MADV_DONTNEED || adv == MADV_REMOVE ||
			     adv == MADV_FREE)) {
			m->zapped = true;
			demote_map(m);
		}
		break;
	case 4:
		ret = mlock(m->ro, m->ro_len);
		if (!ret)
			ret = munlock(m->ro, m->ro_len);
		break;
	default:
		ret = msync(m->ro, m->ro_len, one_in(&t->r, 2) ? MS_SYNC :
			    MS_ASYNC | MS_INVALIDATE);
	}
	result(t, OP_VMA, ret, errno, false);
	check_maps(t, OP_VMA, what);
	if (!m->zapped && (m->prot & PROT_READ)) {
		volatile const char *c = m->ro;

		for (size_t i = 0; i < m->ro_len; i += page_size)
			(void)c[i];
	}
out:
	pthread_rwlock_unlock(&maplock);
}

static bool known_cmd(unsigned long cmd)
{
	for (size_t i = 0; i < NR_CMDS; i++)
		if (cmds[i].cmd == cmd)
			return true;
	return false;
}

/* Commands of our magic with numbers, sizes or directions nobody defined. */
static void op_bad_cmd(struct thr *t)
{
	unsigned char buf[512];
	unsigned long cmd;
	struct pick p;
	int ret;

	if (!pick_slot(t, &p, false))
		return;
	do
		cmd = _IOC(below(&t->r, 4), PCB_IOC_MAGIC, below(&t->r, 0x40),
			   below(&t->r, sizeof(buf)));
	while (known_cmd(cmd));
	for (size_t i = 0; i < sizeof(buf); i++)
		buf[i] = rnd(&t->r);
	ret = ioctl(p.fd, cmd, one_in(&t->r, 2) ? (void *)buf :
			       (void *)(uintptr_t)rnd(&t->r));
	result(t, OP_BAD_CMD, ret, errno, raced(&p));
}

static void clamp_timeout(struct thr *t, void *buf, size_t off)
{
	__u64 v = short_timeout(t);

	memcpy((char *)buf + off, &v, sizeof(v));
}

/* Known commands with sparse random bytes: the timeouts kept short. */
static void op_bad_arg(struct thr *t)
{
	const struct cmd_desc *cd = &cmds[below(&t->r, NR_CMDS)];
	size_t size = _IOC_SIZE(cd->cmd);
	__u64 buf[64] = { 0 };
	unsigned char *b = (void *)buf;
	struct pick p;
	int ret;

	if (!pick_slot(t, &p, false))
		return;
	for (int n = 1 + below(&t->r, 8); size && n; n--)
		b[below(&t->r, size)] = rnd(&t->r);
	if (cd->cmd == PCB_IOC_WAIT)
		clamp_timeout(t, b, offsetof(struct pcb_wait, timeout_ns));
	if (cd->cmd == PCB_IOC_PUBLISH)
		clamp_timeout(t, b, offsetof(struct pcb_publish, timeout_ns));
	if (cd->cmd == PCB_IOC_PUBLISH_BATCH)
		clamp_timeout(t, b, offsetof(struct pcb_publish_batch,
					     timeout_ns));
	if (cd->cmd == PCB_IOC_NOTIFY)
		ret = ioctl(p.fd, cd->cmd, (unsigned long)rnd(&t->r));
	else
		ret = ioctl(p.fd, cd->cmd, b);
	__atomic_add_fetch(&sh->count[OP_BAD_ARG], 1, __ATOMIC_RELAXED);
	__atomic_add_fetch(&sh->errs[OP_BAD_ARG][ret ? (errno < NR_ERRNO ? errno : 0) : 0],
			   1, __ATOMIC_RELAXED);
	if (ret && !in_set(cd->errs, errno) && !(errno == EBADF && raced(&p)))
		fail(t, OP_BAD_ARG, "cmd %#lx: errno %s (%d)", cd->cmd,
		     errname(errno), errno);
}

static void op_kill(struct thr *t)
{
	int victim = below(&t->r, NR_PROCS), ret;
	pid_t pid;

	/* Rare: every kill throws away a whole process's state. */
	if (victim == proc_index || !one_in(&t->r, sh->kill_rate))
		return;
	pid = __atomic_load_n(&sh->pids[victim], __ATOMIC_ACQUIRE);
	if (pid <= 0 || now_ns() + PCBT_SEC > sh->deadline_ns)
		return;
	ret = kill(pid, SIGKILL);
	result(t, OP_KILL, ret, errno, false);
	__atomic_add_fetch(&sh->kills, 1, __ATOMIC_RELAXED);
}

static void (*const op_fn[NR_OPS])(struct thr *) = {
	[OP_OPEN] = op_open, [OP_CLOSE] = op_close, [OP_DUP] = op_dup,
	[OP_FORK] = op_fork, [OP_CREATE] = op_create,
	[OP_DELETE] = op_delete, [OP_INFO] = op_info, [OP_LIST] = op_list,
	[OP_TOPEN] = op_topen, [OP_TCLOSE] = op_tclose,
	[OP_PUBLISH] = op_publish, [OP_BATCH] = op_batch,
	[OP_URING] = op_uring, [OP_RING_SETUP] = op_ring_setup,
	[OP_MMAP_RING] = op_mmap_ring, [OP_MMAP_JUNK] = op_mmap_junk,
	[OP_MUNMAP] = op_munmap, [OP_MPROTECT] = op_mprotect,
	[OP_SUBSCRIBE] = op_subscribe, [OP_UNSUBSCRIBE] = op_unsubscribe,
	[OP_SET_FILTER] = op_set_filter, [OP_SUB_INFO] = op_sub_info,
	[OP_STATS] = op_stats, [OP_NOTIFY] = op_notify, [OP_WAIT] = op_wait,
	[OP_POLL] = op_poll, [OP_CONSUME] = op_consume,
	[OP_CONS_WRITE] = op_cons_write, [OP_BAD_CMD] = op_bad_cmd,
	[OP_BAD_ARG] = op_bad_arg, [OP_KILL] = op_kill, [OP_VMA] = op_vma,
};

/* What each thread is doing, for the report of a crash. */
static __thread struct thr *cur_thr;
static struct thr *threads[NR_THREADS];

static void say(const char *msg, int n)
{
	if (write(2, msg, n) < 0)
		_exit(3);
}

/* Not async-signal-safe, but the process is about to die anyway. */
static void dump_pcb_maps(void)
{
	char line[256];
	FILE *f = fopen("/proc/self/maps", "re");

	while (f && fgets(line, sizeof(line), f))
		if (strstr(line, "/dev/pcb"))
			fprintf(stderr, "# fuzz:   map %s", line);
	if (f)
		fclose(f);
}

static void on_crash(int sig, siginfo_t *si, void *uc)
{
	char msg[200];
	int n;

	(void)uc;
	n = snprintf(msg, sizeof(msg),
		     "# fuzz: worker %d gen %d thread %d: signal %d at %p (seed %#llx)\n",
		     proc_index, proc_gen, cur_thr ? cur_thr->index : -1, sig,
		     si->si_addr, (unsigned long long)sh->seed);
	say(msg, n);
	for (int i = 0; i < NR_THREADS; i++) {
		struct thr *t = threads[i];

		if (!t)
			continue;
		n = snprintf(msg, sizeof(msg),
			     "# fuzz:   thread %d: iter %llu in %s\n", i,
			     (unsigned long long)t->iter,
			     t->op >= 0 ? ops[t->op].name : "?");
		say(msg, n);
	}
	for (int i = 0; i < NR_MAPS; i++) {
		n = snprintf(msg, sizeof(msg),
			     "# fuzz:   maps[%d] kind %d cons %p ro %p len %zu prot %d zapped %d\n",
			     i, maps[i].kind, maps[i].cons, maps[i].ro,
			     maps[i].ro_len, maps[i].prot, maps[i].zapped);
		say(msg, n);
	}
	dump_pcb_maps();
	signal(sig, SIG_DFL);
	raise(sig);
}

static void catch_crashes(void)
{
	struct sigaction sa = { .sa_sigaction = on_crash,
				.sa_flags = SA_SIGINFO | SA_RESETHAND };

	sigaction(SIGSEGV, &sa, NULL);
	sigaction(SIGBUS, &sa, NULL);
}

static unsigned int weights[NR_OPS], total_weight;

/* The weights of the operations, less those PCB_FUZZ_SKIP names. */
static void set_weights(void)
{
	const char *skip = getenv("PCB_FUZZ_SKIP") ?: "";

	for (int i = 0; i < NR_OPS; i++) {
		const char *at = skip ? strstr(skip, ops[i].name) : NULL;
		size_t n = strlen(ops[i].name);

		weights[i] = ops[i].weight;
		if (at && (at == skip || at[-1] == ',') &&
		    (at[n] == ',' || !at[n]))
			weights[i] = 0;
		total_weight += weights[i];
	}
}

static int pick_op(struct thr *t)
{
	unsigned int w = below(&t->r, total_weight);

	for (int i = 0; i < NR_OPS; i++) {
		if (w < weights[i])
			return i;
		w -= weights[i];
	}
	return OP_OPEN;
}

static void *thread_main(void *arg)
{
	struct thr *t = arg;

	cur_thr = t;
	while (now_ns() < sh->deadline_ns) {
		__u64 n = __atomic_add_fetch(&sh->ops_total, 1,
					     __ATOMIC_RELAXED);
		int op;

		if (sh->iters_cap && n > sh->iters_cap)
			break;
		op = pick_op(t);
		/* Without an endpoint most operations have nothing to use. */
		if (!pick_slot(t, &(struct pick){ 0 }, false) && one_in(&t->r, 2))
			op = OP_OPEN;
		t->op = op;
		op_fn[op](t);
		t->iter++;
	}
	return NULL;
}

/* One worker process: NR_THREADS threads until the deadline. */
static int worker(int index, int gen, bool drop)
{
	struct thr *t[NR_THREADS];
	pthread_t tid[NR_THREADS];
	__u64 now = now_ns();

	proc_index = index;
	proc_gen = gen;
	/* The watchdog: a worker must be gone well after the deadline. */
	alarm((sh->deadline_ns > now ? (sh->deadline_ns - now) / PCBT_SEC : 0) + 60);
	if (drop && (setgroups(0, NULL) || setresgid(PCBT_NOBODY, PCBT_NOBODY,
						     PCBT_NOBODY) ||
		     setresuid(PCBT_NOBODY, PCBT_NOBODY, PCBT_NOBODY)))
		return 2;
	catch_crashes();
	set_weights();
	page_size = sysconf(_SC_PAGESIZE);
	ro_page = mmap(NULL, page_size, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS,
		       -1, 0);
	none_page = pcbt_no_access_page();
	if (ro_page == MAP_FAILED || !none_page)
		return 2;
	for (int i = 0; i < NR_SLOTS; i++)
		slots[i].fd = -1;
	/* io_uring fds first: later fds must all be endpoints. */
	for (int i = 0; i < NR_THREADS; i++) {
		__u64 x = sh->seed ^ ((__u64)index << 48) ^ ((__u64)gen << 32) ^ i;

		t[i] = calloc(1, sizeof(*t[i]));
		if (!t[i])
			return 2;
		t[i]->index = i;
		t[i]->op = -1;
		threads[i] = t[i];
		rng_seed(&t[i]->r, splitmix(&x));
		t[i]->have_u = !pcbt_uring_init(&t[i]->u, 8,
						  IORING_SETUP_SQE128 |
						  IORING_SETUP_CQE32);
	}
	for (int i = 0; i < NR_THREADS; i++)
		if (pthread_create(&tid[i], NULL, thread_main, t[i]))
			return 2;
	for (int i = 0; i < NR_THREADS; i++)
		pthread_join(tid[i], NULL);
	return 0;
}

static pid_t spawn(int index, int gen, bool drop)
{
	pid_t pid = fork();

	if (pid == 0)
		_exit(worker(index, gen, drop));
	if (pid > 0)
		__atomic_store_n(&sh->pids[index], pid, __ATOMIC_RELEASE);
	return pid;
}

/* Deletes every name of the pool: what killed workers left behind. */
static void delete_topics(void)
{
	int fd = open(PCB_DEVICE_PATH, O_RDWR | O_CLOEXEC);
	static const char *const ends[] = { "a", "b.c" };

	if (fd < 0)
		return;
	for (int i = 0; i < NR_NAMES; i++)
		for (int j = 0; j < 2; j++) {
			struct pcb_topic_name tn = { 0 };

			snprintf(tn.name, sizeof(tn.name), "fz%u/t-%d:%s",
				 sh->tag, i, ends[j]);
			ioctl(fd, PCB_IOC_TOPIC_DELETE, &tn);
		}
	{
		struct pcb_topic_name tn = { 0 };

		memset(tn.name, 'b', PCB_NAME_MAX - 1);
		ioctl(fd, PCB_IOC_TOPIC_DELETE, &tn);
	}
	close(fd);
}

/*
 * The supervisor: forks the workers, respawns the killed ones while there
 * is time, and reports a worker that died otherwise (a watchdog alarm is a
 * hang).  Returns the number of such failures.
 */
static int supervise(bool as_root)
{
	int gens[NR_PROCS] = { 0 }, live = 0, bad = 0, st;
	pid_t pid;

	for (int i = 0; i < NR_PROCS; i++) {
		if (spawn(i, 0, as_root && i == NR_PROCS - 1) < 0)
			return 1;
		live++;
	}
	while (live) {
		int i;

		pid = waitpid(-1, &st, 0);
		if (pid < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		for (i = 0; i < NR_PROCS; i++)
			if (sh->pids[i] == pid)
				break;
		if (i == NR_PROCS)
			continue;
		if (WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL &&
		    now_ns() + PCBT_SEC < sh->deadline_ns) {
			__atomic_add_fetch(&sh->respawns, 1, __ATOMIC_RELAXED);
			if (spawn(i, ++gens[i], as_root && i == NR_PROCS - 1) > 0)
				continue;
		}
		live--;
		__atomic_store_n(&sh->pids[i], 0, __ATOMIC_RELEASE);
		if ((WIFEXITED(st) && WEXITSTATUS(st)) ||
		    (WIFSIGNALED(st) && WTERMSIG(st) != SIGKILL)) {
			fprintf(stderr, "# fuzz: worker %d (gen %d) %s %d (seed %#llx)\n",
				i, gens[i], WIFEXITED(st) ? "exited" : "died of signal",
				WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st),
				(unsigned long long)sh->seed);
			bad++;
		}
	}
	delete_topics();
	return bad;
}

/* ---- /proc/pcb/usage ---------------------------------------------------- */

static const char *const usage_keys[] = {
	"buses", "topics", "endpoints", "subscriptions", "rings",
	"ring_pages", "filters", "users",
};

#define NR_USAGE (sizeof(usage_keys) / sizeof(usage_keys[0]))

static int read_usage(long long v[NR_USAGE])
{
	char line[128], key[64];
	long long val;
	unsigned int seen = 0;
	FILE *f = fopen("/proc/pcb/usage", "re");

	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f))
		for (size_t i = 0; i < NR_USAGE; i++)
			if (sscanf(line, "%63s %lld", key, &val) == 2 &&
			    !strcmp(key, usage_keys[i])) {
				v[i] = val;
				seen |= 1U << i;
			}
	fclose(f);
	return seen == (1U << NR_USAGE) - 1 ? 0 : -EINVAL;
}

static bool usage_back(const long long base[NR_USAGE], long long now[NR_USAGE])
{
	if (read_usage(now))
		return false;
	for (size_t i = 0; i < NR_USAGE; i++)
		if (now[i] > base[i])
			return false;
	return true;
}

/* ---- the test ------------------------------------------------------------ */

static __u64 env_u64(const char *name, __u64 def)
{
	const char *s = getenv(name);

	return s && *s ? strtoull(s, NULL, 0) : def;
}

static void print_totals(void)
{
	__u64 total = 0;

	for (int i = 0; i < NR_OPS; i++)
		total += sh->count[i];
	printf("# fuzz: seed %#llx: %llu operations, %llu records checked, %llu kills, %llu respawns, %llu unexpected\n",
	       (unsigned long long)sh->seed, (unsigned long long)total,
	       (unsigned long long)sh->records, (unsigned long long)sh->kills,
	       (unsigned long long)sh->respawns,
	       (unsigned long long)sh->unexpected);
	for (int i = 0; i < NR_OPS; i++) {
		char line[1024];
		int n;

		n = snprintf(line, sizeof(line), "# fuzz: %-14s %8llu:",
			     ops[i].name, (unsigned long long)sh->count[i]);
		for (int e = 0; e < NR_ERRNO && n < (int)sizeof(line) - 40; e++)
			if (sh->errs[i][e])
				n += snprintf(line + n, sizeof(line) - n,
					      " %s %llu", e ? errname(e) : "ok",
					      (unsigned long long)sh->errs[i][e]);
		puts(line);
	}
	fflush(stdout);
}

FIXTURE(fuzz) {
	bool root;
	long long base[NR_USAGE];
};

FIXTURE_SETUP(fuzz)
{
	int fd;

	PCBT_OPEN(fd);
	close(fd);
	self->root = pcbt_is_root();
	if (self->root)
		ASSERT_EQ(0, read_usage(self->base));
}

FIXTURE_TEARDOWN(fuzz)
{
}

/* The harness timeout is set from PCB_FUZZ_SECONDS in main(). */
TEST_F_TIMEOUT(fuzz, run, 30)
{
	__u64 seconds = env_u64("PCB_FUZZ_SECONDS", 20);
	long long now[NR_USAGE];
	pid_t pid;
	int st, bad;

	sh = mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE,
		  MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, sh);
	sh->seed = env_u64("PCB_FUZZ_SEED", pcbt_now_ns(CLOCK_REALTIME) ^
						    ((__u64)getpid() << 32));
	sh->iters_cap = env_u64("PCB_FUZZ_ITERS", 0);
	sh->tag = getpid();
	sh->kill_rate = env_u64("PCB_FUZZ_KILL", 100) ?: 1;
	printf("# fuzz: seed %#llx (PCB_FUZZ_SEED=%#llx reproduces each thread's operations), %llu s, %d processes x %d threads, %s\n",
	       (unsigned long long)sh->seed, (unsigned long long)sh->seed,
	       (unsigned long long)seconds, NR_PROCS, NR_THREADS,
	       self->root ? "root, in a new IPC namespace" : "unprivileged");
	fflush(stdout);
	sh->deadline_ns = now_ns() + seconds * PCBT_SEC;

	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		if (self->root && unshare(CLONE_NEWIPC))
			_exit(100);
		_exit(supervise(self->root) ? 1 : 0);
	}
	ASSERT_EQ(pid, waitpid(pid, &st, 0));
	print_totals();
	ASSERT_TRUE(WIFEXITED(st));
	bad = WEXITSTATUS(st);
	EXPECT_NE(100, bad) TH_LOG("unshare(CLONE_NEWIPC) failed");
	EXPECT_EQ(0, bad) TH_LOG("a worker died or hung (seed %#llx)",
				 (unsigned long long)sh->seed);
	EXPECT_EQ(0ULL, sh->unexpected) TH_LOG("unexpected results (seed %#llx)",
					    (unsigned long long)sh->seed);
	EXPECT_LT(0ULL, sh->count[OP_PUBLISH]);
	if (!self->root)
		return;

	/* Everything gone: rings after RCU, the dead namespace's bus at read. */
	for (int i = 0; i < LEAK_WAIT_S * 10 && !usage_back(self->base, now); i++)
		pcbt_sleep_ms(100);
	for (size_t i = 0; i < NR_USAGE; i++) {
		printf("# fuzz: usage %-13s before %lld after %lld\n",
		       usage_keys[i], self->base[i], now[i]);
		EXPECT_LE(now[i], self->base[i]) TH_LOG("leak: %s (seed %#llx)",
			usage_keys[i], (unsigned long long)sh->seed);
	}
}

int main(int argc, char **argv)
{
	/* Run time, the leak check's wait, and room for a slow VM. */
	_fuzz_run_object.timeout = env_u64("PCB_FUZZ_SECONDS", 20) + 60 +
				   LEAK_WAIT_S + 60;
	return test_harness_run(argc, argv);
}
