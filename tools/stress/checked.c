// SPDX-License-Identifier: GPL-2.0
/*
 * pcb-stress: a checked subscriber.
 *
 * Subscribes one ring, reliably, to every checked topic (with a fixed
 * filter per topic, or none) while publishers already run, stays
 * subscribed for the whole run, and proves that it received exactly the
 * accepted messages it was owed, each once, in order, intact.
 *
 * What is known about the start of a subscription (topic t):
 *   m0  id of a marker published on the clock topic before subscribing
 *   s0  t's last seq, read after m0 and before SUBSCRIBE
 *   s1  t's last seq, read after SUBSCRIBE returned
 *   m1  id of a marker published after s1
 * Ids grow in publish order across the bus, and a topic's seq is taken in
 * the same critical section as the subscriber list is read, so a message
 * with seq <= s0 or id < m0 was published before the subscription and
 * cannot reach it, and one with seq > s1 or id > m1 was published after it
 * and must reach it if the filter takes it.  In between, either, but the
 * first message received fixes the start: every later one taken by the
 * filter must come too.
 *
 * Two checks meet.  When a record arrives (on_record()): payload intact,
 * pid and uid those of its publisher, per topic the seq contiguous (no
 * filter) or increasing (filter) and the id increasing, per publisher the
 * counter increasing, the filter satisfied, and its (slot, counter) seen
 * for the first time; the record's seq and id go into a window indexed by
 * counter.  Records of hostile processes (told by their pid) are checked
 * for order and filter too, and must say they come from a hostile
 * process, read the same in every ring, and never be an entry of a batch
 * that failed (hostile_verify()); their bytes are the hostile's to choose.  Then, walking each
 * publisher's log in counter order (advance()), every logged publish is
 * decided against the window:
 *   DONE, filter takes it   received, with the seq and id the publisher
 *                           was told; or not received and published
 *                           before the subscription started
 *   DONE, filter rejects it not received
 *   FAILED                  not received (nor later: a record for a
 *                           counter already decided is a violation)
 *   PENDING, writer killed  in doubt: either, counted
 * An entry is decided only once the outcome is final: a DONE one not
 * received yet once a later id of the topic was received (records of a
 * topic come in id order) or the run has drained; an in-doubt one once a
 * record newer than the marker published after its writer was reaped has
 * come.
 *
 * The fourth kind of checked subscriber changes its filters with
 * SET_FILTER all along.  Each change is bracketed by markers mb and ma: a
 * message with an id below mb was judged by the old filter, one above ma
 * by the new one, one in between by either (SET_FILTER is atomic).  A
 * message both candidates take must be received, one neither takes must
 * not, and one only one of them takes may or may not.
 */
#include <poll.h>
#include <stdlib.h>
#include <string.h>

#include "stress.h"

struct win {
	uint64_t seq;
	uint64_t msg_id;		/* 0: not received */
};

/* A filter and when it came into force: between markers @mb and @ma. */
struct filter_era {
	struct pcb_filter_spec f;
	uint64_t mb, ma;
};

#define MAX_ERAS	4096

struct chk_topic {
	char name[PCB_NAME_MAX];
	uint32_t id;
	bool filtered;
	/* era[0] from the subscription on, then one per SET_FILTER */
	struct filter_era *era;
	unsigned int nr_eras;
	uint64_t s0, s1, m0, m1;
	uint64_t count;
	uint64_t first_seq, first_id;
	uint64_t last_seq, last_id;
	uint64_t last_counter[STRESS_MAX_PUBS];
	bool seen_slot[STRESS_MAX_PUBS];
	uint64_t cursor[STRESS_MAX_PUBS];
	struct win *win[STRESS_MAX_PUBS];
};

struct chk {
	unsigned int index;
	struct pcb *bus;
	int clock_handle;
	bool use_poll;
	bool slow;
	bool changing;			/* filters change all along */
	uint64_t rnd;
	struct chk_topic t[STRESS_MAX_TOPICS];
	struct pcb_causal_check causal;
	struct checked_result *res;
};

