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
 * Among those operations are attacks: a consumer that writes a position
 * past the first record the kernel is still writing into its ring (BUSY)
 * and at once publishes a message as big as the ring ("forge"), a
 * publisher whose payload, batch entries and arguments another thread
 * keeps changing while the kernel reads them ("flip_publish"), and batches
 * too big for the uapi's limits, 4096 entries of 1 MiB pointing at one
 * buffer among them, to a topic with a lossy ring too small for them
 * ("big_batch"), which must fail with the exact errno the uapi gives.
 *
 * Beside the workers, an honest process publishes to a few topics of its
 * own (mode 0777: the workers subscribe to them, share rings with them and
 * publish to them too, with the attacks above) messages whose every byte
 * derives from the publisher, topic and counter, and consumes them on
 * reliable, filtered (one of them changing its filters all along) and
 * lossy subscriptions, checking every record: its bytes, its pid and
 * uid, the topic's order, the subscription's filter (evaluated again on
 * the delivered bytes), and for reliable subscribers that every message
 * whose publish succeeded, and that every filter which may have judged it
 * takes, arrived exactly once.
 * Records of the workers must say they came from a worker, read the same
 * in every honest ring and satisfy the filters too.  A broken guarantee is
 * a VIOLATION, printed with what is needed to debug it, and fails the run.
 *
 * Environment:
 *  PCB_FUZZ_SEED     the seed (default: from the clock; always printed)
 *  PCB_FUZZ_SECONDS  wall time of the run (default 20)
 *  PCB_FUZZ_ITERS    optional cap on the operations of the whole run
 *  PCB_FUZZ_KILL     one kill operation in this many kills (default 100)
 *  PCB_FUZZ_SKIP     operations to leave out, by name, comma-separated
 *                    (default: none)
 *  PCB_FUZZ_HONEST   0 leaves the honest process out (default 1)
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
#define MAX_WORKER_PIDS	16384	/* workers that ever ran */

/* The honest process: topics, publisher and consumer threads. */
#define NR_HONEST	3
#define NR_HPUBS	2
#define NR_HSUBS	5
#define MAX_ERAS	1024	/* filters of one subscription over the run */
#define HLOG		4096	/* publish log entries per publisher and topic */
#define HMAGIC		0x484f4e31U	/* "HON1" */
#define FLIP_MAGIC	0x464c5031U	/* "FLP1": flipped payloads */
#define DEAD_MAGIC	0x44454144U	/* entries of batches that must fail */
#define OWN_MSG_MAX	(4096U - 128)	/* a 4 KiB ring still takes one */
#define BIG_MSG		(1024U * 1024)	/* the big batches' topic */
#define BIG_RING	(2U << 20)	/* the smallest ring that takes one */

/* One shared description of every operation: name and allowed errnos. */
enum op {
	OP_OPEN, OP_CLOSE, OP_DUP, OP_FORK,
	OP_CREATE, OP_DELETE, OP_INFO, OP_LIST, OP_TOPEN, OP_TCLOSE,
	OP_PUBLISH, OP_BATCH, OP_URING,
	OP_RING_SETUP, OP_MMAP_RING, OP_MMAP_JUNK, OP_MUNMAP, OP_MPROTECT,
	OP_SUBSCRIBE, OP_UNSUBSCRIBE, OP_SET_FILTER, OP_SUB_INFO, OP_STATS,
	OP_NOTIFY, OP_WAIT, OP_POLL, OP_CONSUME, OP_CONS_WRITE,
	OP_BAD_CMD, OP_BAD_ARG, OP_KILL, OP_VMA,
	OP_FORGE, OP_FLIP, OP_BIG,
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
				EINVAL, ENAMETOOLONG, EFAULT, ENOMEM, EDQUOT) },
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
	[OP_STATS]	 = { "stats", 2, E(ENOENT, EACCES, EINVAL, EFAULT) },
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
	/*
	 * The attacks.  Their own calls may only fail for lack of room or
	 * memory (the forger's ring set-up), or when the forger's ring is
	 * broken (EPIPE); big_batch checks exact errnos itself.
	 */
	[OP_FORGE]	 = { "forge", 3, E(EAGAIN, ETIMEDOUT, ENOMEM, EMFILE,
				ENFILE, EDQUOT, EPIPE) },
	[OP_FLIP]	 = { "flip_publish", 3, E(EAGAIN, ETIMEDOUT, E2BIG, EINTR,
				ECANCELED) },
	[OP_BIG]	 = { "big_batch", 1, E(ENOMEM, EMFILE, ENFILE, EDQUOT) },
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
				ENAMETOOLONG, EFAULT, ENOMEM, EDQUOT) },
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
	{ PCB_IOC_STATS, E(ENOENT, EACCES, EINVAL, EFAULT) },
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

	__u64 start_ns;
	__u64 violations;		/* broken guarantees */
	unsigned int viol_lines;
	bool honest;			/* PCB_FUZZ_HONEST */
	__u32 honest_ids[NR_HONEST];
	pid_t honest_pid;
	__u32 honest_uid;		/* what its records must say */
	__u32 nobody_uid;		/* ... and those of the dropped worker */
	unsigned int forgers;		/* workers whose forger is subscribed */
	/* Every worker process that ran, registered before its first call. */
	unsigned int nr_worker_pids;
	pid_t worker_pids[MAX_WORKER_PIDS];

	/* What the honest process and the attacks did, for the summary. */
	__u64 h_accepted, h_failed, h_records, h_foreign, h_verified,
	      h_filtered, h_lost_ok;
	__u64 forge_busy, forge_flood, forge_broken, flip_msgs, big_refused,
	      big_missed;
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

/*
 * For operations that may use the honest topics too: subscribing (and so
 * sharing a ring with them), publishing, looking up; never deleting.
 */
static void topic_name_any(struct thr *t, char name[PCB_NAME_MAX])
{
	if (sh->honest && one_in(&t->r, 4))
		snprintf(name, PCB_NAME_MAX, "fz%u/honest-%u", sh->tag,
			 (unsigned int)below(&t->r, NR_HONEST));
	else
		topic_name(t, name);
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

/* ---- guarantees: violations, honest payloads, filters ------------------- */

/*
 * A guarantee of the uapi broken: printed (the first few in full) and
 * counted; the run fails.  Unlike fail(), not about an errno.
 */
static void __attribute__((format(printf, 1, 2))) violation(const char *fmt, ...)
{
	__u64 ms = (now_ns() - sh->start_ns) / PCBT_MS;
	char msg[480];
	va_list ap;

	__atomic_add_fetch(&sh->violations, 1, __ATOMIC_RELAXED);
	if (__atomic_fetch_add(&sh->viol_lines, 1, __ATOMIC_RELAXED) >= 30)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	fprintf(stderr, "# fuzz: VIOLATION at %llu.%03llu s: %s (seed %#llx, pid %d)\n",
		ms / 1000, ms % 1000, msg, (unsigned long long)sh->seed,
		(int)getpid());
}

/*
 * An honest message: this header, then filler bytes drawn from a generator
 * seeded with @hash.  Every byte, the length and the key follow from
 * (run seed, publisher, topic, counter): a consumer rebuilds the message
 * to check what it got, and asks its filter about one it did not get.
 */
struct hmsg {
	__u32 sel;		/* 0: 0 to 3, what most filters look at */
	__u32 magic;		/* 4: HMAGIC */
	__u16 pub;		/* 8: publisher thread */
	__u16 topic;		/* 10: honest topic index */
	__u32 len;		/* 12: payload length */
	__u64 counter;		/* 16: per publisher and topic, from 0 */
	__u64 hash;		/* 24 */
};

#define HMSG_HDR	((__u32)sizeof(struct hmsg))

static const __u32 honest_max[NR_HONEST] = { 512, 1024, 2048 };

struct hspec {
	__u32 len;
	__u32 sel;
	__u64 key;
	__u64 hash;
};

static void hspec(unsigned int pub, unsigned int topic, __u64 counter,
		  struct hspec *sp)
{
	__u64 x = sh->seed ^ ((__u64)pub << 56) ^ ((__u64)topic << 48) ^
		  (counter * 0x9e3779b97f4a7c15ULL);
	__u64 h = splitmix(&x);
	__u32 room = honest_max[topic] - HMSG_HDR;

	/* Mostly short, one in four up to the topic's largest. */
	sp->len = HMSG_HDR + (__u32)((h >> 8) % ((h & 3) ? 161 : room + 1));
	sp->sel = (h >> 40) & 3;
	sp->key = splitmix(&x);
	sp->hash = splitmix(&x);
}

static void hfill(unsigned char *p, __u32 n, __u64 hash)
{
	while (n) {
		__u64 v = splitmix(&hash);
		__u32 k = n < 8 ? n : 8;

		memcpy(p, &v, k);
		p += k;
		n -= k;
	}
}

/* Builds message (@pub, @topic, @counter) in @buf; returns its length. */
static __u32 hmsg_build(void *buf, unsigned int pub, unsigned int topic,
			__u64 counter, __u64 *key)
{
	struct hmsg *m = buf;
	struct hspec sp;

	hspec(pub, topic, counter, &sp);
	m->sel = sp.sel;
	m->magic = HMAGIC;
	m->pub = pub;
	m->topic = topic;
	m->len = sp.len;
	m->counter = counter;
	m->hash = sp.hash;
	hfill((unsigned char *)buf + HMSG_HDR, sp.len - HMSG_HDR, sp.hash);
	*key = sp.key;
	return sp.len;
}

static bool hfill_ok(const unsigned char *p, __u32 n, __u64 hash)
{
	unsigned char want[256];

	while (n) {
		__u32 k = n < sizeof(want) ? n : sizeof(want);

		hfill(want, k, hash);
		if (memcmp(p, want, k))
			return false;
		/* hfill() draws one value per 8 bytes. */
		for (__u32 i = 0; i < k; i += 8)
			splitmix(&hash);
		p += k;
		n -= k;
	}
	return true;
}

/* Says why in @why; returns -1. */
static int __attribute__((format(printf, 3, 4)))
whyf(char *why, size_t why_len, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, why_len, fmt, ap);
	va_end(ap);
	return -1;
}

/*
 * A record under the honest process's pid, in honest topic @topic, against
 * the message it names: 0 and its publisher and counter, or -1 and @why.
 */
