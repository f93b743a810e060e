// SPDX-License-Identifier: GPL-2.0
/*
 * pcb-stress: a hostile process.
 *
 * Runs as uid 65534 when the run is root's (else as the run's user), in
 * the checked topics the honest roles use, whose mode lets anyone publish
 * and subscribe.  One thread per kind of hostility (--hostile-skip leaves
 * kinds out):
 *
 *   cons   consumers whose rings subscribe to several checked topics and
 *          to their own, and that write nonsensical consumer positions:
 *          random ones, ahead of prod_pos, more than the ring behind it;
 *   forge  the same, but the position goes past the first record the
 *          kernel is still writing (BUSY), up to prod_pos, and at once the
 *          consumer publishes a message as big as its ring to its own
 *          topic: a kernel that trusted the position would let that
 *          message overwrite the checked one it is still writing, and
 *          perhaps copy it from there to the other subscribers.  In
 *          bursts, it also floods: one thread keeps storing prod_pos as
 *          the position while another publishes messages as big as the
 *          ring, so that the kernel, if it trusts the position, gives
 *          them the bytes of every record it is writing;
 *   flip   a publisher whose payload buffers, batch entries and publish
 *          arguments another thread keeps changing while the kernel reads
 *          them: single publishes, plain and atomic batches, io_uring
 *          (from a registered buffer in every other generation);
 *   batch  oversized batches to a topic whose only subscriber is lossy,
 *          with a ring too small for them: payloads adding up to more than
 *          PCB_BATCH_ATOMIC_BYTES, 4096 entries of 1 MiB pointing at one
 *          buffer (a total that wraps 32 bits), entries over the topic's
 *          max_msg_size; each must fail exactly as the uapi says, and
 *          entries to checked topics in them must reach no one.
 *
 * Hostile rings may break: that is expected and counted, and the thread
 * starts over with a new endpoint once it has checked that WAIT, poll and
 * SUBSCRIBE report the broken ring.  A ring whose consumer only ever
 * consumed properly must not break.  Every call must end in success or an
 * errno the uapi allows for it, the exact one where the uapi leaves no
 * choice.  Whether the honest roles still get what they are owed is
 * checked on their side (checked.c, transient.c).
 */
#define _GNU_SOURCE		/* setresuid() */
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <signal.h>
#include <unistd.h>

#include "stress.h"

/* A 4 KiB ring still takes one: 64 bytes of header, 64 of dependencies. */
#define OWN_MSG_MAX	(4096U - 128)
#define BIG_MSG		(1024U * 1024)	/* max_msg_size of the big topic */
#define BIG_RING	(2U << 20)	/* the smallest ring that takes one */
#define NOBODY		65534U

/* A ring of our own, read and abused directly, without libpcb. */
struct hring {
	int fd;
	uint32_t size;
	uint32_t page;
	struct pcb_ring_consumer *cons;
	const struct pcb_ring_header *hdr;
	const uint8_t *data;
	void *ro;
	size_t ro_len;
	uint64_t pos;			/* where we consume from */
	int own;			/* publish handle of our own topic */
};

/* One thread of a hostile process. */
struct hth {
	unsigned int index;		/* of the process */
	enum hostile_kind kind;
	uint64_t rnd;
	char own[PCB_NAME_MAX];		/* our topic */
	char spare[PCB_NAME_MAX];	/* a topic no ring subscribes to */
	pthread_t tid;
};

static bool in_errs(int err, const int *errs)
{
	for (; *errs; errs++)
		if (*errs == err)
			return true;
	return false;
}

#define ERRS(...) ((const int []){ __VA_ARGS__, 0 })

static int hring_open(struct hring *r, uint32_t size)
{
	struct pcb_ring_setup rs = { .data_size = size };
	void *p;
	int err;

	memset(r, 0, sizeof(*r));
	r->own = -1;
	r->fd = open(PCB_DEVICE_PATH, O_RDWR | O_CLOEXEC);
	if (r->fd < 0)
		return -errno;
	if (ioctl(r->fd, PCB_IOC_RING_SETUP, &rs))
		goto fail;
	p = mmap(NULL, rs.page_size, PROT_READ | PROT_WRITE, MAP_SHARED,
		 r->fd, (off_t)rs.cons_offset);
	if (p == MAP_FAILED)
		goto fail;
	r->cons = p;
	r->ro_len = rs.mmap_size - rs.header_offset;
	p = mmap(NULL, r->ro_len, PROT_READ, MAP_SHARED, r->fd,
		 (off_t)rs.header_offset);
	if (p == MAP_FAILED) {
		err = errno;
		munmap(r->cons, rs.page_size);
		errno = err;
		goto fail;
	}
	r->ro = p;
	r->page = rs.page_size;
	r->hdr = p;
	r->data = (const uint8_t *)p + (rs.data_offset - rs.header_offset);
	r->size = size;
	return 0;
fail:
	err = errno;
	close(r->fd);
	r->fd = -1;
	return -err;
}

static void hring_close(struct hring *r)
{
	munmap(r->ro, r->ro_len);
	munmap(r->cons, r->page);
	close(r->fd);
}

static bool hring_broken(const struct hring *r)
{
	return load_acquire(&r->hdr->flags) & PCB_RING_BROKEN;
}