/* The id of a fresh message on the clock topic (it has no subscriber). */
static uint64_t marker(struct chk *c)
{
	uint64_t id = 0;
	int ret = pcb_try_publish(c->bus, c->clock_handle, NULL, 0, 0, &id);

	if (ret)
		die("publishing a marker: %s", strerror(-ret));
	return id;
}

static void subscribe_topic(struct chk *c, unsigned int i)
{
	struct chk_topic *ct = &c->t[i];
	unsigned int s;
	uint32_t id;
	int ret;

	topic_name(ct->name, sizeof(ct->name), i);
	/*
	 * Counters below the cursor are never looked at.  A publisher has at
	 * most one batch (STRESS_BATCH_MAX) in flight, so any message logged
	 * so far but still to be published is within the last 64.
	 */
	for (s = 0; s < shm->cfg.nr_pubs; s++) {
		uint64_t next = load_acquire(&shm->pubs[s].next[i]);

		ct->cursor[s] = next > 64 ? next - 64 : 0;
		store_release(&shm->cursor[c->index][s][i], ct->cursor[s]);
		ct->win[s] = calloc(STRESS_LOG_SIZE, sizeof(struct win));
		if (!ct->win[s])
			die("out of memory");
	}
	ct->m0 = marker(c);
	if (topic_published(c->bus, ct->name, &ct->s0))
		die("topic info %s", ct->name);
	ret = pcb_subscribe_filtered(c->bus, ct->name, 0, 0,
				     ct->filtered ? &ct->era[0].f : NULL, &id);
	if (ret)
		die("subscribing to %s: %s", ct->name, strerror(-ret));
	if (id != shm->topic_id[i])
		violation("%s: subscribed to id %u, created as %u", ct->name,
			  id, shm->topic_id[i]);
	ct->id = id;
	if (topic_published(c->bus, ct->name, &ct->s1))
		die("topic info %s", ct->name);
	ct->m1 = marker(c);
	filter_format(ct->filtered ? &ct->era[0].f : NULL,
		      c->res->filter[i], sizeof(c->res->filter[i]));
	note("%s: s0 %llu s1 %llu filter %s", ct->name,
	     (unsigned long long)ct->s0, (unsigned long long)ct->s1,
	     c->res->filter[i]);
}

/* A record for a counter whose log entry was decided already. */
static void late_record(struct chk *c, unsigned int t, unsigned int slot,
			uint64_t counter, const struct pcb_record *rec)
{
	const struct log_entry *e =
		&shm->log[slot][t][counter % STRESS_LOG_SIZE];
	uint64_t tag = load_acquire(&e->tag);

	if (LOG_COUNTER(tag) == counter && LOG_STATE(tag) == LOG_FAILED)
		violation("topic %u seq %llu: publisher %u's message %llu was delivered although its publish failed (%s)",
			  t, (unsigned long long)rec->seq, slot,
			  (unsigned long long)counter, strerror((int)e->msg_id));
	else
		violation("topic %u seq %llu: publisher %u's message %llu delivered after it was decided (cursor %llu)",
			  t, (unsigned long long)rec->seq, slot,
			  (unsigned long long)counter,
			  (unsigned long long)c->t[t].cursor[slot]);
}