static int hmsg_check(const struct pcb_record *rec, unsigned int topic,
		      unsigned int *pub, __u64 *counter, char *why,
		      size_t why_len)
{
	const struct hmsg *m = (const void *)pcbt_payload(rec);
	struct hspec sp;

	if (rec->payload_len < HMSG_HDR || m->magic != HMAGIC)
		return whyf(why, why_len, "%u bytes that are no honest message (magic %#x)",
			    rec->payload_len, rec->payload_len >= 8 ? m->magic : 0);
	if (m->pub >= NR_HPUBS || m->topic != topic)
		return whyf(why, why_len, "a message of publisher %u, topic %u",
			    m->pub, m->topic);
	hspec(m->pub, topic, m->counter, &sp);
	if (m->len != sp.len || rec->payload_len != sp.len ||
	    m->sel != sp.sel || m->hash != sp.hash)
		return whyf(why, why_len, "publisher %u message %llu: length %u (record %u, sent %u), header corrupt",
			    m->pub, (unsigned long long)m->counter, m->len,
			    rec->payload_len, sp.len);
	if (rec->key != sp.key)
		return whyf(why, why_len, "publisher %u message %llu: key %#llx, sent %#llx",
			    m->pub, (unsigned long long)m->counter,
			    (unsigned long long)rec->key,
			    (unsigned long long)sp.key);
	if (!hfill_ok((const unsigned char *)m + HMSG_HDR, sp.len - HMSG_HDR,
		      sp.hash))
		return whyf(why, why_len, "publisher %u message %llu: payload bytes differ from those sent",
			    m->pub, (unsigned long long)m->counter);
	if (rec->uid != sh->honest_uid || rec->nr_deps)
		return whyf(why, why_len, "publisher %u message %llu: uid %u (sent by %u), %u dependencies",
			    m->pub, (unsigned long long)m->counter, rec->uid,
			    sh->honest_uid, rec->nr_deps);
	*pub = m->pub;
	*counter = m->counter;
	return 0;
}

/* A filter of one subscription, to evaluate again in userspace. */
struct hfilter {
	unsigned int nr;
	struct pcb_filter_pred p[4];
};

static __u64 width_mask(unsigned int width)
{
	return width >= 8 ? ~0ULL : (1ULL << (8 * width)) - 1;
}

static __s64 sign_extend(__u64 v, unsigned int width)
{
	unsigned int shift = 64 - 8 * width;

	return (__s64)(v << shift) >> shift;
}

/* The field a predicate tests, as "Filters" in the uapi defines it. */
static bool pred_field(const struct pcb_filter_pred *p, __u64 key, __u32 uid,
		       __u32 pid, const unsigned char *data, __u32 len,
		       __u64 *v, unsigned int *width)
{
	switch (p->field) {
	case PCB_FIELD_KEY:
		*width = 8;
		*v = key;
		return true;
	case PCB_FIELD_UID:
		*width = 4;
		*v = uid;
		return true;
	case PCB_FIELD_PID:
		*width = 4;
		*v = pid;
		return true;
	case PCB_FIELD_LEN:
		*width = 4;
		*v = len;
		return true;
	}
	*width = p->width;
	if ((__u64)p->offset + p->width > len)
		return false;
	*v = 0;
	for (unsigned int i = 0; i < p->width; i++) {
		unsigned int b = p->flags & PCB_PRED_BE ? i : p->width - 1 - i;

		*v = (*v << 8) | data[p->offset + b];
	}
	return true;
}

static bool pred_holds(const struct pcb_filter_pred *p, __u64 key, __u32 uid,
		       __u32 pid, const unsigned char *data, __u32 len)
{
	unsigned int width;
	__u64 v, value, wmask;
	__s64 a, b;

	if (!pred_field(p, key, uid, pid, data, len, &v, &width))
		return false;
	wmask = width_mask(width);
	v &= (p->mask ? p->mask : wmask) & wmask;
	value = p->value & wmask;
	switch (p->op) {
	case PCB_OP_EQ:
		return v == value;
	case PCB_OP_NE:
		return v != value;
	case PCB_OP_ALL:
		return (v & value) == value;
	case PCB_OP_ANY:
		return v & value;
	}
	a = p->flags & PCB_PRED_SIGNED ? sign_extend(v, width) : 0;
	b = p->flags & PCB_PRED_SIGNED ? sign_extend(value, width) : 0;
	switch (p->op) {
	case PCB_OP_LT:
		return p->flags & PCB_PRED_SIGNED ? a < b : v < value;
	case PCB_OP_LE:
		return p->flags & PCB_PRED_SIGNED ? a <= b : v <= value;
	case PCB_OP_GT:
		return p->flags & PCB_PRED_SIGNED ? a > b : v > value;
	default:
		return p->flags & PCB_PRED_SIGNED ? a >= b : v >= value;
	}
}

/* Runs joined by PCB_PRED_OR hold when one of theirs does; all runs must. */
static bool filter_takes(const struct hfilter *f, __u64 key, __u32 uid,
			 __u32 pid, const unsigned char *data, __u32 len)
{
	bool run = false;

	for (unsigned int i = 0; i < f->nr; i++) {
		run = run || pred_holds(&f->p[i], key, uid, pid, data, len);
		if (f->p[i].flags & PCB_PRED_OR)
			continue;
		if (!run)
			return false;
		run = false;
	}
	return true;
}