static const struct pcb_record *rec_at(const struct hring *r, uint64_t pos)
{
	return (const void *)(r->data + (pos & (r->size - 1)));
}

/*
 * Walks from our position towards @prod over complete records; stops at
 * the first BUSY one (its position in *@busy) and returns where it
 * stopped.  A length that makes no sense ends the walk at @prod: in a ring
 * we abused, anything may be there.
 */
static uint64_t walk(const struct hring *r, uint64_t prod, uint64_t *busy)
{
	uint64_t pos = r->pos;

	*busy = ~0ULL;
	while (pos < prod && prod - pos <= r->size) {
		/* B: pairs with the kernel's commit (2). */
		uint32_t len = load_acquire(&rec_at(r, pos)->len);
		uint64_t sz = PCB_REC_SIZE(len);

		if (len & PCB_REC_BUSY) {
			*busy = pos;
			break;
		}
		if (!sz || sz > prod - pos)
			return prod;
		pos += sz;
	}
	return pos;
}

/* Gives back what has been written, as an honest consumer would. */
static void consume(struct hring *r)
{
	/* A: pairs with the kernel's reservation (1). */
	uint64_t prod = load_acquire(&r->hdr->prod_pos), busy;

	r->pos = walk(r, prod, &busy);
	/* C: pairs with the kernel's space check (3). */
	store_release(&r->cons->cons_pos, r->pos);
	/* E: pairs with 5. */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	if (load_once(&r->hdr->flags) & PCB_RING_PUB_WAITING)
		ioctl(r->fd, PCB_IOC_NOTIFY, 0);
}

static int subscribe(struct hring *r, const char *name, uint32_t flags)
{
	struct pcb_subscribe s = { .flags = flags };

	snprintf(s.name, sizeof(s.name), "%s", name);
	return ioctl(r->fd, PCB_IOC_SUBSCRIBE, &s) ? errno : 0;
}

static int topic_open(int fd, const char *name)
{
	struct pcb_topic_open to = { 0 };

	snprintf(to.name, sizeof(to.name), "%s", name);
	return ioctl(fd, PCB_IOC_TOPIC_OPEN, &to) ? -errno : (int)to.handle;
}

/* PCB_IOC_PUBLISH; returns 0 or the errno. */
static int publish(int fd, int handle, const void *buf, uint32_t len,
		   uint32_t flags, uint64_t timeout_ns)
{
	struct pcb_publish arg = {
		.handle = (uint32_t)handle,
		.flags = flags,
		.payload = (uintptr_t)buf,
		.len = len,
		.timeout_ns = timeout_ns,
	};

	return ioctl(fd, PCB_IOC_PUBLISH, &arg) ? errno : 0;
}

/* A publish of ours that may wait a little or not at all. */
static void publish_own(struct hth *h, struct hring *r, const void *buf,
			uint32_t len)
{
	int err = publish(r->fd, r->own, buf, len,
			  rnd_chance(&h->rnd, 50) ? PCB_PUB_NONBLOCK : 0,
			  MSEC + rnd_below(&h->rnd, 5 * MSEC));

	if (err && !in_errs(err, ERRS(EAGAIN, ETIMEDOUT)))
		violation("publishing %u bytes to %s: %s", len, h->own,
			  errname(err));
}

/* A broken ring must say so wherever the uapi says it does. */
static void check_broken(struct hth *h, struct hring *r)
{
	struct pcb_wait w = { .timeout_ns = MSEC };
	struct pollfd pfd = { .fd = r->fd, .events = POLLIN };
	int err;

	count_inc(&shm->n.hostile_broken);
	if (!ioctl(r->fd, PCB_IOC_WAIT, &w) || errno != EPIPE)
		violation("WAIT on a broken ring: %s, expected EPIPE",
			  errname(errno));
	if (poll(&pfd, 1, 0) != 1 || !(pfd.revents & POLLERR))
		violation("poll on a broken ring: revents %#x, expected POLLERR",
			  pfd.revents);
	err = subscribe(r, h->spare, PCB_SUB_LOSSY);
	if (err != EPIPE && err != EDQUOT)
		violation("SUBSCRIBE with a broken ring: %s, expected EPIPE",
			  errname(err));
	if (!err)
		violation("a broken ring took a new subscription to %s",
			  h->spare);
}

/* A position that makes no sense: random, ahead, or too far behind. */
static void wild_position(struct hth *h, struct hring *r)
{
	uint64_t prod = load_acquire(&r->hdr->prod_pos), v;

	switch (rnd_below(&h->rnd, 4)) {
	case 0:
		v = rnd_next(&h->rnd);
		break;
	case 1:
		v = prod + 8 * (1 + rnd_below(&h->rnd, 64));
		break;
	case 2:
		v = prod - r->size - 8 * (1 + rnd_below(&h->rnd, 64));
		break;
	default:
		v = prod + r->size;
		break;
	}
	store_release(&r->cons->cons_pos, v);
	count_inc(&shm->n.hostile_cons_writes);
}

/*
 * Past the first BUSY record: to prod_pos, just past that record, or
 * anywhere in between, then at once a message as big as the ring into it.
 * Returns whether a BUSY record was found in time.
 */