static void order_check(struct chk *c, unsigned int t,
			const struct pcb_record *rec)
{
	struct chk_topic *ct = &c->t[t];
	unsigned long long s = rec->seq, id = rec->msg_id;

	if (!ct->count) {
		if (s <= ct->s0)
			violation("topic %u: first record seq %llu, but the topic was at %llu before subscribing",
				  t, s, (unsigned long long)ct->s0);
		if (!ct->filtered && s > ct->s1 + 1)
			violation("topic %u: first record seq %llu, topic was at %llu after SUBSCRIBE: %llu missing",
				  t, s, (unsigned long long)ct->s1,
				  s - ct->s1 - 1);
		if (id <= ct->m0)
			violation("topic %u: first record id %llu older than the marker before subscribing (%llu)",
				  t, id, (unsigned long long)ct->m0);
		ct->first_seq = s;
		ct->first_id = id;
		return;
	}
	if (!ct->filtered && s != ct->last_seq + 1)
		violation("topic %u: seq %llu after %llu (%s)", t, s,
			  (unsigned long long)ct->last_seq,
			  s > ct->last_seq ? "gap" :
			  s == ct->last_seq ? "duplicate" : "reordered");
	else if (ct->filtered && s <= ct->last_seq)
		violation("topic %u: seq %llu after %llu", t, s,
			  (unsigned long long)ct->last_seq);
	if (id <= ct->last_id)
		violation("topic %u: msg id %llu after %llu", t, id,
			  (unsigned long long)ct->last_id);
}

/*
 * The filters that may have judged message @id: era *lo, or *hi when the
 * message came while SET_FILTER made *hi the one in force.
 */
static void judges(const struct chk_topic *ct, uint64_t id, unsigned int *lo,
		   unsigned int *hi)
{
	unsigned int a = 0, b = ct->nr_eras;

	/* The last era whose change surely came before the message. */
	while (b - a > 1) {
		unsigned int m = (a + b) / 2;

		if (ct->era[m].ma < id)
			a = m;
		else
			b = m;
	}
	*lo = *hi = a;
	if (a + 1 < ct->nr_eras && ct->era[a + 1].mb < id)
		*hi = a + 1;
}

static bool record_wanted(const struct chk_topic *ct, const struct pcb_msg *msg)
{
	const struct pcb_record *rec = msg->rec;
	unsigned int lo, hi, i;

	judges(ct, rec->msg_id, &lo, &hi);
	for (i = lo; i <= hi; i++)
		if (filter_eval(&ct->era[i].f, rec->key, rec->uid, rec->pid,
				msg->data, (uint32_t)msg->len))
			return true;
	return false;
}

