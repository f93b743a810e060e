// SPDX-License-Identifier: GPL-2.0
/*
 * pcb-stress: a publisher process.
 *
 * Publishes to the checked topics (and now and then to a churn topic) in
 * every way the bus offers: PCB_IOC_PUBLISH with a timeout or
 * PCB_PUB_NONBLOCK, batches with and without PCB_PUB_ATOMIC, and ordered
 * io_uring bursts.  Every message to a checked topic is logged before the
 * call and its outcome after it (see "The publish log" in stress.h).
 *
 * One thread: its messages to one topic are published in counter order,
 * so their seqs and ids must grow with the counter; the publisher checks
 * that of its own results.  A quarter of the calls declare causal
 * dependencies on messages it published before; the checked subscribers
 * verify them.
 */
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "stress.h"

struct out_msg {
	uint32_t topic;			/* checked index or STRESS_TOPIC_CHURN */
	int handle;
	uint64_t counter;
	struct log_entry *log;		/* NULL for churn topics */
	uint32_t len;
	uint64_t key;
	uint8_t *buf;
};

struct pub {
	struct pcb *bus;
	unsigned int slot;
	struct pub_slot *ps;
	uint64_t rnd;
	int handle[STRESS_MAX_TOPICS];
	int churn_handle;
	struct pcb_uring_pub *up;
	bool no_uring;
	uint64_t last_seq[STRESS_MAX_TOPICS];
	uint64_t last_id;
	uint64_t recent[4];		/* ids of its last accepted messages */
	unsigned int nr_recent;
	uint64_t since_ready;		/* --inject */
	uint8_t (*bufs)[STRESS_MSG_MAX];
};

enum { CALL_SINGLE, CALL_TRY, CALL_BATCH, CALL_ATOMIC, CALL_URING };

/*
 * Wait until every checked subscriber's cursor for (slot, topic) is close
 * enough that counter @c will not overwrite a log entry it has yet to
 * decide.  False when the run stops meanwhile.
 */
static bool pub_log_room(struct pub *p, unsigned int t, uint64_t c)
{
	uint64_t start = 0;
	unsigned int j;

	for (j = 0; j < shm->cfg.nr_checked; j++) {
		for (;;) {
			uint64_t cur = load_acquire(&shm->cursor[j][p->slot][t]);

			if (cur == ~0ULL ||
			    c + 4 * STRESS_BATCH_MAX < cur + STRESS_LOG_SIZE)
				break;
			if (stopping())
				return false;
			if (!start) {
				start = now_ns();
				count_inc(&shm->n.guard_waits);
			}
			sleep_ns(MSEC);
		}
	}
	return true;
}

/* Picks a topic: a checked one, or the open churn topic now and then. */
static uint32_t pick_topic(struct pub *p, bool churn_ok)
{
	if (churn_ok && p->churn_handle >= 0 && rnd_chance(&p->rnd, 12))
		return STRESS_TOPIC_CHURN;
	return (uint32_t)rnd_below(&p->rnd, shm->cfg.nr_topics);
}

/* Names, logs (checked topics) and builds message @o for @topic. */
static bool prepare(struct pub *p, struct out_msg *o, uint32_t topic,
		    uint8_t *buf)
{
	o->topic = topic;
	o->buf = buf;
	o->log = NULL;
	if (topic == STRESS_TOPIC_CHURN) {
		o->handle = p->churn_handle;
		o->counter = p->ps->churn_counter++;
	} else {
		uint64_t c = p->ps->next[topic];

		if (!pub_log_room(p, topic, c))
			return false;
		o->handle = p->handle[topic];
		o->counter = c;
		o->log = &shm->log[p->slot][topic][c % STRESS_LOG_SIZE];
		o->log->seq = 0;
		o->log->msg_id = 0;
		/* The entry first, then the counter that makes it visible. */
		store_release(&o->log->tag, LOG_TAG(c, my_gen, LOG_PENDING));
		store_release(&p->ps->next[topic], c + 1);
	}
	o->len = msg_build(buf, (uint16_t)p->slot, (uint16_t)my_gen, topic,
			   o->counter, &o->key);
	return true;
}