static bool forge(struct hth *h, struct hring *r, const uint8_t *junk)
{
	uint64_t prod, busy, to;
	unsigned int i;

	for (i = 0; i < 20000 && !stopping(); i++) {
		prod = load_acquire(&r->hdr->prod_pos);
		r->pos = walk(r, prod, &busy);
		if (busy == ~0ULL) {
			store_release(&r->cons->cons_pos, r->pos);
			continue;
		}
		switch (rnd_below(&h->rnd, 3)) {
		case 0:
			to = busy + PCB_REC_SIZE(load_once(&rec_at(r, busy)->len));
			break;
		case 1:
			to = busy + 8 * (1 + rnd_below(&h->rnd, (prod - busy) / 8));
			break;
		default:
			to = prod;
			break;
		}
		r->pos = to > prod ? prod : to;
		store_release(&r->cons->cons_pos, r->pos);
		publish_own(h, r, junk, OWN_MSG_MAX);
		count_inc(&shm->n.forge_busy);
		return true;
	}
	return false;
}

/*
 * The keeper: a thread of the forger that stores prod_pos as the consumer
 * position over and over while @run is set.  @busy brackets each look at
 * the ring, so that flood() knows when the ring may go (both sides use
 * sequentially consistent accesses: whoever comes second sees the other).
 */
struct keeper {
	struct hring *r;
	int run;
	int busy;
	int quit;
};

static void *keeper_main(void *arg)
{
	struct keeper *k = arg;

	while (!__atomic_load_n(&k->quit, __ATOMIC_SEQ_CST)) {
		__atomic_store_n(&k->busy, 1, __ATOMIC_SEQ_CST);
		if (__atomic_load_n(&k->run, __ATOMIC_SEQ_CST)) {
			struct hring *r = k->r;

			store_release(&r->cons->cons_pos,
				      load_acquire(&r->hdr->prod_pos));
			__atomic_store_n(&k->busy, 0, __ATOMIC_SEQ_CST);
			continue;
		}
		__atomic_store_n(&k->busy, 0, __ATOMIC_SEQ_CST);
		sleep_ns(MSEC);
	}
	return NULL;
}

/*
 * A burst of messages as big as the ring while the keeper declares the
 * whole ring free: whatever the kernel is writing into the ring
 * meanwhile, a kernel that trusts the position lets these overwrite it.
 */
static void flood(struct hth *h, struct hring *r, struct keeper *k,
		  const uint8_t *junk)
{
	unsigned int i, n = 20 + (unsigned int)rnd_below(&h->rnd, 200);

	k->r = r;
	__atomic_store_n(&k->run, 1, __ATOMIC_SEQ_CST);
	for (i = 0; i < n && !stopping() && !hring_broken(r); i++)
		publish_own(h, r, junk, OWN_MSG_MAX);
	__atomic_store_n(&k->run, 0, __ATOMIC_SEQ_CST);
	while (__atomic_load_n(&k->busy, __ATOMIC_SEQ_CST))
		sched_yield();
	r->pos = load_acquire(&r->cons->cons_pos);
	count_add(&shm->n.forge_flood, i);
}

/*
 * Subscribes a new ring to its own topic and some checked ones; on
 * failure, leaves nothing open.
 */
static int ring_start(struct hth *h, struct hring *r)
{
	static const uint32_t sizes[] = { 4096, 8192, 16384 };
	uint32_t size = h->kind == HOSTILE_FORGE ? 4096 :
			sizes[rnd_below(&h->rnd, 3)];
	char name[PCB_NAME_MAX];
	unsigned int t;
	int ret, err;

	ret = hring_open(r, size);
	if (ret == -ENOMEM || ret == -EMFILE || ret == -ENFILE) {
		count_inc(&shm->n.hostile_enomem);
		return ret;
	}
	if (ret) {
		violation("a hostile ring of %u bytes: %s", size, errname(-ret));
		return ret;
	}
	count_inc(&shm->n.hostile_sessions);
	r->own = topic_open(r->fd, h->own);
	if (r->own < 0) {
		violation("opening %s: %s", h->own, errname(-r->own));
		hring_close(r);
		return r->own;
	}
	err = subscribe(r, h->own, rnd_chance(&h->rnd, 50) ? PCB_SUB_LOSSY : 0);
	if (err && err != EDQUOT)
		violation("subscribing to %s: %s", h->own, errname(err));
	for (t = 0; t < shm->cfg.nr_topics; t++) {
		if (rnd_chance(&h->rnd, 30))
			continue;
		topic_name(name, sizeof(name), t);
		err = subscribe(r, name, rnd_chance(&h->rnd, 75) ?
				PCB_SUB_LOSSY : 0);
		if (err && err != EDQUOT && err != EPIPE)
			violation("subscribing a hostile ring to %s: %s", name,
				  errname(err));
	}
	return 0;
}