static void on_record(struct chk *c, const struct pcb_msg *msg)
{
	const struct pcb_record *rec = msg->rec;
	const struct stress_msg *m;
	struct chk_topic *ct = NULL;
	unsigned int t, slot;
	uint64_t counter, next;
	struct win *w;
	char why[160];
	bool hostile, bad;

	c->res->delivered++;
	for (t = 0; t < shm->cfg.nr_topics; t++) {
		if (c->t[t].id == rec->topic_id) {
			ct = &c->t[t];
			break;
		}
	}
	if (!ct) {
		violation("record of topic id %u, not subscribed", rec->topic_id);
		return;
	}
	hostile = rec_hostile(rec);
	bad = hostile ? hostile_verify(msg, why, sizeof(why)) :
			msg_verify(msg, t, &m, why, sizeof(why));
	if (bad)
		violation("topic %u: %s", t, why);
	order_check(c, t, rec);
	if (pcb_causal_feed_msg(&c->causal, msg) == -EPROTO)
		violation("topic %u seq %llu: causal order: message %llu depends on %llu, %s",
			  t, (unsigned long long)rec->seq,
			  (unsigned long long)c->causal.first.dependent,
			  (unsigned long long)c->causal.first.dependency,
			  c->causal.first.kind == PCB_CAUSAL_LATE_DEP ?
			  "which came later" : "which is not older");
	ct->count++;
	ct->last_seq = rec->seq;
	ct->last_id = rec->msg_id;

	if (ct->filtered && !record_wanted(ct, msg))
		violation("topic %u seq %llu id %llu%s: delivered, but no filter in force takes it (first: %s, %u changes)",
			  t, (unsigned long long)rec->seq,
			  (unsigned long long)rec->msg_id,
			  hostile ? " (hostile)" : "", c->res->filter[t],
			  ct->nr_eras - 1);
	if (hostile)
		count_inc(&shm->n.hostile_records);
	if (hostile || bad)
		return;

	slot = m->slot;
	counter = m->counter;
	if (slot >= shm->cfg.nr_pubs) {
		violation("topic %u seq %llu: from publisher slot %u", t,
			  (unsigned long long)rec->seq, slot);
		return;
	}
	if (ct->seen_slot[slot] && counter <= ct->last_counter[slot])
		violation("topic %u seq %llu: publisher %u's message %llu after its message %llu",
			  t, (unsigned long long)rec->seq, slot,
			  (unsigned long long)counter,
			  (unsigned long long)ct->last_counter[slot]);
	ct->seen_slot[slot] = true;
	ct->last_counter[slot] = counter;

	next = load_acquire(&shm->pubs[slot].next[t]);
	if (counter < ct->cursor[slot]) {
		late_record(c, t, slot, counter, rec);
		return;
	}
	if (counter >= next) {
		violation("topic %u seq %llu: publisher %u's message %llu was never logged (next %llu)",
			  t, (unsigned long long)rec->seq, slot,
			  (unsigned long long)counter,
			  (unsigned long long)next);
		return;
	}
	if (counter >= ct->cursor[slot] + STRESS_LOG_SIZE) {
		violation("topic %u: publisher %u's message %llu beyond the check window (cursor %llu)",
			  t, slot, (unsigned long long)counter,
			  (unsigned long long)ct->cursor[slot]);
		return;
	}
	w = &ct->win[slot][counter % STRESS_LOG_SIZE];
	if (w->msg_id) {
		violation("topic %u: publisher %u's message %llu delivered twice (seq %llu and %llu)",
			  t, slot, (unsigned long long)counter,
			  (unsigned long long)w->seq,
			  (unsigned long long)rec->seq);
		return;
	}
	w->seq = rec->seq;
	w->msg_id = rec->msg_id;
}

/*
 * Decides the log entry of @counter (see the top of the file).  Returns
 * false when its outcome is not final yet.
 */