static void accepted(struct pub *p, struct out_msg *o, uint64_t seq,
		     uint64_t msg_id)
{
	if (msg_id <= p->last_id)
		violation("msg id %llu after %llu from the same publisher",
			  (unsigned long long)msg_id,
			  (unsigned long long)p->last_id);
	p->last_id = msg_id;
	p->recent[p->nr_recent++ % 4] = msg_id;
	count_inc(&shm->n.accepted);
	if (!o->log)
		return;
	if ((shm->cfg.inject == INJECT_FAILED || shm->cfg.inject == INJECT_SEQ) &&
	    p->slot == 0 && o->topic == 0 &&
	    load_acquire(&shm->checked_ready) == shm->cfg.nr_checked &&
	    ++p->since_ready > 50 && seq &&
	    !__atomic_exchange_n(&shm->injected, 1, __ATOMIC_RELAXED)) {
		/* --inject: log this success wrongly. */
		if (shm->cfg.inject == INJECT_FAILED) {
			o->log->msg_id = ETIMEDOUT;
			store_release(&o->log->tag, LOG_TAG(o->counter, my_gen,
							     LOG_FAILED));
			return;
		}
		if (shm->cfg.inject == INJECT_SEQ)
			seq++;
	}
	count_inc(&shm->n.accepted_checked);
	if (seq && seq <= p->last_seq[o->topic])
		violation("topic %u: seq %llu after %llu from the same publisher",
			  o->topic, (unsigned long long)seq,
			  (unsigned long long)p->last_seq[o->topic]);
	if (seq)
		p->last_seq[o->topic] = seq;
	o->log->seq = seq;
	o->log->msg_id = msg_id;
	store_release(&o->log->tag, LOG_TAG(o->counter, my_gen, LOG_DONE));
}

/* How a failed message was published. */
#define IN_ATOMIC	0x1	/* an atomic batch: fails as a whole */
#define WITH_CHURN	0x2	/* ... that names a churn topic */
#define IN_URING	0x4	/* an io_uring command */

/*
 * @err: a positive errno the publish of @o failed with.  An atomic batch
 * that names a churn topic fails with EIDRM as a whole when that topic
 * was deleted.
 */
static void failed(struct pub *p, struct out_msg *o, int err,
		   unsigned int how)
{
	(void)p;
	switch (err) {
	case ETIMEDOUT:
		count_inc(&shm->n.failed_timeout);
		break;
	case EAGAIN:
		count_inc(&shm->n.failed_again);
		break;
	case EINTR:
		/* No signal but SIGKILL ever comes: only io_uring's own. */
		if (!(how & IN_URING))
			violation("publish to topic %u: EINTR without a signal",
				  o->topic);
		note("io_uring publish to topic %u: EINTR", o->topic);
		count_inc(&shm->n.failed_intr);
		break;
	case ECANCELED:
		count_inc(&shm->n.failed_canceled);
		break;
	case E2BIG:
		if (how & IN_ATOMIC) {
			count_inc(&shm->n.failed_big);
			break;
		}
		fallthrough;
	default:
		if (err == EIDRM && (o->topic == STRESS_TOPIC_CHURN ||
				     (how & WITH_CHURN))) {
			count_inc(&shm->n.failed_churn);
			break;
		}
		violation("publish to topic %u failed: %s", o->topic,
			  strerror(err));
		break;
	}
	if (!o->log)
		return;
	o->log->msg_id = (uint64_t)err;
	store_release(&o->log->tag, LOG_TAG(o->counter, my_gen, LOG_FAILED));
}

/* Up to 3 distinct ids of our own earlier messages, or none. */
static unsigned int pick_deps(struct pub *p, uint64_t *deps)
{
	unsigned int want, n = 0, i;

	if (!p->nr_recent || !rnd_chance(&p->rnd, 25))
		return 0;
	want = 1 + (unsigned int)rnd_below(&p->rnd, 3);
	for (i = 0; i < 4 && i < p->nr_recent && n < want; i++)
		deps[n++] = p->recent[(p->nr_recent - 1 - i) % 4];
	return n;
}

static uint64_t pick_timeout(struct pub *p)
{
	return MSEC + rnd_below(&p->rnd, 50 * MSEC);
}