/* The cons and forge threads: ring after ring, each abused until broken. */
static void ring_thread(struct hth *h)
{
	struct keeper k = { 0 };
	uint8_t junk[OWN_MSG_MAX], noise[OWN_MSG_MAX];
	pthread_t keeper;
	struct hring r;
	uint64_t end;

	if (h->kind == HOSTILE_FORGE &&
	    pthread_create(&keeper, NULL, keeper_main, &k))
		die("pthread_create");
	while (!stopping()) {
		if (ring_start(h, &r)) {
			sleep_ns(50 * MSEC);
			continue;
		}
		if (h->kind == HOSTILE_FORGE && my_gen == 1 && !k.r)
			count_inc(&shm->hostile_ready);
		/*
		 * Zeroes make a record written over look 0 bytes long; noise
		 * makes the bytes that others receive differ visibly.
		 */
		memset(junk, rnd_chance(&h->rnd, 50) ? 0 : 0xee, sizeof(junk));
		memset(noise, 0xee, sizeof(noise));
		/*
		 * A forger keeps its ring as long as it can: a ring made
		 * early comes first in the subscriber lists.
		 */
		end = h->kind == HOSTILE_FORGE ? ~0ULL :
		      now_ns() + 100 * MSEC + rnd_below(&h->rnd, 900 * MSEC);
		while (!stopping() && now_ns() < end && !hring_broken(&r)) {
			if (h->kind == HOSTILE_FORGE && rnd_chance(&h->rnd, 50)) {
				flood(h, &r, &k, noise);
			} else if (h->kind == HOSTILE_FORGE) {
				forge(h, &r, junk);
			} else if (rnd_chance(&h->rnd, 30)) {
				wild_position(h, &r);
				publish_own(h, &r, junk, 64);
			} else {
				consume(&r);
				if (rnd_chance(&h->rnd, 20))
					publish_own(h, &r, junk, 64 +
						    (uint32_t)rnd_below(&h->rnd, 1024));
			}
			sleep_ns(rnd_below(&h->rnd, 3 * MSEC));
		}
		if (hring_broken(&r))
			check_broken(h, &r);
		hring_close(&r);
	}
	if (h->kind == HOSTILE_FORGE) {
		__atomic_store_n(&k.quit, 1, __ATOMIC_SEQ_CST);
		pthread_join(keeper, NULL);
	}
}

/*
 * The flip thread's buffers.  The flipper rewrites @buf from @a and @b
 * over and over and swaps the lengths and payloads of the batch entries
 * and the length of the single publish's argument, while @active is set.
 */
struct flip {
	uint8_t buf[2][STRESS_MSG_MAX] __attribute__((aligned(64)));
	uint8_t a[STRESS_MSG_MAX], b[STRESS_MSG_MAX];
	struct pcb_batch_entry e[STRESS_BATCH_MAX];
	uint32_t len[2][STRESS_BATCH_MAX];
	unsigned int n;			/* entries to flip */
	struct pcb_publish arg;
	uint32_t arg_len[2];
	int active;
	int quit;
	uint64_t rnd;
	int handle[STRESS_MAX_TOPICS];
	struct pcb *bus;
	struct pcb_uring_pub *up;
};

static void *flipper(void *arg)
{
	struct flip *f = arg;
	unsigned int i, k, side = 0;

	while (!load_acquire(&f->quit)) {
		if (!load_acquire(&f->active)) {
			sleep_ns(MSEC);
			continue;
		}
		side ^= 1;
		for (k = 0; k < 2; k++)
			for (i = 0; i < STRESS_MSG_MAX; i += 8)
				memcpy(&f->buf[k][i], (side ? f->b : f->a) + i, 8);
		for (i = 0; i < load_once(&f->n); i++) {
			store_once(&f->e[i].len, f->len[side][i]);
			store_once(&f->e[i].payload, (uintptr_t)f->buf[side]);
		}
		store_once(&f->arg.len, f->arg_len[side]);
	}
	return NULL;
}

static uint32_t flip_len(struct flip *f)
{
	return STRESS_MSG_HDR +
	       (uint32_t)rnd_below(&f->rnd, STRESS_MSG_MAX - STRESS_MSG_HDR + 1);
}

static void flip_single(struct flip *f, unsigned int t)
{
	int ret;

	memset(&f->arg, 0, sizeof(f->arg));
	f->arg_len[0] = flip_len(f);
	f->arg_len[1] = flip_len(f);
	f->arg.handle = (uint32_t)f->handle[t];
	f->arg.payload = (uintptr_t)f->buf[0];
	f->arg.len = f->arg_len[0];
	f->arg.key = rnd_next(&f->rnd);
	f->arg.flags = rnd_chance(&f->rnd, 30) ? PCB_PUB_NONBLOCK : 0;
	f->arg.timeout_ns = MSEC + rnd_below(&f->rnd, 10 * MSEC);
	store_release(&f->active, 1);
	ret = ioctl(pcb_fd(f->bus), PCB_IOC_PUBLISH, &f->arg);
	store_release(&f->active, 0);
	if (!ret)
		count_inc(&shm->n.flip_accepted);
	else if (!in_errs(errno, ERRS(EAGAIN, ETIMEDOUT)))
		violation("publish from a flipping buffer to topic %u: %s", t,
			  errname(errno));
}