static bool decide(struct chk *c, unsigned int t, unsigned int slot,
		   uint64_t counter, bool end)
{
	struct chk_topic *ct = &c->t[t];
	const struct log_entry *e =
		&shm->log[slot][t][counter % STRESS_LOG_SIZE];
	struct win *w = &ct->win[slot][counter % STRESS_LOG_SIZE];
	uint64_t tag = load_acquire(&e->tag);
	unsigned int lo = 0, hi = 0;
	uint64_t seq, id;
	bool any, all;

	if (LOG_COUNTER(tag) != counter) {
		violation("topic %u: log entry of publisher %u's message %llu overwritten (by %llu)",
			  t, slot, (unsigned long long)counter,
			  (unsigned long long)LOG_COUNTER(tag));
		return true;
	}
	switch (LOG_STATE(tag)) {
	case LOG_PENDING: {
		const struct pub_slot *ps = &shm->pubs[slot];
		uint32_t done_gen = load_acquire(&ps->done_gen);

		if (LOG_GEN(tag) > done_gen)
			return false;	/* its publisher is still at it */
		if (w->msg_id) {
			c->res->doubt_seen++;
			return true;
		}
		if (!end && (!ct->count ||
			     ct->last_id <= load_acquire(&ps->done_marker)))
			return false;
		c->res->doubt_unseen++;
		return true;
	}
	case LOG_FAILED:
		if (w->msg_id)
			violation("topic %u seq %llu: publisher %u's message %llu was delivered although its publish failed (%s)",
				  t, (unsigned long long)w->seq, slot,
				  (unsigned long long)counter,
				  strerror((int)e->msg_id));
		else
			c->res->failed_unseen++;
		return true;
	case LOG_DONE:
		break;
	default:
		violation("topic %u: log entry %llu of publisher %u in state %u",
			  t, (unsigned long long)counter, slot, LOG_STATE(tag));
		return true;
	}

	seq = e->seq;
	id = e->msg_id;
	any = true;
	all = true;
	if (ct->filtered) {
		judges(ct, id, &lo, &hi);
		any = filter_eval_counter(&ct->era[lo].f, (uint16_t)slot, t,
					  counter);
		all = any;
		if (hi != lo) {
			bool h = filter_eval_counter(&ct->era[hi].f,
						     (uint16_t)slot, t, counter);

			any = any || h;
			all = all && h;
		}
	}
	if (w->msg_id) {
		if (w->msg_id != id || (seq && w->seq != seq))
			violation("topic %u: publisher %u's message %llu was accepted as seq %llu id %llu, delivered as seq %llu id %llu",
				  t, slot, (unsigned long long)counter,
				  (unsigned long long)seq,
				  (unsigned long long)id,
				  (unsigned long long)w->seq,
				  (unsigned long long)w->msg_id);
		if (!any)
			violation("topic %u: publisher %u's message %llu delivered, but no filter in force takes it",
				  t, slot, (unsigned long long)counter);
		c->res->verified++;
		return true;
	}
	/* Not received yet: a later record of the topic says it never will. */
	if (!end && (!ct->count || ct->last_id < id))
		return false;
	if (!any) {
		c->res->filtered_out++;
		return true;
	}
	if (!all) {
		c->res->filter_window++;	/* either filter judged it */
		return true;
	}
	if ((seq && seq > ct->s1) || id > ct->m1 ||
	    (ct->count && id > ct->first_id))
		violation("topic %u: accepted message lost: publisher %u's message %llu, seq %llu%s id %llu (first received seq %llu, s1 %llu)",
			  t, slot, (unsigned long long)counter,
			  (unsigned long long)seq, seq ? "" : " (io_uring: not told)",
			  (unsigned long long)id,
			  (unsigned long long)ct->first_seq,
			  (unsigned long long)ct->s1);
	else
		c->res->before_start++;
	return true;
}

static void advance(struct chk *c, bool end)
{
	unsigned int t, slot;

	for (t = 0; t < shm->cfg.nr_topics; t++) {
		struct chk_topic *ct = &c->t[t];

		for (slot = 0; slot < shm->cfg.nr_pubs; slot++) {
			uint64_t next = load_acquire(&shm->pubs[slot].next[t]);
			uint64_t cur = ct->cursor[slot];

			while (cur < next && decide(c, t, slot, cur, end)) {
				memset(&ct->win[slot][cur % STRESS_LOG_SIZE], 0,
				       sizeof(struct win));
				cur++;
			}
			if (cur != ct->cursor[slot]) {
				ct->cursor[slot] = cur;
				store_release(&shm->cursor[c->index][slot][t], cur);
			}
			if (end && cur != next)
				violation("topic %u: publisher %u's messages %llu.. undecided at the end",
					  t, slot, (unsigned long long)cur);
		}
	}
}

static unsigned int topic_index(const struct chk *c, uint32_t topic_id)
{
	unsigned int t;

	for (t = 0; t + 1 < shm->cfg.nr_topics; t++)
		if (c->t[t].id == topic_id)
			break;
	return t;
}

/*
 * --inject filter: a copy of @msg (record header, dependencies and
 * payload) changed in its filter-visible fields (payload header bytes
 * after the magic, key, uid) until the topic's filters reject it; false
 * when they take every variant tried (a filter on the length alone, say),
 * and the fault waits for another record.
 */
static bool filter_fault(struct chk *c, const struct pcb_msg *msg,
			 struct pcb_msg *bad)
{
	static uint8_t rec[256] __attribute__((aligned(8)));
	static uint8_t copy[STRESS_MSG_MAX] __attribute__((aligned(8)));
	const struct chk_topic *ct = &c->t[topic_index(c, msg->rec->topic_id)];
	struct pcb_record *r = (struct pcb_record *)rec;
	unsigned int i;