static void filter_text(const struct hfilter *f, char *buf, size_t size)
{
	size_t n = 0;

	buf[0] = 0;
	for (unsigned int i = 0; i < f->nr && n < size; i++) {
		const struct pcb_filter_pred *p = &f->p[i];
		int k = snprintf(buf + n, size - n,
				 "%sfield %u op %u w%u@%u mask %#llx val %#llx fl %#x",
				 i ? (f->p[i - 1].flags & PCB_PRED_OR ? " | " : ", ") : "",
				 p->field, p->op, p->width, p->offset,
				 (unsigned long long)p->mask,
				 (unsigned long long)p->value, p->flags);

		if (k < 0)
			break;
		n += k;
	}
	if (!f->nr)
		snprintf(buf, size, "none");
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
	topic_name_any(t, ti.name);
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
	topic_name_any(t, to.name);
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
	topic_name_any(t, s.name);
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

/* ---- attacks ------------------------------------------------------------- */

static void honest_name(char name[PCB_NAME_MAX], unsigned int i)
{
	snprintf(name, PCB_NAME_MAX, "fz%u/honest-%u", sh->tag, i);
}

/* Topics of a worker's own, by process slot: a respawn finds them again. */
static void own_name(char name[PCB_NAME_MAX], const char *what, int idx)
{
	snprintf(name, PCB_NAME_MAX, "fz%u/%s-%d", sh->tag, what, idx);
}

/* Creates a topic of ours if it is not there; 0 or the errno. */
static int ensure_topic(int fd, const char *name, __u32 max, __u32 mode)
{
	struct pcb_topic_create tc = {
		.max_msg_size = max, .mode = mode,
		.uid = PCB_OWNER_CALLER, .gid = PCB_OWNER_CALLER,
	};

	snprintf(tc.name, sizeof(tc.name), "%s", name);
	if (ioctl(fd, PCB_IOC_TOPIC_CREATE, &tc) && errno != EEXIST)
		return errno;
	return 0;
}

static int open_handle(int fd, const char *name, __u32 *handle)
{
	struct pcb_topic_open to = { 0 };

	snprintf(to.name, sizeof(to.name), "%s", name);
	if (ioctl(fd, PCB_IOC_TOPIC_OPEN, &to))
		return errno;
	*handle = to.handle;
	return 0;
}

static int sub_name(int fd, const char *name, __u32 flags)
{
	struct pcb_subscribe s = { .flags = flags };

	snprintf(s.name, sizeof(s.name), "%s", name);
	return ioctl(fd, PCB_IOC_SUBSCRIBE, &s) ? errno : 0;
}

/*
 * The forger of a worker process: a 4 KiB ring, subscribed lossily to
 * every honest topic and to a topic of its own, made when the worker
 * starts: the honest consumers subscribe later, so that a kernel that
 * copied messages from the first ring into the others would copy from
 * this one.  Its publish handles serve flip_publish too.
 */
static struct {
	pthread_mutex_t lock;
	struct pcbt_ring r;
	bool ok;
	__u32 own;
	__u32 honest[NR_HONEST];
	__u64 armed_until;		/* see op_forge() */
	int flood, keeping;		/* see attacker_main() */
} fg = { .lock = PTHREAD_MUTEX_INITIALIZER };

/* 0, or an errno of OP_FORGE's own; fg.lock held. */
static int forger_setup(void)
{
	char name[PCB_NAME_MAX];
	int fd, err;

	fd = pcbt_ring_open(4096, &fg.r);
	if (fd < 0)
		return -fd;
	own_name(name, "own", proc_index);
	err = ensure_topic(fd, name, OWN_MSG_MAX, 0777);
	if (!err)
		err = open_handle(fd, name, &fg.own);
	if (!err)
		err = sub_name(fd, name, PCB_SUB_LOSSY);
	for (unsigned int i = 0; !err && i < NR_HONEST; i++) {
		honest_name(name, i);
		err = open_handle(fd, name, &fg.honest[i]);
		if (!err)
			err = sub_name(fd, name, PCB_SUB_LOSSY);
	}
	if (err) {
		pcbt_ring_close(&fg.r);
		return err;
	}
	fg.ok = true;
	return 0;
}

/*
 * Walks the ring from its position towards @prod over complete records;
 * stops at the first BUSY one (*@busy) and returns where it stopped.  A
 * length that makes no sense ends the walk at @prod: a ring the forger
 * abused may hold anything.
 */
static __u64 walk_ring(const struct pcbt_ring *r, __u64 prod, __u64 *busy)
{
	__u64 pos = r->pos;

	*busy = ~0ULL;
	while (pos < prod && prod - pos <= r->size) {
		/* B: pairs with the kernel's commit (2). */
		__u32 len = pcbt_load_acquire(&pcbt_ring_at(r, pos)->len);

		if (len & PCB_REC_BUSY) {
			*busy = pos;
			break;
		}
		if (!PCB_REC_SIZE(len) || PCB_REC_SIZE(len) > prod - pos)
			return prod;
		pos += PCB_REC_SIZE(len);
	}
	return pos;
}

/* A broken ring must say so where the uapi says it does. */
static void check_broken(struct thr *t, int fd)
{
	struct pcb_wait w = { .timeout_ns = PCBT_MS };
	struct pollfd pfd = { .fd = fd, .events = POLLIN };
	char name[PCB_NAME_MAX];
	int err;

	__atomic_add_fetch(&sh->forge_broken, 1, __ATOMIC_RELAXED);
	if (!ioctl(fd, PCB_IOC_WAIT, &w) || errno != EPIPE)
		fail(t, OP_FORGE, "WAIT on a broken ring: %s, expected EPIPE",
		     errname(errno));
	if (poll(&pfd, 1, 0) != 1 || !(pfd.revents & POLLERR))
		fail(t, OP_FORGE, "poll on a broken ring: revents %#x, expected POLLERR",
		     pfd.revents);
	own_name(name, "spare", 0);
	err = sub_name(fd, name, PCB_SUB_LOSSY);
	if (err != EPIPE && err != EDQUOT)
		fail(t, OP_FORGE, "SUBSCRIBE with a broken ring: %s, expected EPIPE",
		     errname(err));
}

/*
 * One look at the forger's ring, as the attacker thread of the worker
 * takes it (fg.lock held): gives back what is complete, as an honest
 * consumer would, or, @armed, when it finds a record the kernel is still
 * writing (BUSY), moves the consumer position past it (to prod_pos, just
 * past it, or in between) and at once publishes a message as big as the
 * ring, of zeroes or noise, to the forger's own topic.  A kernel that
 * trusts the position lets that message overwrite the one it is still
 * writing, which it may then copy to the other subscribers.  Returns
 * whether it jumped.  The message is as big as a 4 KiB ring takes (64
 * bytes of header and 64 of dependencies less): it covers all but the
 * end of the last record before it.
 */
static bool forge_step(struct rng *rg, unsigned char *junk, bool armed)
{
	struct pcbt_ring *r = &fg.r;
	__u64 prod = pcbt_prod_pos(r), busy, to;
	int err;

	r->pos = walk_ring(r, prod, &busy);
	if (busy == ~0ULL || !armed) {
		pcbt_ring_release(r);
		return false;
	}
	switch (below(rg, 3)) {
	case 0:
		to = busy + PCB_REC_SIZE(pcbt_load_once(&pcbt_ring_at(r, busy)->len));
		break;
	case 1:
		to = busy + 8 * (1 + below(rg, (prod - busy) / 8));
		break;
	default:
		to = prod;
	}
	r->pos = to < prod ? to : prod;
	pcbt_ring_store_cons(r);
	memset(junk, one_in(rg, 2) ? 0 : 0xee, OWN_MSG_MAX);
	err = -pcbt_publish(r->fd, fg.own, junk, OWN_MSG_MAX,
			    PCB_PUB_NONBLOCK, 0, NULL);
	if (err && err != EAGAIN)
		fail(NULL, OP_FORGE, "publishing after the jump: %s",
		     errname(err));
	__atomic_add_fetch(&sh->forge_busy, 1, __ATOMIC_RELAXED);
	return true;
}

/*
 * A flood: while the attacker thread keeps storing prod_pos as the
 * consumer position, messages as big as the ring, one after the other;
 * whatever the kernel writes into the ring meanwhile, a kernel that
 * trusts the position lets them overwrite it.  fg.lock held.
 */
static int forge_flood(struct thr *t)
{
	int n = 5 + below(&t->r, 25), err = 0, i;

	/* Noise: the bytes others would receive differ visibly. */
	memset(t->buf, 0xee, OWN_MSG_MAX);
	__atomic_store_n(&fg.flood, 1, __ATOMIC_SEQ_CST);
	for (i = 0; i < n && !err; i++)
		err = -pcbt_publish(fg.r.fd, fg.own, t->buf, OWN_MSG_MAX,
				    PCB_PUB_NONBLOCK, 0, NULL);
	__atomic_store_n(&fg.flood, 0, __ATOMIC_SEQ_CST);
	while (__atomic_load_n(&fg.keeping, __ATOMIC_SEQ_CST))
		sched_yield();
	fg.r.pos = pcbt_load_acquire(&fg.r.cons->cons_pos);
	__atomic_add_fetch(&sh->forge_flood, i, __ATOMIC_RELAXED);
	return err == EAGAIN ? 0 : err;
}

/*
 * Floods, or arms the forger: for the next few milliseconds the attacker
 * thread watches its ring for a BUSY record to jump past (forge_step()).
 */
static void op_forge(struct thr *t)
{
	int err = 0;

	pthread_mutex_lock(&fg.lock);
	if (!fg.ok)
		err = forger_setup();
	if (fg.ok && one_in(&t->r, 2))
		err = forge_flood(t);
	else if (fg.ok)
		pcbt_store_release(&fg.armed_until,
				   now_ns() + (2 + below(&t->r, 6)) * PCBT_MS);
	pthread_mutex_unlock(&fg.lock);
	result(t, OP_FORGE, err ? -1 : 0, err, false);
}

/*
 * flip_publish: the attacker thread of each worker rewrites @buf from @a
 * and @b, and swaps the lengths and payloads of the batch entries and the
 * length of the single publish's argument, while @active is set.  The
 * versions differ in the first word, which honest filters test (1 in @b,
 * 2 in @a), and in their other bytes.
 */
static struct {
	unsigned char buf[2][2048] __attribute__((aligned(64)));
	unsigned char a[2048], b[2048];
	struct pcb_batch_entry e[8];
	__u32 len[2][8];
	unsigned int n;
	struct pcb_publish arg;
	__u32 arg_len[2];
	int active;
} fl;

static void flip_once(unsigned int side)
{
	for (int k = 0; k < 2; k++)
		for (size_t i = 0; i < sizeof(fl.a); i += 8)
			memcpy(&fl.buf[k][i], (side ? fl.b : fl.a) + i, 8);
	for (unsigned int i = 0; i < pcbt_load_once(&fl.n); i++) {
		pcbt_store_once(&fl.e[i].len, fl.len[side][i]);
		pcbt_store_once(&fl.e[i].payload, (uintptr_t)fl.buf[side]);
	}
	pcbt_store_once(&fl.arg.len, fl.arg_len[side]);
}

/*
 * The attacker thread of a worker: stores prod_pos as the forger's
 * consumer position during a flood, flips while a flip_publish runs, else
 * keeps the forger's ring consumed, spinning on it while armed.  @keeping
 * brackets each look at the ring during a flood, so that forge_flood()
 * knows when it is done (sequentially consistent on both sides: whoever
 * comes second sees the other).
 */
static void *attacker_main(void *unused)
{
	unsigned char junk[OWN_MSG_MAX];
	unsigned int side = 0;
	struct rng rg;
	bool armed;

	(void)unused;
	rng_seed(&rg, sh->seed ^ ((__u64)proc_index << 40) ^ proc_gen);
	while (now_ns() < sh->deadline_ns) {
		__atomic_store_n(&fg.keeping, 1, __ATOMIC_SEQ_CST);
		if (__atomic_load_n(&fg.flood, __ATOMIC_SEQ_CST)) {
			pcbt_store_release(&fg.r.cons->cons_pos,
					   pcbt_prod_pos(&fg.r));
			__atomic_store_n(&fg.keeping, 0, __ATOMIC_SEQ_CST);
			continue;
		}
		__atomic_store_n(&fg.keeping, 0, __ATOMIC_SEQ_CST);
		if (pcbt_load_acquire(&fl.active)) {
			flip_once(side ^= 1);
			continue;
		}
		armed = now_ns() < pcbt_load_acquire(&fg.armed_until);
		if (!armed)
			pcbt_sleep_ms(1);
		if (pthread_mutex_trylock(&fg.lock))
			continue;
		if (fg.ok && forge_step(&rg, junk, armed))
			fg.armed_until = 0;
		if (fg.ok && pcbt_ring_flags(&fg.r) & PCB_RING_BROKEN) {
			check_broken(NULL, fg.r.fd);
			pcbt_ring_close(&fg.r);
			fg.ok = false;
		}
		pthread_mutex_unlock(&fg.lock);
	}
	return NULL;
}

static __u32 flip_len(struct thr *t, unsigned int topic)
{
	return 4 + below(&t->r, honest_max[topic] - 3);
}

static void flip_prepare(struct thr *t)
{
	__u32 magic = FLIP_MAGIC;

	for (size_t i = 0; i < sizeof(fl.a); i++) {
		fl.b[i] = rnd(&t->r);
		fl.a[i] = i < 8 || one_in(&t->r, 2) ? fl.b[i] : rnd(&t->r);
	}
	memcpy(fl.a + 4, &magic, 4);
	memcpy(fl.b + 4, &magic, 4);
	memcpy(fl.a, &(__u32){ 2 }, 4);
	memcpy(fl.b, &(__u32){ 1 }, 4);
	memcpy(fl.buf[0], fl.a, sizeof(fl.a));
	memcpy(fl.buf[1], fl.b, sizeof(fl.b));
}

/* One publish through the forger's endpoint, its buffer flipping. */
static int flip_single(struct thr *t, unsigned int topic)
{
	int ret;

	memset(&fl.arg, 0, sizeof(fl.arg));
	fl.arg_len[0] = flip_len(t, topic);
	fl.arg_len[1] = flip_len(t, topic);
	fl.arg.handle = fg.honest[topic];
	fl.arg.payload = (uintptr_t)fl.buf[0];
	fl.arg.len = fl.arg_len[0];
	fl.arg.key = rnd(&t->r);
	fl.arg.flags = one_in(&t->r, 3) ? PCB_PUB_NONBLOCK : 0;
	fl.arg.timeout_ns = short_timeout(t);
	pcbt_store_release(&fl.active, 1);
	ret = ioctl(fg.r.fd, PCB_IOC_PUBLISH, &fl.arg);
	pcbt_store_release(&fl.active, 0);
	if (!ret)
		__atomic_add_fetch(&sh->flip_msgs, 1, __ATOMIC_RELAXED);
	return ret ? errno : 0;
}

static int flip_batch(struct thr *t, bool atomic)
{
	struct pcb_publish_batch b = {
		.entries = (uintptr_t)fl.e,
		.count = 1 + below(&t->r, 8),
		.flags = (atomic ? PCB_PUB_ATOMIC : 0) |
			 (one_in(&t->r, 3) ? PCB_PUB_NONBLOCK : 0),
		.timeout_ns = short_timeout(t),
	};
	unsigned int ok = 0;
	int ret, err;

	pcbt_store_release(&fl.n, 0);
	for (__u32 i = 0; i < b.count; i++) {
		unsigned int topic = below(&t->r, NR_HONEST);

		fl.len[0][i] = flip_len(t, topic);
		fl.len[1][i] = flip_len(t, topic);
		fl.e[i] = (struct pcb_batch_entry){
			.handle = fg.honest[topic], .payload = (uintptr_t)fl.buf[0],
			.len = fl.len[0][i], .key = rnd(&t->r),
			.result = RESULT_UNSET,
		};
	}
	pcbt_store_release(&fl.n, b.count);
	pcbt_store_release(&fl.active, 1);
	ret = ioctl(fg.r.fd, PCB_IOC_PUBLISH_BATCH, &b);
	err = ret ? errno : 0;
	pcbt_store_release(&fl.active, 0);
	pcbt_store_release(&fl.n, 0);
	for (__u32 i = 0; i < b.count; i++) {
		int res = -fl.e[i].result;

		ok += !res;
		if (res && !in_set(E(EAGAIN, ETIMEDOUT, E2BIG), res))
			fail(t, OP_FLIP, "%s batch entry %u: %s",
			     atomic ? "atomic" : "plain", i, errname(res));
		else if (atomic && res != err)
			violation("atomic batch of %u: ioctl %s, entry %u %s",
				  b.count, errname(err), i, errname(res));
	}
	if (!atomic && (err || ok != b.published))
		violation("plain batch of %u: ioctl %s, published %u, %u entries say 0",
			  b.count, errname(err), b.published, ok);
	__atomic_add_fetch(&sh->flip_msgs, ok, __ATOMIC_RELAXED);
	return atomic ? err : 0;
}

static int flip_uring(struct thr *t)
{
	struct __kernel_timespec ts = { .tv_sec = CQE_WAIT_MS / 1000 };
	unsigned int n = 1 + below(&t->r, 6), got = 0;
	struct io_uring_cqe *cqe;
	int err = 0, ret;

	for (unsigned int i = 0; i < n; i++) {
		unsigned int topic = below(&t->r, NR_HONEST);
		struct pcb_uring_publish up = {
			.handle = fg.honest[topic],
			.payload = (uintptr_t)fl.buf[i & 1],
			.len = flip_len(t, topic), .key = rnd(&t->r),
			.flags = one_in(&t->r, 3) ? PCB_PUB_NONBLOCK : 0,
			.timeout_ns = short_timeout(t),
		};

		if (!pcbt_uring_queue(&t->u, fg.r.fd, &up, i))
			n = i;
	}
	pcbt_store_release(&fl.active, 1);
	ret = n ? io_uring_submit(&t->u) : 0;
	if (ret != (int)n) {
		fail(t, OP_FLIP, "submit of %u: %d", n, ret);
		t->have_u = false;
		n = 0;
	}
	while (got < n) {
		do
			ret = io_uring_wait_cqe_timeout(&t->u, &cqe, &ts);
		while (ret == -EINTR);
		if (ret) {
			fail(t, OP_FLIP, "no completion within %d ms: %d",
			     CQE_WAIT_MS, ret);
			t->have_u = false;
			break;
		}
		if (!cqe->res)
			__atomic_add_fetch(&sh->flip_msgs, 1, __ATOMIC_RELAXED);
		else if (!err || -cqe->res != EAGAIN)
			err = -cqe->res;
		io_uring_cqe_seen(&t->u, cqe);
		got++;
	}
	pcbt_store_release(&fl.active, 0);
	return err;
}

/*
 * Publishes to the honest topics from buffers the flipper keeps changing:
 * whatever bytes the kernel took, every honest filter must judge those.
 */
static void op_flip(struct thr *t)
{
	unsigned int topic = below(&t->r, NR_HONEST), how = below(&t->r, 4);
	int err;

	if (!sh->honest || pthread_mutex_trylock(&fg.lock))
		return;
	if (!fg.ok) {
		pthread_mutex_unlock(&fg.lock);
		return;
	}
	flip_prepare(t);
	if (how == 0)
		err = flip_single(t, topic);
	else if (how == 3 && t->have_u)
		err = flip_uring(t);
	else
		err = flip_batch(t, how == 2);
	pthread_mutex_unlock(&fg.lock);
	result(t, OP_FLIP, err ? -1 : 0, err, false);
}

/*
 * big_batch: a topic of the worker's own with 1 MiB messages, a lossy
 * ring of 2 MiB on it (room for one such record: too small for any
 * atomic batch of them), handles of the honest topics for entries that
 * must never be delivered, and one buffer of DEAD_MAGIC words.
 */
static struct {
	pthread_mutex_t lock;
	bool ok, off;
	struct pcbt_ring r;
	__u32 handle;
	__u32 honest[NR_HONEST];
	unsigned char *buf;
	struct pcb_batch_entry *e;	/* PCB_BATCH_MAX + 1 */
	__u64 next_ns;
	char name[PCB_NAME_MAX];
} big = { .lock = PTHREAD_MUTEX_INITIALIZER };

/* 0, or an errno of OP_BIG's own; big.lock held. */
static int big_setup(struct thr *t)
{
	char name[PCB_NAME_MAX];
	int fd, err;

	if (!big.buf) {
		big.buf = mmap(NULL, BIG_MSG, PROT_READ | PROT_WRITE,
			       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		big.e = calloc(PCB_BATCH_MAX + 1, sizeof(*big.e));
		/* No memory for the buffers: no big batches then. */
		big.off = big.buf == MAP_FAILED || !big.e;
		if (big.off)
			return 0;
		for (__u32 i = 0; i < BIG_MSG; i += 4)
			memcpy(big.buf + i, &(__u32){ DEAD_MAGIC }, 4);
	}
	fd = pcbt_ring_open(BIG_RING, &big.r);
	if (fd < 0)
		return -fd;
	own_name(big.name, "big", proc_index);
	err = ensure_topic(fd, big.name, BIG_MSG, 0700);
	if (err == EINVAL) {
		big.off = true;		/* max_msg_size set below 1 MiB */
		err = 0;
	}
	if (!err && !big.off)
		err = open_handle(fd, big.name, &big.handle);
	if (!err && !big.off)
		err = sub_name(fd, big.name, PCB_SUB_LOSSY);
	for (unsigned int i = 0; !err && i < NR_HONEST && sh->honest; i++) {
		honest_name(name, i);
		err = open_handle(fd, name, &big.honest[i]);
	}
	if (err || big.off) {
		pcbt_ring_close(&big.r);
		return err;
	}
	big.ok = true;
	return 0;
}

static int big_call(unsigned int n, __u32 flags)
{
	struct pcb_publish_batch b = {
		.entries = (uintptr_t)big.e, .count = n, .flags = flags,
		.timeout_ns = 10 * PCBT_MS,
	};

	for (unsigned int i = 0; i < n; i++)
		big.e[i].result = RESULT_UNSET;
	return ioctl(big.r.fd, PCB_IOC_PUBLISH_BATCH, &b) ? errno : 0;
}

/* The records a case delivered to the lossy ring must be exactly @want. */
static void big_records(__u64 want, const char *what)
{
	__u64 got = 0;

	if (pcbt_ring_flags(&big.r) & PCB_RING_BROKEN)
		violation("%s: a ring only ever consumed properly is broken",
			  what);
	while (pcbt_ring_peek(&big.r)) {
		pcbt_ring_pop(&big.r);
		got++;
	}
	if (big.r.corrupt || big.r.pos != pcbt_prod_pos(&big.r))
		violation("%s: the lossy ring %s at %llu (prod %llu)", what,
			  big.r.corrupt ?: "has a record still BUSY",
			  (unsigned long long)big.r.pos,
			  (unsigned long long)pcbt_prod_pos(&big.r));
	/* Start afresh after what is there: one report per fault. */
	big.r.corrupt = NULL;
	big.r.pos = pcbt_prod_pos(&big.r);
	pcbt_ring_store_cons(&big.r);
	if (got != want)
		violation("%s: the lossy %u-byte ring got %llu records, expected %llu",
			  what, BIG_RING, (unsigned long long)got,
			  (unsigned long long)want);
}

/* Every entry and the ioctl @want, or one entry @want, the others ECANCELED. */
static void big_fails(unsigned int n, int err, int want, const char *what)
{
	unsigned int nwant = 0, ncanceled = 0, odd = 0;

	for (unsigned int i = 0; i < n; i++) {
		if (big.e[i].result == -want)
			nwant++;
		else if (big.e[i].result == -ECANCELED)
			ncanceled++;
		else
			odd = i;
	}
	if (err == want && (nwant == n || (nwant == 1 && ncanceled == n - 1))) {
		__atomic_add_fetch(&sh->big_refused, 1, __ATOMIC_RELAXED);
		return;
	}
	violation("%s: ioctl %s, the uapi says %s; %u of %u entries say so, entry %u %s",
		  what, errname(err), errname(want), nwant, n, odd,
		  errname(-big.e[odd].result));
}

/* More than PCB_BATCH_ATOMIC_BYTES, maybe with an entry to an honest topic. */
static void big_too_big(struct thr *t)
{
	/* 17 MiB; 1 GiB and 64 KiB of records; more; 4 GiB: 0 in 32 bits. */
	static const unsigned int counts[] = { 17, 1024, 1030, PCB_BATCH_MAX };
	unsigned int n = counts[below(&t->r, 4)], dead = 0;
	char what[160];

	for (unsigned int i = 0; i < n; i++)
		big.e[i] = (struct pcb_batch_entry){
			.handle = big.handle, .payload = (uintptr_t)big.buf,
			.len = BIG_MSG, .key = i,
		};
	if (n < PCB_BATCH_MAX && sh->honest && one_in(&t->r, 2)) {
		big.e[n++] = (struct pcb_batch_entry){
			.handle = big.honest[below(&t->r, NR_HONEST)],
			.payload = (uintptr_t)big.buf, .len = 64,
		};
		dead = 1;
	}
	snprintf(what, sizeof(what), "atomic batch of %u x %u bytes%s (%llu bytes)",
		 n - dead, BIG_MSG, dead ? " and one to an honest topic" : "",
		 (unsigned long long)(n - dead) * BIG_MSG + 64 * dead);
	big_fails(n, big_call(n, PCB_PUB_ATOMIC | PCB_PUB_NONBLOCK), E2BIG,
		  what);
	big_records(0, what);
}

/* Under the limit, too big for the lossy ring: it misses them all. */
static void big_missed(struct thr *t)
{
	unsigned int n = one_in(&t->r, 5) ? 15 : 3, i;
	__u64 dropped = pcbt_load_acquire(&big.r.hdr->dropped);
	char what[96];
	int err;

	snprintf(what, sizeof(what), "atomic batch of %u x %u bytes", n, BIG_MSG);
	for (i = 0; i < n; i++)
		big.e[i] = (struct pcb_batch_entry){
			.handle = big.handle, .payload = (uintptr_t)big.buf,
			.len = BIG_MSG,
		};
	err = big_call(n, PCB_PUB_ATOMIC | PCB_PUB_NONBLOCK);
	for (i = 0; !err && i < n && !big.e[i].result; i++)
		;
	if (err || i < n) {
		violation("%s with only a lossy subscriber: ioctl %s, entry %u %s; the uapi says it is published",
			  what, errname(err), i < n ? i : 0,
			  errname(-big.e[i < n ? i : 0].result));
	} else if (pcbt_load_acquire(&big.r.hdr->dropped) - dropped != n) {
		violation("%s: the lossy ring too small for it counts %llu dropped, expected %u",
			  what, (unsigned long long)(pcbt_load_acquire(&big.r.hdr->dropped) -
						     dropped), n);
	} else {
		__atomic_add_fetch(&sh->big_missed, 1, __ATOMIC_RELAXED);
	}
	big_records(0, what);
}

/* An entry longer than the topic's max_msg_size, atomic or not. */
static void big_too_long(struct thr *t, bool atomic)
{
	static const __u32 lens[] = { BIG_MSG + 1, 0xffffffffU, 0x80000000U };
	unsigned int n = 2 + below(&t->r, 6), bad = below(&t->r, n), good = 0;
	char what[120];
	int err;

	for (unsigned int i = 0; i < n; i++) {
		bool dead = atomic && sh->honest && one_in(&t->r, 3);

		big.e[i] = (struct pcb_batch_entry){
			.handle = dead ? big.honest[below(&t->r, NR_HONEST)] :
					 big.handle,
			.payload = (uintptr_t)big.buf, .len = 8 + 8 * i,
		};
	}
	big.e[bad].handle = big.handle;
	big.e[bad].len = lens[below(&t->r, 3)];
	snprintf(what, sizeof(what), "%s batch of %u, entry %u of %u bytes",
		 atomic ? "atomic" : "plain", n, bad, big.e[bad].len);
	err = big_call(n, atomic ? PCB_PUB_ATOMIC : 0);
	if (atomic) {
		big_fails(n, err, EMSGSIZE, what);
		if (big.e[bad].result != -EMSGSIZE)
			violation("%s: that entry says %s, the uapi says EMSGSIZE",
				  what, errname(-big.e[bad].result));
		big_records(0, what);
		return;
	}
	for (unsigned int i = 0; i < n; i++) {
		if (big.e[i].result != (i == bad ? -EMSGSIZE : 0))
			violation("%s: ioctl %s, entry %u %s", what, errname(err),
				  i, errname(-big.e[i].result));
		good += !big.e[i].result;
	}
	big_records(good, what);
}

static void big_single(struct thr *t)
{
	__u32 len = one_in(&t->r, 2) ? BIG_MSG + 1 : 0xffffffffU;
	int err = -pcbt_publish(big.r.fd, big.handle, big.buf, len,
				PCB_PUB_NONBLOCK, 0, NULL);

	if (err != EMSGSIZE)
		violation("publish of %u bytes to a topic of %u: %s, the uapi says EMSGSIZE",
			  len, BIG_MSG, errname(err));
	big_records(0, "a publish too long");
}

/*
 * Oversized and wrapping batches, each with the exact outcome the uapi
 * gives; at most one every 250 ms per process, as they copy megabytes.
 */
static void op_big(struct thr *t)
{
	int err = 0;

	if (pthread_mutex_trylock(&big.lock))
		return;
	if (big.off || now_ns() < big.next_ns)
		goto out;
	big.next_ns = now_ns() + 250 * PCBT_MS;
	if (!big.ok)
		err = big_setup(t);
	if (!big.ok)
		goto out;
	switch (below(&t->r, 6)) {
	case 0:
	case 1:
		big_too_big(t);
		break;
	case 2:
		big_missed(t);
		break;
	case 3:
		big_too_long(t, true);
		break;
	case 4:
		big_too_long(t, false);
		break;
	default:
		big_single(t);
	}
	result(t, OP_BIG, 0, 0, false);
out:
	pthread_mutex_unlock(&big.lock);
	if (err)
		result(t, OP_BIG, -1, err, false);
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
	[OP_FORGE] = op_forge, [OP_FLIP] = op_flip, [OP_BIG] = op_big,
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

	unsigned int slot = __atomic_fetch_add(&sh->nr_worker_pids, 1,
					       __ATOMIC_RELAXED);
	pthread_t flip_tid;

	/* Before its first record can exist: honest consumers look it up. */
	if (slot < MAX_WORKER_PIDS)
		__atomic_store_n(&sh->worker_pids[slot], getpid(),
				 __ATOMIC_RELEASE);
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
	/* The forger subscribes before the honest consumers do. */
	if (sh->honest && weights[OP_FORGE] + weights[OP_FLIP]) {
		pthread_mutex_lock(&fg.lock);
		forger_setup();
		pthread_mutex_unlock(&fg.lock);
	}
	__atomic_add_fetch(&sh->forgers, 1, __ATOMIC_RELEASE);
	if (pthread_create(&flip_tid, NULL, attacker_main, NULL))
		return 2;
	for (int i = 0; i < NR_THREADS; i++)
		if (pthread_create(&tid[i], NULL, thread_main, t[i]))
			return 2;
	for (int i = 0; i < NR_THREADS; i++)
		pthread_join(tid[i], NULL);
	pthread_join(flip_tid, NULL);
	return 0;
}

/* ---- the honest process -------------------------------------------------- */

/*
 * Publishers and consumers of the honest topics: threads of one process
 * that the workers cannot reach but through the bus.
 *
 * The publish log: every message of publisher p to topic t has a counter.
 * Before the call the publisher writes its entry PENDING and then
 * advances next[p][t] past it; after the call it writes the outcome,
 * DONE with the seq and id the kernel returned or FAILED with the errno,
 * the tag word last (release).  A publisher never runs more than the log
 * ahead of any consumer's cursor, so no entry is overwritten before every
 * consumer has decided it.
 *
 * A consumer decides an entry once its outcome is final and the consumer
 * has read its ring up to a prod_pos loaded after it saw that outcome: by
 * then the record of a message that reached the ring is there.  Every
 * consumer subscribed before the first honest publish and stays to the
 * end, so a reliable one must have every accepted message its filter
 * takes, once, with the seq and id its publisher was told, and none
 * whose publish failed; a lossy one may miss messages, never get one
 * twice or one whose publish failed.
 */
#define LOG_PENDING	1U
#define LOG_DONE	2U
#define LOG_FAILED	3U
#define LOG_TAG(c, state) (((c) << 8) | (state))

struct hlog {
	__u64 tag;
	__u64 seq;		/* DONE: 0 when not told (io_uring) */
	__u64 msg_id;		/* DONE: the id; FAILED: the errno */
};

struct hwin {
	__u64 msg_id;		/* 0: not received */
	__u64 seq;
};

/*
 * A filter of a subscription and when it came into force: SET_FILTER was
 * called after the message with id @mb and returned before the one with
 * id @ma (ids of markers on the clock topic).  A message with an id below
 * @mb met the filter before, one above @ma this one, one in between
 * either.
 */
struct hera {
	struct hfilter f;
	__u64 mb, ma;
};

struct hsub {
	int idx;
	bool reliable;
	bool slow;
	bool changing;				/* SET_FILTER all along */
	struct pcbt_ring r;
	struct hera *era[NR_HONEST];		/* [0]: from SUBSCRIBE on */
	unsigned int nr_eras[NR_HONEST];
	__u32 clock;				/* handle of the clock topic */
	__u64 next_change;
	struct rng rg;
	__u64 s0[NR_HONEST], s1[NR_HONEST];
	__u64 count[NR_HONEST], last_seq[NR_HONEST], last_id[NR_HONEST];
	__u64 cursor[NR_HPUBS][NR_HONEST];	/* publishers read them */
	int dead;				/* its ring unusable */
	pthread_t tid;
	struct hwin win[NR_HPUBS][NR_HONEST][HLOG];
};

static struct {
	struct hlog log[NR_HPUBS][NR_HONEST][HLOG];
	__u64 next[NR_HPUBS][NR_HONEST];
	struct hsub *subs[NR_HSUBS];
	int pubs_done;
	__u64 digest[1 << 14];	/* what some consumer got of a worker's message */
} hp;

static int honest_topic(__u32 topic_id)
{
	for (int i = 0; i < NR_HONEST; i++)
		if (sh->honest_ids[i] == topic_id)
			return i;
	return -1;
}

/* Waits until every live consumer's cursor leaves room for counter @c. */
static bool log_room(unsigned int p, unsigned int t, __u64 c)
{
	for (int i = 0; i < NR_HSUBS; i++) {
		struct hsub *s = hp.subs[i];

		while (!pcbt_load_acquire(&s->dead) &&
		       c + 16 >= pcbt_load_acquire(&s->cursor[p][t]) + HLOG) {
			if (now_ns() >= sh->deadline_ns)
				return false;
			pcbt_sleep_ms(1);
		}
	}
	return true;
}

/* Logs the next message of (@p, @t) as pending: its counter, or -1. */
static __s64 log_begin(unsigned int p, unsigned int t)
{
	__u64 c = hp.next[p][t];
	struct hlog *e = &hp.log[p][t][c % HLOG];

	if (!log_room(p, t, c))
		return -1;
	e->seq = 0;
	e->msg_id = 0;
	pcbt_store_release(&e->tag, LOG_TAG(c, LOG_PENDING));
	pcbt_store_release(&hp.next[p][t], c + 1);
	return c;
}

static void log_end(unsigned int p, unsigned int t, __u64 c, int err,
		    __u64 seq, __u64 msg_id)
{
	struct hlog *e = &hp.log[p][t][c % HLOG];

	e->seq = err ? 0 : seq;
	e->msg_id = err ? (__u64)err : msg_id;
	pcbt_store_release(&e->tag, LOG_TAG(c, err ? LOG_FAILED : LOG_DONE));
	__atomic_add_fetch(err ? &sh->h_failed : &sh->h_accepted, 1,
			   __ATOMIC_RELAXED);
}

struct hpub {
	int idx;
	int fd;
	__u32 handle[NR_HONEST];
	struct rng r;
	struct io_uring u;
	bool have_u;
	__u64 last_seq[NR_HONEST];
	pthread_t tid;
	unsigned char buf[8][2048];
};

/* An honest publish may only fail for lack of room. */
static void hpub_failed(struct hpub *hb, const char *how, unsigned int t,
			int err, const int *ok)
{
	if (!in_set(ok, err))
		violation("honest %s to topic %u failed: %s", how, t,
			  errname(err));
}

static void hpub_single(struct hpub *hb)
{
	unsigned int t = below(&hb->r, NR_HONEST);
	struct pcb_publish arg = {
		.handle = hb->handle[t],
		.flags = one_in(&hb->r, 3) ? PCB_PUB_NONBLOCK : 0,
		.payload = (uintptr_t)hb->buf[0],
		.timeout_ns = 1 + below(&hb->r, 10 * PCBT_MS),
	};
	__s64 c = log_begin(hb->idx, t);
	int err;

	if (c < 0)
		return;
	arg.len = hmsg_build(hb->buf[0], hb->idx, t, c, &arg.key);
	err = ioctl(hb->fd, PCB_IOC_PUBLISH, &arg) ? errno : 0;
	if (err)
		hpub_failed(hb, "publish", t, err, E(EAGAIN, ETIMEDOUT));
	else if (arg.seq <= hb->last_seq[t])
		violation("topic %u: honest publish got seq %llu after %llu",
			  t, (unsigned long long)arg.seq,
			  (unsigned long long)hb->last_seq[t]);
	if (!err)
		hb->last_seq[t] = arg.seq;
	log_end(hb->idx, t, c, err, arg.seq, arg.msg_id);
}

static void hpub_batch(struct hpub *hb, bool atomic)
{
	struct pcb_batch_entry e[8];
	unsigned int topic[8], n = 1 + below(&hb->r, atomic ? 6 : 8), i;
	__s64 c[8];
	struct pcb_publish_batch b = {
		.entries = (uintptr_t)e,
		.flags = (atomic ? PCB_PUB_ATOMIC : 0) |
			 (one_in(&hb->r, 3) ? PCB_PUB_NONBLOCK : 0),
		.timeout_ns = 1 + below(&hb->r, 10 * PCBT_MS),
	};
	int err;

	for (i = 0; i < n; i++) {
		topic[i] = below(&hb->r, NR_HONEST);
		c[i] = log_begin(hb->idx, topic[i]);
		if (c[i] < 0)
			break;
		e[i] = (struct pcb_batch_entry){
			.handle = hb->handle[topic[i]],
			.payload = (uintptr_t)hb->buf[i],
			.result = RESULT_UNSET,
		};
		e[i].len = hmsg_build(hb->buf[i], hb->idx, topic[i], c[i],
				      &e[i].key);
	}
	n = i;
	b.count = n;
	if (!n)
		return;
	err = ioctl(hb->fd, PCB_IOC_PUBLISH_BATCH, &b) ? errno : 0;
	if (err && !atomic)
		violation("honest plain batch of %u failed as a whole: %s", n,
			  errname(err));
	for (i = 0; i < n; i++) {
		int res = err && !atomic ? err : -e[i].result;

		if (res)
			hpub_failed(hb, atomic ? "atomic batch" : "batch",
				    topic[i], res, E(EAGAIN, ETIMEDOUT, E2BIG));
		if (atomic && res != err)
			violation("honest atomic batch of %u: ioctl %s, entry %u %s",
				  n, errname(err), i, errname(res));
		if (res == E2BIG && !atomic)
			violation("honest plain batch entry %u: E2BIG", i);
		log_end(hb->idx, topic[i], c[i], res, e[i].seq, e[i].msg_id);
	}
}

/* Commands in flight at once: their order is the kernel's to choose. */
static void hpub_uring(struct hpub *hb)
{
	struct __kernel_timespec ts = { .tv_sec = CQE_WAIT_MS / 1000 };
	unsigned int topic[8], n = 1 + below(&hb->r, 8), i, got = 0, sent;
	struct io_uring_cqe *cqe;
	__s64 c[8];
	int ret;

	for (i = 0; i < n; i++) {
		struct pcb_uring_publish up = {
			.flags = one_in(&hb->r, 3) ? PCB_PUB_NONBLOCK : 0,
			.payload = (uintptr_t)hb->buf[i],
			.timeout_ns = 1 + below(&hb->r, 10 * PCBT_MS),
		};

		topic[i] = below(&hb->r, NR_HONEST);
		c[i] = log_begin(hb->idx, topic[i]);
		if (c[i] < 0)
			break;
		up.handle = hb->handle[topic[i]];
		up.len = hmsg_build(hb->buf[i], hb->idx, topic[i], c[i], &up.key);
		if (!pcbt_uring_queue(&hb->u, hb->fd, &up, i)) {
			log_end(hb->idx, topic[i], c[i], EBUSY, 0, 0);
			break;
		}
	}
	n = i;
	ret = n ? io_uring_submit(&hb->u) : 0;
	sent = ret > 0 ? ret : 0;
	if (ret != (int)n) {
		violation("honest io_uring submit of %u: %d", n, ret);
		for (i = sent; i < n; i++)
			log_end(hb->idx, topic[i], c[i], ECANCELED, 0, 0);
	}
	while (got < sent) {
		do
			ret = io_uring_wait_cqe_timeout(&hb->u, &cqe, &ts);
		while (ret == -EINTR);
		if (ret) {
			violation("honest io_uring publish: no completion in %d ms",
				  CQE_WAIT_MS);
			hb->have_u = false;
			return;
		}
		i = cqe->user_data;
		if (cqe->res)
			hpub_failed(hb, "io_uring publish", topic[i], -cqe->res,
				    E(EAGAIN, ETIMEDOUT, EINTR));
		log_end(hb->idx, topic[i], c[i], -cqe->res, 0, cqe->big_cqe[0]);
		io_uring_cqe_seen(&hb->u, cqe);
		got++;
	}
}

static void *hpub_main(void *arg)
{
	struct hpub *hb = arg;

	while (now_ns() < sh->deadline_ns) {
		unsigned int k = below(&hb->r, 10);

		if (hb->idx == 0)
			k < 6 ? hpub_single(hb) : hpub_batch(hb, false);
		else if (k < 5 || !hb->have_u)
			hpub_batch(hb, true);
		else
			hpub_uring(hb);
		/* Leave the workers most of the machine. */
		pcbt_sleep_ms(below(&hb->r, 2));
	}
	return NULL;
}

/*
 * Whether the filters that may have judged message @id take it: *@all
 * when every one of them does, the return value when one does.
 */
static bool hsub_takes(const struct hsub *s, unsigned int t, __u64 id,
		       __u64 key, __u32 uid, __u32 pid,
		       const unsigned char *data, __u32 len, bool *all)
{
	unsigned int a = 0, b = s->nr_eras[t], lo, hi;
	bool any = false;

	/* The last filter whose SET_FILTER surely came before @id. */
	while (b - a > 1) {
		unsigned int m = (a + b) / 2;

		if (s->era[t][m].ma < id)
			a = m;
		else
			b = m;
	}
	lo = a;
	hi = a + 1 < s->nr_eras[t] && s->era[t][a + 1].mb < id ? a + 1 : a;
	*all = true;
	for (unsigned int i = lo; i <= hi; i++) {
		bool takes = filter_takes(&s->era[t][i].f, key, uid, pid, data,
					  len);

		any = any || takes;
		*all = *all && takes;
	}
	return any;
}

static void hsub_say(struct hsub *s, int t, const struct pcb_record *rec,
		     const char *what)
{
	char f[300];

	filter_text(&s->era[t][s->nr_eras[t] - 1].f, f, sizeof(f));
	violation("consumer %d (%s) topic %d seq %llu id %llu pid %u uid %u key %#llx %u bytes, payload %08x: %s; filter %s (%u changes)",
		  s->idx, s->reliable ? "reliable" : "lossy", t,
		  (unsigned long long)rec->seq, (unsigned long long)rec->msg_id,
		  rec->pid, rec->uid, (unsigned long long)rec->key,
		  rec->payload_len,
		  rec->payload_len >= 4 ? *(const __u32 *)pcbt_payload(rec) : 0,
		  what, f, s->nr_eras[t] - 1);
}

/* Every consumer of a message gets the same bytes: a digest per id. */
static bool digest_same(const struct pcb_record *rec)
{
	const unsigned char *p = pcbt_payload(rec);
	__u64 h = 0xcbf29ce484222325ULL ^ rec->key ^ rec->seq;
	__u64 id = rec->msg_id, x = id, *slot, want, seen;

	for (__u32 i = 0; i < rec->payload_len; i++)
		h = (h ^ p[i]) * 0x100000001b3ULL;
	slot = &hp.digest[splitmix(&x) % (sizeof(hp.digest) / 8)];
	want = (id << 32) | (__u32)(h ^ (h >> 32) ^ rec->payload_len);
	seen = pcbt_load_acquire(slot);
	if (seen >> 32 != want >> 32) {
		pcbt_store_release(slot, want);
		return true;
	}
	return seen == want;
}

/* Past MAX_WORKER_PIDS workers, any pid may be one. */
static bool worker_pid(__u32 pid)
{
	unsigned int n = pcbt_load_acquire(&sh->nr_worker_pids);

	for (unsigned int i = 0; i < n && i < MAX_WORKER_PIDS; i++)
		if ((__u32)pcbt_load_acquire(&sh->worker_pids[i]) == pid)
			return true;
	return n > MAX_WORKER_PIDS;
}

/* A worker's record: its bytes are the worker's, its sender is not. */
static void hsub_foreign(struct hsub *s, int t, const struct pcb_record *rec)
{
	__u32 magic = 0;

	__atomic_add_fetch(&sh->h_foreign, 1, __ATOMIC_RELAXED);
	if (rec->payload_len >= 4)
		memcpy(&magic, pcbt_payload(rec), 4);
	if (!worker_pid(rec->pid) ||
	    (rec->uid != sh->honest_uid && rec->uid != sh->nobody_uid))
		hsub_say(s, t, rec, "a record from a pid and uid that no worker had");
	if (magic == DEAD_MAGIC)
		hsub_say(s, t, rec, "an entry of an atomic batch the uapi refuses was delivered");
	if (!digest_same(rec))
		hsub_say(s, t, rec, "another consumer got other bytes for this message");
}

/* An honest record goes into the window of its (publisher, counter). */
static void hsub_honest(struct hsub *s, int t, const struct pcb_record *rec)
{
	unsigned int p = 0;
	__u64 c = 0, next;
	struct hwin *w;
	char why[200];

	if (hmsg_check(rec, t, &p, &c, why, sizeof(why))) {
		hsub_say(s, t, rec, why);
		return;
	}
	__atomic_add_fetch(&sh->h_records, 1, __ATOMIC_RELAXED);
	next = pcbt_load_acquire(&hp.next[p][t]);
	w = &s->win[p][t][c % HLOG];
	if (c >= next || c >= s->cursor[p][t] + HLOG) {
		snprintf(why, sizeof(why), "publisher %u message %llu was never logged (next %llu)",
			 p, (unsigned long long)c, (unsigned long long)next);
	} else if (c < s->cursor[p][t]) {
		const struct hlog *e = &hp.log[p][t][c % HLOG];

		snprintf(why, sizeof(why), "publisher %u message %llu delivered after it was decided (log: %s %s)",
			 p, (unsigned long long)c,
			 (e->tag & 0xff) == LOG_FAILED ? "failed with" : "state",
			 (e->tag & 0xff) == LOG_FAILED ? errname(e->msg_id) : "done");
	} else if (w->msg_id) {
		snprintf(why, sizeof(why), "publisher %u message %llu delivered twice (seq %llu before)",
			 p, (unsigned long long)c, (unsigned long long)w->seq);
	} else {
		w->msg_id = rec->msg_id;
		w->seq = rec->seq;
		return;
	}
	hsub_say(s, t, rec, why);
}

static void hsub_order(struct hsub *s, int t, const struct pcb_record *rec)
{
	bool contiguous = s->reliable && !s->changing && !s->era[t][0].f.nr;
	char why[160] = "";

	if (!s->count[t]) {
		if (rec->seq <= s->s0[t] || (contiguous && rec->seq > s->s1[t] + 1))
			snprintf(why, sizeof(why), "first record, the topic was at seq %llu before SUBSCRIBE and %llu after",
				 (unsigned long long)s->s0[t],
				 (unsigned long long)s->s1[t]);
	} else if (rec->seq <= s->last_seq[t] || rec->msg_id <= s->last_id[t] ||
		   (contiguous && rec->seq != s->last_seq[t] + 1)) {
		snprintf(why, sizeof(why), "after seq %llu id %llu",
			 (unsigned long long)s->last_seq[t],
			 (unsigned long long)s->last_id[t]);
	}
	if (why[0])
		hsub_say(s, t, rec, why);
	s->count[t]++;
	s->last_seq[t] = rec->seq;
	s->last_id[t] = rec->msg_id;
}

static void hsub_record(struct hsub *s, const struct pcb_record *rec)
{
	int t = honest_topic(rec->topic_id);
	bool all;

	if (t < 0) {
		violation("consumer %d: a record of topic id %u, not subscribed",
			  s->idx, rec->topic_id);
		return;
	}
	hsub_order(s, t, rec);
	if (!hsub_takes(s, t, rec->msg_id, rec->key, rec->uid, rec->pid,
			pcbt_payload(rec), rec->payload_len, &all))
		hsub_say(s, t, rec, "delivered, but no filter in force takes these bytes");
	if (rec->pid == (__u32)sh->honest_pid)
		hsub_honest(s, t, rec);
	else
		hsub_foreign(s, t, rec);
}

/* Reads what is complete; false once the ring is unusable. */
static bool hsub_consume(struct hsub *s)
{
	const struct pcb_record *rec;
	unsigned int n = 0;

	while ((rec = pcbt_ring_peek(&s->r))) {
		hsub_record(s, rec);
		pcbt_ring_pop(&s->r);
		if (s->slow && !(++n % 16)) {
			pcbt_ring_release(&s->r);
			pcbt_sleep_ms(1);
		}
	}
	pcbt_ring_release(&s->r);
	if (s->r.corrupt || pcbt_ring_flags(&s->r) & PCB_RING_BROKEN) {
		violation("consumer %d: its ring %s at %llu (prod %llu)", s->idx,
			  s->r.corrupt ?: "is broken",
			  (unsigned long long)s->r.pos,
			  (unsigned long long)pcbt_prod_pos(&s->r));
		pcbt_store_release(&s->dead, 1);
		return false;
	}
	return true;
}

/*
 * Was honest message (@p, @t, @c), with id @id, one this consumer is
 * owed?  Every filter that may have judged it must take it.
 */
static bool hsub_owed(struct hsub *s, unsigned int p, unsigned int t, __u64 c,
		      __u64 id)
{
	unsigned char buf[2048];
	bool all;
	__u64 key;
	__u32 len;

	if (!s->reliable)
		return false;
	len = hmsg_build(buf, p, t, c, &key);
	hsub_takes(s, t, id, key, sh->honest_uid, sh->honest_pid, buf, len,
		   &all);
	return all;
}

static void hsub_decide(struct hsub *s, unsigned int p, unsigned int t, __u64 c)
{
	const struct hlog *e = &hp.log[p][t][c % HLOG];
	struct hwin *w = &s->win[p][t][c % HLOG];
	__u64 tag = pcbt_load_acquire(&e->tag);

	if (tag >> 8 != c)
		violation("consumer %d: log entry of publisher %u message %llu overwritten",
			  s->idx, p, (unsigned long long)c);
	else if ((tag & 0xff) == LOG_FAILED && w->msg_id)
		violation("consumer %d (%s) topic %u: publisher %u message %llu delivered (seq %llu id %llu) although its publish failed with %s",
			  s->idx, s->reliable ? "reliable" : "lossy", t, p,
			  (unsigned long long)c, (unsigned long long)w->seq,
			  (unsigned long long)w->msg_id, errname(e->msg_id));
	else if (w->msg_id && (w->msg_id != e->msg_id || (e->seq && w->seq != e->seq)))
		violation("consumer %d topic %u: publisher %u message %llu accepted as seq %llu id %llu, delivered as seq %llu id %llu",
			  s->idx, t, p, (unsigned long long)c,
			  (unsigned long long)e->seq, (unsigned long long)e->msg_id,
			  (unsigned long long)w->seq, (unsigned long long)w->msg_id);
	else if (w->msg_id)
		__atomic_add_fetch(&sh->h_verified, 1, __ATOMIC_RELAXED);
	else if ((tag & 0xff) == LOG_DONE && hsub_owed(s, p, t, c, e->msg_id))
		violation("consumer %d (reliable%s) topic %u: publisher %u message %llu, accepted as seq %llu id %llu, never delivered (last received: seq %llu)",
			  s->idx, s->era[t][0].f.nr || s->changing ?
			  ", filtered" : "", t, p,
			  (unsigned long long)c, (unsigned long long)e->seq,
			  (unsigned long long)e->msg_id,
			  (unsigned long long)s->last_seq[t]);
	else if ((tag & 0xff) == LOG_DONE)
		__atomic_add_fetch(&sh->h_filtered, 1, __ATOMIC_RELAXED);
	memset(w, 0, sizeof(*w));
}

/*
 * Decides every entry whose outcome is final: first reads the ring up to
 * a prod_pos loaded after those outcomes were seen.  Returns whether
 * every logged entry is decided.
 */
static bool hsub_advance(struct hsub *s)
{
	__u64 lim[NR_HPUBS][NR_HONEST], target, until;
	bool all = true;

	for (unsigned int p = 0; p < NR_HPUBS; p++)
		for (unsigned int t = 0; t < NR_HONEST; t++) {
			__u64 c = s->cursor[p][t];
			__u64 next = pcbt_load_acquire(&hp.next[p][t]);

			while (c < next && (pcbt_load_acquire(&hp.log[p][t][c % HLOG].tag) &
					    0xff) != LOG_PENDING)
				c++;
			lim[p][t] = c;
			all = all && c == next;
		}
	target = pcbt_prod_pos(&s->r);
	until = now_ns() + 5 * PCBT_SEC;
	while (s->r.pos < target && hsub_consume(s)) {
		if (now_ns() > until) {
			violation("consumer %d: the record at %llu stays incomplete for 5 s (prod %llu)",
				  s->idx, (unsigned long long)s->r.pos,
				  (unsigned long long)target);
			pcbt_store_release(&s->dead, 1);
		}
		if (s->dead)
			return true;
		sched_yield();
	}
	for (unsigned int p = 0; p < NR_HPUBS; p++)
		for (unsigned int t = 0; t < NR_HONEST; t++) {
			for (__u64 c = s->cursor[p][t]; c < lim[p][t]; c++)
				hsub_decide(s, p, t, c);
			pcbt_store_release(&s->cursor[p][t], lim[p][t]);
		}
	return all || s->dead;
}

/* A random filter of 1 to 3 predicates on what honest messages carry. */
static void random_filter(struct rng *r, struct hfilter *f)
{
	f->nr = 1 + below(r, 3);
	for (unsigned int i = 0; i < f->nr; i++) {
		struct pcb_filter_pred *p = &f->p[i];

		memset(p, 0, sizeof(*p));
		switch (below(r, 6)) {
		case 0:
			*p = (struct pcb_filter_pred){ .field = PCB_FIELD_PAYLOAD,
				.width = 4, .op = PCB_OP_EQ + below(r, 6),
				.value = below(r, 4) };
			break;
		case 1:
			*p = (struct pcb_filter_pred){ .field = PCB_FIELD_KEY,
				.op = PCB_OP_ANY, .value = 1ULL << below(r, 64) };
			break;
		case 2:
			*p = (struct pcb_filter_pred){ .field = PCB_FIELD_LEN,
				.op = one_in(r, 2) ? PCB_OP_LT : PCB_OP_GT,
				.value = 40 + below(r, 160) };
			break;
		case 3:
			*p = (struct pcb_filter_pred){ .field = PCB_FIELD_PAYLOAD,
				.width = 1, .offset = 16, .op = PCB_OP_LT,
				.value = below(r, 256) };
			break;
		case 4:
			*p = (struct pcb_filter_pred){ .field = PCB_FIELD_UID,
				.op = PCB_OP_EQ, .value = sh->honest_uid };
			break;
		default:
			*p = (struct pcb_filter_pred){ .field = PCB_FIELD_PID,
				.op = PCB_OP_NE, .value = (__u32)getpid(),
				.flags = PCB_PRED_OR };
		}
		if (i + 1 < f->nr && one_in(r, 3))
			p->flags |= PCB_PRED_OR;
	}
	f->p[f->nr - 1].flags &= ~PCB_PRED_OR;
}

/* The id of a message published now (to the clock topic: no subscriber). */
static __u64 hsub_marker(struct hsub *s)
{
	struct pcb_publish out;
	int ret = pcbt_publish(s->r.fd, s->clock, NULL, 0, PCB_PUB_NONBLOCK, 0,
			       &out);

	if (ret)
		violation("consumer %d: a marker: %s", s->idx, errname(-ret));
	return ret ? 0 : out.msg_id;
}

static int hsub_set_filter(struct hsub *s, unsigned int t,
			   const struct hfilter *f)
{
	union pcbt_filter uf;

	pcbt_filter_init(&uf);
	uf.f.nr_preds = f->nr;
	memcpy(uf.f.preds, f->p, f->nr * sizeof(f->p[0]));
	return pcbt_set_filter(s->r.fd, sh->honest_ids[t], f->nr ? &uf : NULL);
}

/* A new filter (or none) for one topic, between two markers. */
static void hsub_change_filter(struct hsub *s)
{
	unsigned int t = below(&s->rg, NR_HONEST);
	struct hera *e = &s->era[t][s->nr_eras[t]];
	int ret;

	if (s->nr_eras[t] == MAX_ERAS)
		return;
	memset(&e->f, 0, sizeof(e->f));
	if (!one_in(&s->rg, 5))
		random_filter(&s->rg, &e->f);
	e->mb = hsub_marker(s);
	ret = hsub_set_filter(s, t, &e->f);
	e->ma = hsub_marker(s);
	if (ret)
		violation("consumer %d: SET_FILTER on topic %u: %s", s->idx, t,
			  errname(-ret));
	else
		s->nr_eras[t]++;
}

/*
 * Consumer 0: reliable, no filter; 1: reliable, "u32@0 == 1", the
 * first word the flipped payloads change; 2: reliable, random filters;
 * 3: lossy, slow, "u32@0 == 1 | u32@0 == 3", a small ring; 4: reliable,
 * random filters changed all along.
 */
static int hsub_setup(struct hsub *s, int idx, struct rng *r)
{
	static const __u32 sizes[NR_HSUBS] = {
		65536, 16384, 32768, 8192, 32768,
	};
	union pcbt_filter uf;
	char name[PCB_NAME_MAX];
	int fd, ret;

	s->idx = idx;
	s->reliable = idx != 3;
	s->slow = idx == 3;
	s->changing = idx == 4;
	rng_seed(&s->rg, rnd(r));
	for (int t = 0; t < NR_HONEST; t++) {
		struct pcb_filter_pred sel = { .field = PCB_FIELD_PAYLOAD,
					       .width = 4, .op = PCB_OP_EQ,
					       .value = 1 };
		struct hfilter *f;

		s->era[t] = calloc(s->changing ? MAX_ERAS : 1, sizeof(struct hera));
		if (!s->era[t])
			return -ENOMEM;
		s->nr_eras[t] = 1;
		f = &s->era[t][0].f;
		if (idx == 1 || idx == 3)
			f->p[f->nr++] = sel;
		if (idx == 3) {
			f->p[0].flags = PCB_PRED_OR;
			sel.value = 3;
			f->p[f->nr++] = sel;
		}
		if (idx == 2 || idx == 4)
			random_filter(r, f);
	}
	/* Workers' rings may hold the user's locked memory for a while. */
	fd = pcbt_ring_open(sizes[idx], &s->r);
	for (int i = 0; fd == -ENOMEM && i < 100; i++) {
		pcbt_sleep_ms(20);
		fd = pcbt_ring_open(sizes[idx], &s->r);
	}
	if (fd < 0)
		return fd;
	own_name(name, "clock", 0);
	ret = pcbt_open_topic(fd, name, 0, &s->clock);
	if (ret)
		return ret;
	for (int t = 0; t < NR_HONEST; t++) {
		const struct hfilter *f = &s->era[t][0].f;
		union pcbt_filter *pf = f->nr ? &uf : NULL;

		honest_name(name, t);
		s->s0[t] = pcbt_published(fd, name);
		pcbt_filter_init(&uf);
		uf.f.nr_preds = f->nr;
		memcpy(uf.f.preds, f->p, f->nr * sizeof(f->p[0]));
		ret = pcbt_subscribe_filter(fd, name, 0,
					    s->reliable ? 0 : PCB_SUB_LOSSY,
					    pf, NULL);
		if (ret)
			return ret;
		s->s1[t] = pcbt_published(fd, name);
	}
	return 0;
}

static void *hsub_main(void *arg)
{
	struct hsub *s = arg;
	__u64 until;

	while (!pcbt_load_acquire(&hp.pubs_done) && !s->dead) {
		if (hsub_consume(s) && !s->slow)
			pcbt_ring_wait(&s->r, 2 * PCBT_MS);
		else
			pcbt_sleep_ms(1);
		hsub_advance(s);
		if (s->changing && now_ns() >= s->next_change) {
			hsub_change_filter(s);
			s->next_change = now_ns() + below(&s->rg, 200 * PCBT_MS);
		}
	}
	until = now_ns() + 30 * PCBT_SEC;
	while (!s->dead && !hsub_advance(s) && now_ns() < until)
		pcbt_sleep_ms(1);
	if (!s->dead && !hsub_advance(s))
		violation("consumer %d: honest messages still undecided 30 s after the end",
			  s->idx);
	if (s->reliable && pcbt_load_acquire(&s->r.hdr->dropped))
		violation("consumer %d: a reliable ring counts %llu dropped",
			  s->idx, (unsigned long long)s->r.hdr->dropped);
	return NULL;
}

/*
 * The honest process: consumers subscribe, then the publishers publish
 * until the deadline, then the consumers decide the last messages.
 */
static int honest_main(void)
{
	struct hpub *pubs[NR_HPUBS];
	struct rng r;
	int ret;

	alarm((sh->deadline_ns - now_ns()) / PCBT_SEC + 120);
	sh->honest_pid = getpid();
	rng_seed(&r, sh->seed ^ 0x686f6e657374ULL);
	for (int i = 0; i < NR_HSUBS; i++) {
		hp.subs[i] = calloc(1, sizeof(*hp.subs[i]));
		if (!hp.subs[i])
			return 2;
		ret = hsub_setup(hp.subs[i], i, &r);
		if (ret) {
			violation("honest consumer %d: setting up: %s", i,
				  errname(-ret));
			return 1;
		}
	}
	for (int i = 0; i < NR_HPUBS; i++) {
		char name[PCB_NAME_MAX];

		pubs[i] = calloc(1, sizeof(*pubs[i]));
		if (!pubs[i])
			return 2;
		pubs[i]->idx = i;
		rng_seed(&pubs[i]->r, sh->seed ^ (0x7075620000ULL + i));
		pubs[i]->fd = pcbt_open();
		if (pubs[i]->fd < 0)
			return 2;
		pubs[i]->have_u = !pcbt_uring_init(&pubs[i]->u, 16,
						   IORING_SETUP_SQE128 |
						   IORING_SETUP_CQE32);
		for (int t = 0; t < NR_HONEST; t++) {
			honest_name(name, t);
			ret = pcbt_open_topic(pubs[i]->fd, name, 0,
					      &pubs[i]->handle[t]);
			if (ret) {
				violation("honest publisher %d: opening %s: %s",
					  i, name, errname(-ret));
				return 1;
			}
		}
	}
	for (int i = 0; i < NR_HSUBS; i++)
		if (pthread_create(&hp.subs[i]->tid, NULL, hsub_main, hp.subs[i]))
			return 2;
	for (int i = 0; i < NR_HPUBS; i++)
		if (pthread_create(&pubs[i]->tid, NULL, hpub_main, pubs[i]))
			return 2;
	for (int i = 0; i < NR_HPUBS; i++)
		pthread_join(pubs[i]->tid, NULL);
	pcbt_store_release(&hp.pubs_done, 1);
	for (int i = 0; i < NR_HSUBS; i++)
		pthread_join(hp.subs[i]->tid, NULL);
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
	for (int i = 0; i < NR_PROCS; i++) {
		struct pcb_topic_name tn = { 0 };

		own_name(tn.name, "own", i);
		ioctl(fd, PCB_IOC_TOPIC_DELETE, &tn);
		own_name(tn.name, "big", i);
		ioctl(fd, PCB_IOC_TOPIC_DELETE, &tn);
		own_name(tn.name, "spare", i);
		ioctl(fd, PCB_IOC_TOPIC_DELETE, &tn);
		own_name(tn.name, "clock", i);
		ioctl(fd, PCB_IOC_TOPIC_DELETE, &tn);
	}
	for (unsigned int i = 0; i < NR_HONEST; i++) {
		struct pcb_topic_name tn = { 0 };

		honest_name(tn.name, i);
		ioctl(fd, PCB_IOC_TOPIC_DELETE, &tn);
	}
	close(fd);
}

/*
 * The honest topics (mode 0777: every worker may publish, subscribe and
 * subscribe reliably) and the topic broken rings try to subscribe to.
 */
static int create_honest(void)
{
	char name[PCB_NAME_MAX];
	int fd = pcbt_open(), err = 0;

	if (fd < 0)
		return -fd;
	for (unsigned int i = 0; !err && i < NR_HONEST; i++) {
		struct pcb_topic_create tc = {
			.max_msg_size = honest_max[i], .mode = 0777,
			.uid = PCB_OWNER_CALLER, .gid = PCB_OWNER_CALLER,
		};

		honest_name(tc.name, i);
		err = ioctl(fd, PCB_IOC_TOPIC_CREATE, &tc) ? errno : 0;
		sh->honest_ids[i] = tc.topic_id;
	}
	own_name(name, "spare", 0);
	if (!err)
		err = ensure_topic(fd, name, 64, 0777);
	own_name(name, "clock", 0);
	if (!err)
		err = ensure_topic(fd, name, 8, 0700);
	close(fd);
	return err;
}

/* Workers first, so that their forgers come first in subscriber lists. */
static pid_t spawn_honest(void)
{
	__u64 until = now_ns() + 3 * PCBT_SEC;
	pid_t pid;

	while (pcbt_load_acquire(&sh->forgers) < NR_PROCS && now_ns() < until)
		pcbt_sleep_ms(10);
	pid = fork();
	if (pid == 0)
		_exit(honest_main());
	if (pid > 0)
		sh->honest_pid = pid;
	return pid;
}

/*
 * The supervisor: forks the workers, respawns the killed ones while there
 * is time, and reports a worker that died otherwise (a watchdog alarm is a
 * hang).  Returns the number of such failures.
 */
static int supervise(bool as_root)
{
	int gens[NR_PROCS] = { 0 }, live = 0, bad = 0, st, err;
	pid_t pid, honest = 0;

	if (sh->honest) {
		err = create_honest();
		if (err) {
			fprintf(stderr, "# fuzz: creating the honest topics: %s\n",
				errname(err));
			return 1;
		}
	}
	for (int i = 0; i < NR_PROCS; i++) {
		if (spawn(i, 0, as_root && i == NR_PROCS - 1) < 0)
			return 1;
		live++;
	}
	if (sh->honest) {
		honest = spawn_honest();
		if (honest < 0)
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
		if (pid == honest) {
			live--;
			if (!WIFEXITED(st) || WEXITSTATUS(st)) {
				fprintf(stderr, "# fuzz: the honest process %s %d (seed %#llx)\n",
					WIFEXITED(st) ? "exited" : "died of signal",
					WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st),
					(unsigned long long)sh->seed);
				bad++;
			}
			continue;
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
	printf("# fuzz: seed %#llx: %llu operations, %llu records checked, %llu kills, %llu respawns, %llu unexpected, %llu violations\n",
	       (unsigned long long)sh->seed, (unsigned long long)total,
	       (unsigned long long)sh->records, (unsigned long long)sh->kills,
	       (unsigned long long)sh->respawns,
	       (unsigned long long)sh->unexpected,
	       (unsigned long long)sh->violations);
	printf("# fuzz: honest: %llu accepted, %llu failed; %llu honest and %llu workers' records checked; %llu deliveries verified, %llu not owed (filtered, lossy)\n",
	       (unsigned long long)sh->h_accepted,
	       (unsigned long long)sh->h_failed,
	       (unsigned long long)sh->h_records,
	       (unsigned long long)sh->h_foreign,
	       (unsigned long long)sh->h_verified,
	       (unsigned long long)sh->h_filtered);
	printf("# fuzz: attacks: %llu positions past a BUSY record, %llu flooding publishes, %llu broken rings, %llu flipped messages accepted, %llu oversized batches refused, %llu missed by a lossy ring too small\n",
	       (unsigned long long)sh->forge_busy,
	       (unsigned long long)sh->forge_flood,
	       (unsigned long long)sh->forge_broken,
	       (unsigned long long)sh->flip_msgs,
	       (unsigned long long)sh->big_refused,
	       (unsigned long long)sh->big_missed);
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
	sh->honest = env_u64("PCB_FUZZ_HONEST", 1);
	sh->honest_uid = geteuid();
	sh->nobody_uid = self->root ? PCBT_NOBODY : geteuid();
	printf("# fuzz: seed %#llx (PCB_FUZZ_SEED=%#llx reproduces each thread's operations), %llu s, %d processes x %d threads, %s\n",
	       (unsigned long long)sh->seed, (unsigned long long)sh->seed,
	       (unsigned long long)seconds, NR_PROCS, NR_THREADS,
	       self->root ? "root, in a new IPC namespace" : "unprivileged");
	fflush(stdout);
	sh->start_ns = now_ns();
	sh->deadline_ns = sh->start_ns + seconds * PCBT_SEC;

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
	EXPECT_EQ(0ULL, sh->violations)
		TH_LOG("broken guarantees (seed %#llx)",
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