/* PCB_IOC_PUBLISH itself, for the seq it returns. */
static void op_single(struct pub *p, bool nonblock)
{
	uint64_t deps[PCB_MAX_DEPS];
	struct out_msg o;
	struct pcb_publish arg;

	if (!prepare(p, &o, pick_topic(p, true), p->bufs[0]))
		return;
	memset(&arg, 0, sizeof(arg));
	arg.nr_deps = pick_deps(p, deps);
	arg.deps = (uintptr_t)deps;
	arg.handle = (uint32_t)o.handle;
	arg.flags = nonblock ? PCB_PUB_NONBLOCK : 0;
	arg.payload = (uintptr_t)o.buf;
	arg.len = o.len;
	arg.key = o.key;
	arg.timeout_ns = pick_timeout(p);
	count_inc(&shm->n.calls[nonblock ? CALL_TRY : CALL_SINGLE]);
	if (ioctl(pcb_fd(p->bus), PCB_IOC_PUBLISH, &arg))
		failed(p, &o, errno, 0);
	else
		accepted(p, &o, arg.seq, arg.msg_id);
}

static void op_batch(struct pub *p, bool atomic)
{
	struct pcb_batch_entry e[STRESS_BATCH_MAX];
	struct out_msg o[STRESS_BATCH_MAX];
	uint64_t deps[PCB_MAX_DEPS];
	unsigned int n, i, ok = 0, nr_deps, how = atomic ? IN_ATOMIC : 0;
	uint32_t flags = atomic ? PCB_PUB_ATOMIC : 0;
	int ret;

	n = 2 + (unsigned int)rnd_below(&p->rnd, (atomic ? STRESS_ATOMIC_MAX :
						  STRESS_BATCH_MAX) - 1);
	if (rnd_chance(&p->rnd, 25))
		flags |= PCB_PUB_NONBLOCK;
	for (i = 0; i < n; i++) {
		if (!prepare(p, &o[i], pick_topic(p, true), p->bufs[i]))
			break;
		pcb_batch_entry_prep(&e[i], o[i].handle, o[i].buf, o[i].len,
				     o[i].key);
		if (atomic && o[i].topic == STRESS_TOPIC_CHURN)
			how |= WITH_CHURN;
	}
	n = i;
	if (!n)
		return;
	count_inc(&shm->n.calls[atomic ? CALL_ATOMIC : CALL_BATCH]);
	nr_deps = pick_deps(p, deps);
	ret = pcb_publish_batch_deps(p->bus, e, n, flags, pick_timeout(p),
				     deps, nr_deps);
	if (ret < 0 && !atomic) {
		violation("non-atomic batch of %u failed as a whole: %s", n,
			  strerror(-ret));
		for (i = 0; i < n; i++)
			failed(p, &o[i], -ret, 0);
		return;
	}
	for (i = 0; i < n; i++) {
		if (e[i].result == 0) {
			ok++;
			accepted(p, &o[i], e[i].seq, e[i].msg_id);
		} else {
			failed(p, &o[i], -e[i].result, how);
		}
	}
	if (atomic && ret >= 0 && ok != n)
		violation("atomic batch returned %d but %u of %u entries ok",
			  ret, ok, n);
	if (atomic && ret < 0 && ok)
		violation("atomic batch failed (%s) but %u entries ok",
			  strerror(-ret), ok);
	if (!atomic && (unsigned int)ret != ok)
		violation("batch says %d published, results say %u", ret, ok);
}

/*
 * An ordered io_uring burst: linked commands are published in queue
 * order; a failure cancels the rest of the chain.
 */