	if (msg->rec->hdr_len > sizeof(rec) || msg->len < 32 ||
	    msg->len > sizeof(copy))
		return false;
	memcpy(rec, msg->rec, msg->rec->hdr_len);
	memcpy(copy, msg->data, msg->len);
	*bad = *msg;
	bad->rec = r;
	bad->data = copy;
	for (i = 0; i < 1000 && record_wanted(ct, bad); i++) {
		switch (rnd_below(&c->rnd, 4)) {
		case 0:
			r->key = rnd_next(&c->rnd);
			break;
		case 1:
			r->uid = (uint32_t)rnd_next(&c->rnd);
			break;
		default:
			copy[4 + rnd_below(&c->rnd, 28)] =
				(uint8_t)rnd_next(&c->rnd);
			break;
		}
	}
	return !record_wanted(ct, bad);
}

/*
 * --inject faults a record once the checked subscriber has had this many:
 * in mid-run, when the other checked subscribers have long subscribed (a
 * "hostile" fault is seen by comparing their copies).  The filter fault
 * goes to checked 2, whose topics are filtered: it got only about 200 in
 * a 3-second run on a loaded 2-CPU machine under emulation, so it waits
 * for fewer.
 */
#define INJECT_AFTER		500
#define INJECT_FILTER_AFTER	50

/*
 * --inject: the record to get wrong, after the checked subscriber's
 * first INJECT_AFTER: for most faults, an honest one of checked 0's; for
 * "filter", after INJECT_FILTER_AFTER, a filtered one of checked 2's that
 * can be changed into one its filters reject (*@bad); for "hostile", a
 * hostile one of checked 0's.
 */
static bool inject_now(struct chk *c, const struct pcb_msg *msg,
		       struct pcb_msg *bad)
{
	switch (shm->cfg.inject) {
	case INJECT_LOSE:
	case INJECT_DUP:
	case INJECT_CORRUPT:
		if (c->index != 0 || c->res->delivered < INJECT_AFTER ||
		    rec_hostile(msg->rec))
			return false;
		break;
	case INJECT_FILTER:
		if (c->index != 2 || c->res->delivered < INJECT_FILTER_AFTER ||
		    !c->t[topic_index(c, msg->rec->topic_id)].filtered ||
		    __atomic_load_n(&shm->injected, __ATOMIC_RELAXED) ||
		    !filter_fault(c, msg, bad))
			return false;
		break;
	case INJECT_HOSTILE:
		if (c->index != 0 || c->res->delivered < INJECT_AFTER ||
		    !rec_hostile(msg->rec))
			return false;
		break;
	default:
		return false;
	}
	return !__atomic_exchange_n(&shm->injected, 1, __ATOMIC_RELAXED);
}

/* --inject: what the checker sees of a record goes wrong, once. */
static void inject(struct chk *c, const struct pcb_msg *msg,
		   const struct pcb_msg *filter_bad)
{
	static uint8_t copy[STRESS_MSG_MAX] __attribute__((aligned(8)));
	struct pcb_msg bad = *msg;

	switch (shm->cfg.inject) {
	case INJECT_LOSE:
		c->res->delivered++;
		break;
	case INJECT_DUP:
		on_record(c, msg);
		on_record(c, msg);
		break;
	case INJECT_CORRUPT:
	case INJECT_HOSTILE:
		memcpy(copy, msg->data, msg->len);
		copy[msg->len - 1] ^= 0x10;
		bad.data = copy;
		on_record(c, &bad);
		break;
	case INJECT_FILTER:
		on_record(c, filter_bad);
		break;
	default:
		on_record(c, msg);
		break;
	}
}

/*
 * A new filter for one topic, between two markers; now and then none (an
 * empty filter takes everything).
 */