static void flip_batch(struct flip *f, bool atomic)
{
	unsigned int n = 1 + (unsigned int)rnd_below(&f->rnd, atomic ?
						       STRESS_ATOMIC_MAX : STRESS_BATCH_MAX);
	uint32_t flags = (atomic ? PCB_PUB_ATOMIC : 0) |
			 (rnd_chance(&f->rnd, 30) ? PCB_PUB_NONBLOCK : 0);
	unsigned int i, ok = 0;
	int ret, err;

	store_release(&f->n, 0);
	for (i = 0; i < n; i++) {
		unsigned int t = (unsigned int)rnd_below(&f->rnd, shm->cfg.nr_topics);

		f->len[0][i] = flip_len(f);
		f->len[1][i] = flip_len(f);
		pcb_batch_entry_prep(&f->e[i], f->handle[t], f->buf[0],
				     f->len[0][i], rnd_next(&f->rnd));
	}
	store_release(&f->n, n);
	store_release(&f->active, 1);
	ret = pcb_publish_batch(f->bus, f->e, n, flags,
				MSEC + rnd_below(&f->rnd, 10 * MSEC));
	store_release(&f->active, 0);
	store_release(&f->n, 0);
	err = ret < 0 ? -ret : 0;
	for (i = 0; i < n; i++) {
		int res = -f->e[i].result;

		if (!res)
			ok++;
		else if (!in_errs(res, ERRS(EAGAIN, ETIMEDOUT, E2BIG)) ||
			 (res == E2BIG && !atomic) || (atomic && res != err))
			violation("%s batch of %u from flipping buffers: entry %u: %s (batch: %s)",
				  atomic ? "atomic" : "plain", n, i,
				  errname(res), errname(err));
	}
	if (atomic && ((err && ok) || (!err && ok != n)))
		violation("atomic batch of %u: %u published, ioctl %s", n, ok,
			  errname(err));
	if (!atomic && (err || (unsigned int)ret != ok))
		violation("plain batch of %u: returned %d, %u entries say 0",
			  n, ret, ok);
	count_add(&shm->n.flip_accepted, ok);
}

static void flip_uring(struct flip *f)
{
	struct pcb_uring_result res[STRESS_BATCH_MAX];
	unsigned int n = 1 + (unsigned int)rnd_below(&f->rnd, STRESS_BATCH_MAX);
	unsigned int i, got = 0;
	int ret;

	if (!f->up) {
		if (pcb_uring_pub_create(&f->up, f->bus, 2 * STRESS_BATCH_MAX,
					 PCB_URING_ORDERED))
			return;
		/*
		 * Half the processes register the buffers: the kernel then
		 * copies from their pinned pages, which the flipper changes
		 * all the same.
		 */
		if (my_gen % 2 && pcb_uring_pub_register_buffer(f->up, f->buf,
								sizeof(f->buf)))
			note("no registered buffer for io_uring");
	}
	pcb_uring_pub_set_timeout(f->up, MSEC + rnd_below(&f->rnd, 10 * MSEC));
	for (i = 0; i < n; i++) {
		unsigned int t = (unsigned int)rnd_below(&f->rnd, shm->cfg.nr_topics);

		ret = pcb_uring_pub_queue(f->up, f->handle[t], f->buf[i & 1],
					  flip_len(f), rnd_next(&f->rnd),
					  PCB_PUB_NONBLOCK * rnd_chance(&f->rnd, 30), i);
		if (ret)
			die("pcb_uring_pub_queue: %s", errname(-ret));
	}
	store_release(&f->active, 1);
	for (i = 0; i < n; i += (unsigned int)ret) {
		ret = pcb_uring_pub_submit(f->up);
		if (ret < 0)
			die("pcb_uring_pub_submit: %s", errname(-ret));
	}
	while (got < n) {
		ret = pcb_uring_pub_reap(f->up, res, n - got,
					 PCB_URING_WAIT_FOREVER);
		if (ret < 0)
			die("pcb_uring_pub_reap: %s", errname(-ret));
		for (i = 0; i < (unsigned int)ret; i++) {
			if (!res[i].res)
				count_inc(&shm->n.flip_accepted);
			else if (!in_errs(-res[i].res,
					  ERRS(EAGAIN, ETIMEDOUT, ECANCELED, EINTR)))
				violation("io_uring publish from a flipping buffer: %s",
					  errname(-res[i].res));
		}
		got += (unsigned int)ret;
	}
	store_release(&f->active, 0);
}

static void flip_thread(struct hth *h)
{
	char name[PCB_NAME_MAX];
	struct flip *f = aligned_alloc(64, sizeof(*f));
	pthread_t tid;
	unsigned int t;
	int ret;

	if (!f)
		die("out of memory");
	memset(f, 0, sizeof(*f));
	f->rnd = h->rnd;
	ret = pcb_open(&f->bus);
	if (ret)
		die("pcb_open: %s", errname(-ret));
	for (t = 0; t < shm->cfg.nr_topics; t++) {
		topic_name(name, sizeof(name), t);
		f->handle[t] = pcb_topic_open(f->bus, name, 0);
		if (f->handle[t] < 0)
			die("opening %s: %s", name, errname(-f->handle[t]));
	}
	if (pthread_create(&tid, NULL, flipper, f))
		die("pthread_create");
	while (!stopping()) {
		unsigned int r = (unsigned int)rnd_below(&f->rnd, 100);

		t = (unsigned int)rnd_below(&f->rnd, shm->cfg.nr_topics);
		hostile_payload(f->a, STRESS_MSG_MAX, &f->rnd, t);
		hostile_payload(f->b, STRESS_MSG_MAX, &f->rnd, t);
		count_inc(&shm->n.flip_calls);
		if (r < 40)
			flip_single(f, t);
		else if (r < 60)
			flip_batch(f, false);
		else if (r < 80)
			flip_batch(f, true);
		else
			flip_uring(f);
		sleep_ns(rnd_below(&f->rnd, 4 * MSEC));
	}
	store_release(&f->quit, 1);
	pthread_join(tid, NULL);
	pcb_uring_pub_destroy(f->up);
	pcb_close(f->bus);
	free(f);
}