static void op_uring(struct pub *p)
{
	struct pcb_uring_result res[STRESS_BATCH_MAX];
	struct out_msg o[STRESS_BATCH_MAX];
	/* Read by the kernel when it issues a command: kept until reaped. */
	uint64_t deps[STRESS_BATCH_MAX][PCB_MAX_DEPS];
	int32_t result[STRESS_BATCH_MAX];
	uint64_t id[STRESS_BATCH_MAX];
	uint32_t flags = rnd_chance(&p->rnd, 20) ? PCB_PUB_NONBLOCK : 0;
	unsigned int n, i, got = 0, sent = 0;
	int ret;

	if (!p->up) {
		/* One publisher process in four has a polling thread submit. */
		uint32_t uflags = PCB_URING_ORDERED |
				  (my_gen % 4 == 0 ? PCB_URING_SQPOLL : 0);

		ret = pcb_uring_pub_create(&p->up, p->bus, 2 * STRESS_BATCH_MAX,
					   uflags);
		if (ret && (uflags & PCB_URING_SQPOLL)) {
			note("no SQPOLL io_uring publisher: %s", strerror(-ret));
			ret = pcb_uring_pub_create(&p->up, p->bus,
						   2 * STRESS_BATCH_MAX,
						   PCB_URING_ORDERED);
		}
		if (ret) {
			note("no io_uring publisher: %s", strerror(-ret));
			p->no_uring = true;
			return;
		}
	}
	pcb_uring_pub_set_timeout(p->up, pick_timeout(p));
	n = 1 + (unsigned int)rnd_below(&p->rnd, STRESS_BATCH_MAX);
	for (i = 0; i < n; i++) {
		if (!prepare(p, &o[i], pick_topic(p, true), p->bufs[i]))
			break;
		result[i] = 1;
		ret = pcb_uring_pub_queue_deps(p->up, o[i].handle, o[i].buf,
					       o[i].len, o[i].key, deps[i],
					       pick_deps(p, deps[i]), flags, i);
		if (ret)
			die("pcb_uring_pub_queue: %s", strerror(-ret));
	}
	n = i;
	if (!n)
		return;
	count_inc(&shm->n.calls[CALL_URING]);
	while (sent < n) {
		ret = pcb_uring_pub_submit(p->up);
		if (ret < 0)
			die("pcb_uring_pub_submit: %s", strerror(-ret));
		sent += (unsigned int)ret;
	}
	while (got < n) {
		ret = pcb_uring_pub_reap(p->up, res, n - got,
					 PCB_URING_WAIT_FOREVER);
		if (ret < 0)
			die("pcb_uring_pub_reap: %s", strerror(-ret));
		for (i = 0; i < (unsigned int)ret; i++) {
			unsigned int k = (unsigned int)res[i].user_data;

			if (k >= n || result[k] != 1)
				die("io_uring result for %u, unexpected", k);
			result[k] = res[i].res;
			id[k] = res[i].msg_id;
		}
		got += (unsigned int)ret;
	}
	/* In queue order, which is the order they were published in. */
	for (i = 0; i < n; i++) {
		if (result[i] == 0)
			accepted(p, &o[i], 0, id[i]);
		else
			failed(p, &o[i], -result[i], IN_URING);
	}
}

/* Drops the churn handle or opens another churn topic for publishing. */
static void op_churn_handle(struct pub *p)
{
	char name[PCB_NAME_MAX];
	int ret;

	if (p->churn_handle >= 0) {
		ret = pcb_topic_close(p->bus, p->churn_handle);
		if (ret)
			violation("closing churn handle %d: %s", p->churn_handle,
				  strerror(-ret));
		p->churn_handle = -1;
	}
	churn_name(name, sizeof(name),
		   (unsigned int)rnd_below(&p->rnd, STRESS_CHURN_POOL));
	ret = pcb_topic_open(p->bus, name, 0);
	if (ret >= 0)
		p->churn_handle = ret;
	else if (ret != -ENOENT && ret != -EPROTOTYPE)
		violation("opening churn topic %s: %s", name, strerror(-ret));
}

int publisher_main(unsigned int slot)
{
	char name[PCB_NAME_MAX];
	struct pub p = {
		.slot = slot,
		.ps = &shm->pubs[slot],
		.churn_handle = -1,
		.no_uring = !shm->cfg.use_uring,
	};
	unsigned int t;
	int ret;

	rnd_seed(&p.rnd, ROLE_PUB * 1000 + slot, my_gen);
	p.bufs = aligned_alloc(64, STRESS_BATCH_MAX * STRESS_MSG_MAX);
	if (!p.bufs)
		die("out of memory");
	ret = pcb_open(&p.bus);
	if (ret)
		die("pcb_open: %s", strerror(-ret));
	for (t = 0; t < shm->cfg.nr_topics; t++) {
		topic_name(name, sizeof(name), t);
		p.handle[t] = pcb_topic_open(p.bus, name, 0);
		if (p.handle[t] < 0)
			die("pcb_topic_open %s: %s", name, strerror(-p.handle[t]));
	}

	while (!stopping()) {
		unsigned int r = (unsigned int)rnd_below(&p.rnd, 100);

		if (r < 25)
			op_single(&p, false);
		else if (r < 40)
			op_single(&p, true);
		else if (r < 58)
			op_batch(&p, false);
		else if (r < 74)
			op_batch(&p, true);
		else if (r < 90 && !p.no_uring)
			op_uring(&p);
		else if (r < 90)
			op_batch(&p, r & 1);
		else if (r < 94)
			op_churn_handle(&p);
		else
			sleep_ns(rnd_below(&p.rnd, 3 * MSEC));
	}
	pcb_uring_pub_destroy(p.up);
	pcb_close(p.bus);
	free(p.bufs);
	return 0;
}