static void change_filter(struct chk *c)
{
	unsigned int t = (unsigned int)rnd_below(&c->rnd, shm->cfg.nr_topics);
	struct chk_topic *ct = &c->t[t];
	struct filter_era *e;
	int ret;

	if (ct->nr_eras == MAX_ERAS)
		return;
	e = &ct->era[ct->nr_eras];
	pcb_filter_init(&e->f);
	if (rnd_chance(&c->rnd, 80))
		filter_selective(&e->f, &c->rnd, t);
	e->mb = marker(c);
	ret = pcb_set_filter(c->bus, ct->id, e->f.nr_preds ? &e->f : NULL);
	if (ret) {
		violation("topic %u: SET_FILTER: %s", t, strerror(-ret));
		return;
	}
	e->ma = marker(c);
	ct->nr_eras++;
	c->res->filter_changes++;
	count_inc(&shm->n.filter_changes);
}

/* Sleeps until the ring has a record, up to @timeout_ns; false on timeout. */
static bool wait_ring(struct chk *c, uint64_t timeout_ns)
{
	int ret;

	if (c->use_poll) {
		struct pollfd pfd = { .fd = pcb_fd(c->bus), .events = POLLIN };

		ret = pcb_sleep_prepare(c->bus);
		if (ret == 0) {
			ret = poll(&pfd, 1, (int)(timeout_ns / MSEC));
			pcb_sleep_done(c->bus);
			if (ret < 0)
				die("poll: %s", strerror(errno));
			if (pfd.revents & POLLERR)
				violation("POLLERR on a checked ring");
			return ret > 0;
		}
		pcb_sleep_done(c->bus);
		if (ret == 1)
			return true;
	} else {
		ret = pcb_wait(c->bus, timeout_ns, 0);
		if (!ret)
			return true;
		if (ret == -ETIMEDOUT)
			return false;
	}
	violation("waiting on a checked ring: %s", strerror(-ret));
	die("the checked ring is unusable");
}

/* Reads what is there; returns how many records. */
static unsigned int consume(struct chk *c, unsigned int max)
{
	struct pcb_msg msg, bad;
	unsigned int n = 0;
	int ret;

	while (n < max) {
		ret = pcb_peek(c->bus, &msg);
		if (ret < 0) {
			violation("pcb_peek on a checked ring: %s",
				  strerror(-ret));
			die("the checked ring is unusable");
		}
		if (!ret)
			break;
		if (shm->cfg.inject && inject_now(c, &msg, &bad))
			inject(c, &msg, &bad);
		else
			on_record(c, &msg);
		pcb_release(c->bus, &msg);
		n++;
		if (c->slow && rnd_chance(&c->rnd, 2))
			sleep_ns(rnd_below(&c->rnd, 8 * MSEC));
	}
	return n;
}

static bool all_read(struct chk *c)
{
	unsigned int t;

	for (t = 0; t < shm->cfg.nr_topics; t++) {
		const struct chk_topic *ct = &c->t[t];
		uint64_t final = load_acquire(&shm->final_seq[t]);

		if (!ct->filtered && final > ct->s1 && ct->last_seq < final)
			return false;
	}
	return true;
}

/* After the publishers are gone: read up to each topic's last seq. */
static void drain(struct chk *c)
{
	uint64_t deadline = now_ns() + 120 * NSEC;

	for (;;) {
		if (consume(c, 256))
			continue;
		if (!wait_ring(c, 100 * MSEC) && all_read(c))
			break;
		if (now_ns() > deadline) {
			violation("drain: the ring stayed short of the topics' last messages");
			break;
		}
	}
	advance(c, true);
}