/*
 * The batch thread: a topic of its own with 1 MiB messages, a lossy ring
 * of 2 MiB on it (room for one such record: too small for any atomic
 * batch of them), and handles of the checked topics for entries that must
 * never be delivered.
 */
struct big {
	struct hth *h;
	struct hring r;
	int handle;
	int checked[STRESS_MAX_TOPICS];
	uint8_t *buf;			/* BIG_MSG bytes of DEAD_MAGIC */
	struct pcb_batch_entry *e;	/* PCB_BATCH_MAX */
	uint64_t records;		/* non-discard records read */
	bool ready;			/* @r set up */
};

static void big_consume(struct big *b)
{
	uint64_t prod = load_acquire(&b->r.hdr->prod_pos);

	while (b->r.pos < prod) {
		uint32_t len = load_acquire(&rec_at(&b->r, b->r.pos)->len);

		if (len & PCB_REC_BUSY) {
			violation("%s: a record still BUSY after every publish returned",
				  b->h->own);
			break;
		}
		if (!(len & PCB_REC_DISCARD))
			b->records++;
		if (!PCB_REC_SIZE(len)) {
			violation("%s: a record of length 0 at %llu", b->h->own,
				  (unsigned long long)b->r.pos);
			b->r.pos = prod;
			break;
		}
		b->r.pos += PCB_REC_SIZE(len);
	}
	store_release(&b->r.cons->cons_pos, b->r.pos);
}

/* The records a case delivered to our ring must be exactly @want. */
static void big_expect_records(struct big *b, uint64_t want, const char *what)
{
	uint64_t before = b->records;

	big_consume(b);
	if (b->records - before != want)
		violation("%s: our lossy %u-byte ring got %llu records, expected %llu",
			  what, BIG_RING, (unsigned long long)(b->records - before),
			  (unsigned long long)want);
	if (hring_broken(&b->r))
		violation("%s: a ring that was only ever consumed properly is broken",
			  what);
}

/* @n entries, each @len bytes of the one buffer, to the big topic. */
static void big_fill(struct big *b, unsigned int n, uint32_t len)
{
	unsigned int i;

	for (i = 0; i < n; i++)
		pcb_batch_entry_prep(&b->e[i], b->handle, b->buf, len, i);
}

static int big_call(struct big *b, unsigned int n, uint32_t flags)
{
	struct pcb_publish_batch pb = {
		.entries = (uintptr_t)b->e,
		.count = n,
		.flags = flags,
		.timeout_ns = 10 * MSEC,
	};
	unsigned int i;

	for (i = 0; i < n; i++)
		b->e[i].result = 12345;
	return ioctl(b->r.fd, PCB_IOC_PUBLISH_BATCH, &pb) ? errno : 0;
}

/*
 * An atomic batch that must fail with @want as a whole: the ioctl and
 * either every entry, or one entry with the others ECANCELED.
 */
static void big_expect_fail(struct big *b, unsigned int n, int err, int want,
			    const char *what)
{
	unsigned int i, nwant = 0, ncanceled = 0;

	for (i = 0; i < n; i++) {
		if (b->e[i].result == -want)
			nwant++;
		else if (b->e[i].result == -ECANCELED)
			ncanceled++;
	}
	if (err == want && (nwant == n || (nwant == 1 && ncanceled == n - 1))) {
		count_inc(&shm->n.big_batches);
		return;
	}
	for (i = 0; i < n && b->e[i].result == b->e[0].result; i++)
		;
	violation("%s: ioctl %s, uapi says %s; entry 0 %s, entry %u %s (%u of %u say %s)",
		  what, errname(err), errname(want), errname(-b->e[0].result),
		  i < n ? i : 0, errname(-b->e[i < n ? i : 0].result),
		  nwant, n, errname(want));
}

/* Payloads adding up to more than PCB_BATCH_ATOMIC_BYTES: E2BIG. */
static void big_too_big(struct big *b)
{
	/*
	 * 17 MiB; 1 GiB and 64 KiB of records, which a length masked to 30
	 * bits takes for 64 KiB; more than that; 4 GiB, which is 0 in 32
	 * bits.
	 */
	static const unsigned int counts[] = { 17, 1024, 1030, PCB_BATCH_MAX };
	unsigned int n = counts[rnd_below(&b->h->rnd, 4)];
	bool dead = rnd_chance(&b->h->rnd, 50) && n < PCB_BATCH_MAX;
	char what[160];
	int err;

	big_fill(b, n, BIG_MSG);
	if (dead) {
		unsigned int t = (unsigned int)rnd_below(&b->h->rnd, shm->cfg.nr_topics);

		/* One more entry, to a checked topic: no one may ever get it. */
		pcb_batch_entry_prep(&b->e[n], b->checked[t], b->buf, 64, 0);
		n++;
	}
	snprintf(what, sizeof(what),
		 "atomic batch of %u entries of %u bytes%s (%llu bytes%s)",
		 n - dead, BIG_MSG, dead ? " and one to a checked topic" : "",
		 (unsigned long long)(n - dead) * BIG_MSG + 64 * dead,
		 (uint32_t)((n - dead) * BIG_MSG + 64 * dead) < PCB_BATCH_ATOMIC_BYTES ?
		 ", under the limit in 32 bits" : "");
	err = big_call(b, n, PCB_PUB_ATOMIC | PCB_PUB_NONBLOCK);
	big_expect_fail(b, n, err, E2BIG, what);
	big_expect_records(b, 0, what);
}

/* Under the limit but too big for the lossy ring: it misses them all. */
static void big_lossy_misses(struct big *b)
{
	unsigned int n = rnd_chance(&b->h->rnd, 80) ? 3 : 15;
	uint64_t dropped = load_acquire(&b->r.hdr->dropped);
	char what[96];
	unsigned int i;
	int err;

	snprintf(what, sizeof(what), "atomic batch of %u x %u bytes", n,
		 BIG_MSG);
	big_fill(b, n, BIG_MSG);
	err = big_call(b, n, PCB_PUB_ATOMIC | PCB_PUB_NONBLOCK);
	for (i = 0; !err && i < n; i++)
		if (b->e[i].result)
			break;
	if (err || i < n)
		violation("%s, only a lossy subscriber: ioctl %s, entry %u %d; uapi says it is published",
			  what, errname(err), i < n ? i : 0,
			  b->e[i < n ? i : 0].result);
	else
		count_inc(&shm->n.big_accepted);
	big_expect_records(b, 0, what);
	if (!err && load_acquire(&b->r.hdr->dropped) - dropped != n)
		violation("%s: the lossy ring too small for it counts %llu dropped, expected %u",
			  what, (unsigned long long)(load_acquire(&b->r.hdr->dropped) -
						     dropped), n);
}

/* One entry longer than the topic's max_msg_size. */
static void big_too_long(struct big *b, bool atomic)
{
	static const uint32_t lens[] = { BIG_MSG + 1, 0xffffffffU,
					 0x80000000U, BIG_MSG + 8 };
	unsigned int n = 2 + (unsigned int)rnd_below(&b->h->rnd, 6), i, bad;
	unsigned int good = 0;
	char what[120];
	int err;

	bad = (unsigned int)rnd_below(&b->h->rnd, n);
	for (i = 0; i < n; i++) {
		if (atomic && rnd_chance(&b->h->rnd, 30)) {
			unsigned int t = (unsigned int)rnd_below(&b->h->rnd,
								 shm->cfg.nr_topics);

			pcb_batch_entry_prep(&b->e[i], b->checked[t], b->buf,
					     64, 0);
		} else {
			pcb_batch_entry_prep(&b->e[i], b->handle, b->buf,
					     8 + 8 * i, 0);
		}
	}
	b->e[bad].handle = (uint32_t)b->handle;
	b->e[bad].len = lens[rnd_below(&b->h->rnd, 4)];
	snprintf(what, sizeof(what), "%s batch of %u, entry %u of %u bytes",
		 atomic ? "atomic" : "plain", n, bad, b->e[bad].len);
	err = big_call(b, n, atomic ? PCB_PUB_ATOMIC : 0);
	if (atomic) {
		bool canceled = true;

		for (i = 0; i < n; i++)
			if (i != bad && b->e[i].result != -ECANCELED)
				canceled = false;
		if (err != EMSGSIZE || b->e[bad].result != -EMSGSIZE ||
		    !canceled)
			violation("%s: ioctl %s, entry %d; uapi: EMSGSIZE, the others ECANCELED",
				  what, errname(err),
				  b->e[bad].result);
		big_expect_records(b, 0, what);
		return;
	}
	for (i = 0; i < n; i++) {
		if (i == bad ? b->e[i].result != -EMSGSIZE : b->e[i].result != 0)
			violation("%s: ioctl %s, entry %u: %d", what,
				  errname(err), i, b->e[i].result);
		good += !b->e[i].result;
	}
	big_expect_records(b, good, what);
}

static void big_single_too_long(struct big *b)
{
	uint32_t len = rnd_chance(&b->h->rnd, 50) ? BIG_MSG + 1 : 0xffffffffU;
	int err = publish(b->r.fd, b->handle, b->buf, len, PCB_PUB_NONBLOCK, 0);

	if (err != EMSGSIZE)
		violation("publish of %u bytes to a topic of %u: %s, expected EMSGSIZE",
			  len, BIG_MSG, errname(err));
	big_expect_records(b, 0, "a publish too long");
}

/* The ring, its subscription and the handles; -errno, nothing left open. */
static int big_open(struct big *b, const char *name)
{
	char cname[PCB_NAME_MAX];
	unsigned int t;
	int ret;

	ret = hring_open(&b->r, BIG_RING);
	if (ret)
		return ret;
	ret = -subscribe(&b->r, name, PCB_SUB_LOSSY);
	b->handle = ret ? ret : topic_open(b->r.fd, name);
	ret = b->handle < 0 ? b->handle : 0;
	for (t = 0; !ret && t < shm->cfg.nr_topics; t++) {
		topic_name(cname, sizeof(cname), t);
		b->checked[t] = topic_open(b->r.fd, cname);
		ret = b->checked[t] < 0 ? b->checked[t] : 0;
	}
	if (ret)
		hring_close(&b->r);
	return ret;
}