static void final_checks(struct chk *c)
{
	unsigned int t;
	uint64_t dropped = pcb_dropped(c->bus);

	if (dropped)
		violation("a reliable ring counts %llu dropped",
			  (unsigned long long)dropped);
	for (t = 0; t < shm->cfg.nr_topics; t++) {
		struct chk_topic *ct = &c->t[t];
		uint64_t final = load_acquire(&shm->final_seq[t]);
		struct pcb_sub_info si;
		int ret;

		c->res->first_seq[t] = ct->first_seq;
		c->res->last_seq[t] = ct->last_seq;
		if (!ct->filtered && final > ct->s1 && ct->last_seq != final)
			violation("topic %u: last record seq %llu, the topic ended at %llu",
				  t, (unsigned long long)ct->last_seq,
				  (unsigned long long)final);
		ret = pcb_sub_info(c->bus, ct->id, &si);
		if (ret) {
			violation("topic %u: SUB_INFO: %s", t, strerror(-ret));
			continue;
		}
		if (si.delivered != ct->count || si.dropped)
			violation("topic %u: SUB_INFO says %llu delivered, %llu dropped; %llu received",
				  t, (unsigned long long)si.delivered,
				  (unsigned long long)si.dropped,
				  (unsigned long long)ct->count);
		if (si.delivered + si.rejected < final - ct->s1 ||
		    si.delivered + si.rejected > final - ct->s0)
			violation("topic %u: SUB_INFO: %llu delivered + %llu rejected, the topic went from %llu..%llu to %llu",
				  t, (unsigned long long)si.delivered,
				  (unsigned long long)si.rejected,
				  (unsigned long long)ct->s0,
				  (unsigned long long)ct->s1,
				  (unsigned long long)final);
	}
}

int checked_main(unsigned int index)
{
	static const size_t ring_sizes[] = { 256 << 10, 16 << 10, 64 << 10,
					     64 << 10 };
	char name[PCB_NAME_MAX];
	struct chk c = {
		.index = index,
		.res = &shm->checked[index],
		/*
		 * 0: fast; 1: slow, small ring, poll(); 2: fixed filters;
		 * 3: filters changing all along.
		 */
		.use_poll = index % 4 == 1,
		.slow = index % 4 == 1,
		.changing = index % 4 == 3,
	};
	uint64_t next_change;
	unsigned int t, n = 0;
	int ret;

	rnd_seed(&c.rnd, ROLE_CHECKED * 1000 + index, 0);
	pcb_causal_init(&c.causal);
	ret = pcb_open(&c.bus);
	if (ret)
		die("pcb_open: %s", strerror(-ret));
	ret = pcb_ring_setup(c.bus, ring_sizes[index % 4]);
	if (ret)
		die("pcb_ring_setup: %s", strerror(-ret));
	clock_topic_name(name, sizeof(name));
	c.clock_handle = pcb_topic_open(c.bus, name, 0);
	if (c.clock_handle < 0)
		die("pcb_topic_open %s: %s", name, strerror(-c.clock_handle));
	for (t = 0; t < shm->cfg.nr_topics; t++) {
		struct chk_topic *ct = &c.t[t];

		ct->filtered = index % 4 >= 2;
		ct->era = calloc(c.changing ? MAX_ERAS : 1, sizeof(*ct->era));
		if (!ct->era)
			die("out of memory");
		ct->nr_eras = 1;
		pcb_filter_init(&ct->era[0].f);
		if (ct->filtered)
			filter_selective(&ct->era[0].f, &c.rnd, t);
		subscribe_topic(&c, t);
	}
	count_inc(&shm->checked_ready);

	next_change = now_ns() + rnd_below(&c.rnd, 200 * MSEC);
	while (!load_acquire(&shm->drain)) {
		if (!consume(&c, 64))
			wait_ring(&c, 20 * MSEC);
		if (++n % 4 == 0 || c.slow)
			advance(&c, false);
		if (c.changing && now_ns() >= next_change &&
		    !load_acquire(&shm->stop)) {
			change_filter(&c);
			next_change = now_ns() + rnd_below(&c.rnd, 200 * MSEC);
		}
	}
	drain(&c);
	final_checks(&c);
	store_release(&c.res->done, true);
	pcb_close(c.bus);
	return 0;
}