/* Locked memory or the user's limits may be short for a while. */
static int big_setup(struct big *b, const char *name)
{
	int ret = big_open(b, name);

	if (ret == -ENOMEM || ret == -EMFILE || ret == -ENFILE ||
	    ret == -EDQUOT)
		count_inc(&shm->n.hostile_enomem);
	else if (ret)
		violation("setting up a lossy ring of %u bytes on %s: %s",
			  BIG_RING, name, errname(-ret));
	b->ready = !ret;
	return ret;
}

static void batch_thread(struct hth *h)
{
	struct pcb_topic_create tc = {
		.max_msg_size = BIG_MSG, .mode = 0700,
		.uid = PCB_OWNER_CALLER, .gid = PCB_OWNER_CALLER,
	};
	struct big b = { .h = h };
	uint32_t i, magic = DEAD_MAGIC;
	int fd = open(PCB_DEVICE_PATH, O_RDWR | O_CLOEXEC), err;

	snprintf(tc.name, sizeof(tc.name), "%s/hbig%u", shm->cfg.prefix,
		 h->index);
	if (fd < 0)
		die("opening %s: %s", PCB_DEVICE_PATH, errname(errno));
	err = ioctl(fd, PCB_IOC_TOPIC_CREATE, &tc) ? errno : 0;
	close(fd);
	if (err == EINVAL) {
		note("module parameter max_msg_size below 1 MiB: no big batches");
		return;
	}
	if (err && err != EEXIST)
		die("creating %s: %s", tc.name, errname(err));
	b.buf = mmap(NULL, BIG_MSG, PROT_READ | PROT_WRITE,
		     MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	b.e = calloc(PCB_BATCH_MAX + 1, sizeof(*b.e));
	if (b.buf == MAP_FAILED || !b.e)
		die("out of memory");
	for (i = 0; i < BIG_MSG; i += sizeof(magic))
		memcpy(b.buf + i, &magic, sizeof(magic));
	while (!stopping() && big_setup(&b, tc.name))
		sleep_ns(100 * MSEC);
	while (!stopping()) {
		unsigned int r = (unsigned int)rnd_below(&h->rnd, 100);

		if (r < 35)
			big_too_big(&b);
		else if (r < 50)
			big_lossy_misses(&b);
		else if (r < 70)
			big_too_long(&b, true);
		else if (r < 90)
			big_too_long(&b, false);
		else
			big_single_too_long(&b);
		sleep_ns(50 * MSEC + rnd_below(&h->rnd, 200 * MSEC));
	}
	if (b.ready)
		hring_close(&b.r);
	munmap(b.buf, BIG_MSG);
	free(b.e);
}

static void *thread_main(void *arg)
{
	struct hth *h = arg;

	switch (h->kind) {
	case HOSTILE_CONS:
	case HOSTILE_FORGE:
		ring_thread(h);
		break;
	case HOSTILE_FLIP:
		flip_thread(h);
		break;
	default:
		batch_thread(h);
		break;
	}
	return NULL;
}

/* As root, become nobody: an unprivileged attacker, told by its uid too. */
static void drop_privileges(void)
{
	if (geteuid())
		return;
	if (setgroups(0, NULL) || setresgid(NOBODY, NOBODY, NOBODY) ||
	    setresuid(NOBODY, NOBODY, NOBODY))
		die("becoming uid %u: %s", NOBODY, errname(errno));
	/* A change of credentials clears it. */
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() == 1)
		exit(2);
}

static void create_own(const char *name, uint32_t max)
{
	struct pcb_topic_create tc = {
		.max_msg_size = max, .mode = 0777,
		.uid = PCB_OWNER_CALLER, .gid = PCB_OWNER_CALLER,
	};
	int fd = open(PCB_DEVICE_PATH, O_RDWR | O_CLOEXEC);

	snprintf(tc.name, sizeof(tc.name), "%s", name);
	if (fd < 0 || (ioctl(fd, PCB_IOC_TOPIC_CREATE, &tc) && errno != EEXIST))
		die("creating %s: %s", name, errname(errno));
	close(fd);
}

int hostile_main(unsigned int index)
{
	struct hth h[NR_HOSTILE_KINDS];
	unsigned int k;

	drop_privileges();
	for (k = 0; k < NR_HOSTILE_KINDS; k++) {
		h[k].index = index;
		h[k].kind = (enum hostile_kind)k;
		rnd_seed(&h[k].rnd, ROLE_HOSTILE * 1000 + index * 10 + k, my_gen);
		snprintf(h[k].own, sizeof(h[k].own), "%s/hostile%u",
			 shm->cfg.prefix, index);
		snprintf(h[k].spare, sizeof(h[k].spare), "%s/spare%u",
			 shm->cfg.prefix, index);
	}
	create_own(h[0].own, OWN_MSG_MAX);
	create_own(h[0].spare, 64);
	for (k = 0; k < NR_HOSTILE_KINDS; k++)
		if (!(shm->cfg.hostile_skip & (1U << k)) &&
		    pthread_create(&h[k].tid, NULL, thread_main, &h[k]))
			die("pthread_create");
	for (k = 0; k < NR_HOSTILE_KINDS; k++)
		if (!(shm->cfg.hostile_skip & (1U << k)))
			pthread_join(h[k].tid, NULL);
	return 0;
}
