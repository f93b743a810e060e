// SPDX-License-Identifier: GPL-2.0
/*
 * pcb-stress: subscribers that come and go.
 *
 * Each session opens an endpoint, sets up a ring, subscribes it to some
 * checked topics and churn topics (reliably, or lossily for the "lossy"
 * role), with or without a random filter, reads for a while, sometimes
 * slowly, sometimes not at all for a moment (reliable: publishers must
 * wait or time out; lossy: messages are dropped), changes filters with
 * SET_FILTER and drops subscriptions, and ends by unsubscribing and
 * draining, by closing with subscriptions in place, or by exiting.
 *
 * What is checked of every record: the payload (or for a record of a
 * hostile process, what hostile_verify() checks), the order per topic (seq
 * and id increasing; no gap for a reliable subscription that never had a
 * filter), and the filter: a record with seq s must satisfy a filter that
 * was in force for s, knowing that SET_FILTER's new filter applies to
 * every seq above the topic's count read after it returned, the old one
 * to every seq up to the count read before it was called, and either one
 * in between.  Lossy subscriptions account for their drops: at an orderly
 * end the ring header's dropped count must lie between what the gaps
 * prove was missed and what the topic's counts allow.
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "stress.h"

#define TR_MAX_TOPICS	(STRESS_MAX_TOPICS + 2)
#define TR_MAX_FILTERS	8
#define SEQ_UNKNOWN	(~0ULL)

struct tr_topic {
	char name[PCB_NAME_MAX];
	uint32_t id;
	uint32_t idx;			/* checked index or STRESS_TOPIC_CHURN */
	bool active;			/* subscribed */
	bool unsubscribed;		/* by us, seqs up to u_a may still come */
	bool ever_filtered;
	uint64_t s0, s1, u_b, u_a;
	unsigned int nr_filters;	/* [0] the first one, then changes */
	struct pcb_filter_spec filter[TR_MAX_FILTERS];
	uint64_t chg_b[TR_MAX_FILTERS], chg_a[TR_MAX_FILTERS];
	uint64_t count, first_seq, last_seq, last_id, gaps;
};

struct tr {
	bool lossy;
	uint64_t rnd;
	struct pcb *bus;
	unsigned int nr;
	struct tr_topic t[TR_MAX_TOPICS];
};

/* TOPIC_INFO of @name, if it still is the topic @id: else SEQ_UNKNOWN. */
static uint64_t seq_of(struct tr *s, const char *name, uint32_t id)
{
	struct pcb_topic_info info;

	if (pcb_topic_info(s->bus, name, &info) || (id && info.topic_id != id))
		return SEQ_UNKNOWN;
	return info.published;
}

static void add_topic(struct tr *s, uint32_t idx, const char *name)
{
	struct tr_topic *tt = &s->t[s->nr];
	struct pcb_topic_info info;
	uint32_t flags = s->lossy ? PCB_SUB_LOSSY : 0;
	int ret;

	memset(tt, 0, sizeof(*tt));
	snprintf(tt->name, sizeof(tt->name), "%s", name);
	tt->idx = idx;
	ret = pcb_topic_info(s->bus, name, &info);
	if (ret) {
		if (idx != STRESS_TOPIC_CHURN || ret != -ENOENT)
			violation("TOPIC_INFO %s: %s", name, strerror(-ret));
		return;
	}
	tt->s0 = info.published;
	tt->nr_filters = 1;
	pcb_filter_init(&tt->filter[0]);
	if (rnd_chance(&s->rnd, s->lossy ? 15 : 40)) {
		filter_random(&tt->filter[0], &s->rnd, idx);
		tt->ever_filtered = true;
	}
	ret = pcb_subscribe_filtered(s->bus, name, 0, flags,
				     tt->ever_filtered ? &tt->filter[0] : NULL,
				     &tt->id);
	if (ret) {
		if (idx != STRESS_TOPIC_CHURN ||
		    (ret != -ENOENT && ret != -EPROTOTYPE))
			violation("subscribing to %s: %s", name, strerror(-ret));
		return;
	}
	count_inc(&shm->n.subscribes);
	/* The name may have been deleted and made again meanwhile. */
	if (info.topic_id != tt->id)
		tt->s0 = 0;
	tt->s1 = seq_of(s, name, tt->id);
	tt->active = true;
	s->nr++;
}

static struct tr_topic *find_topic(struct tr *s, uint32_t id)
{
	unsigned int i;

	for (i = 0; i < s->nr; i++)
		if (s->t[i].id == id)
			return &s->t[i];
	return NULL;
}

/* Does a filter that was in force for seq @seq accept the record? */
static bool filter_ok(const struct tr_topic *tt, const struct pcb_msg *msg)
{
	const struct pcb_record *rec = msg->rec;
	bool cand[TR_MAX_FILTERS] = { true };
	unsigned int i;

	for (i = 1; i < tt->nr_filters; i++) {
		if (rec->seq <= tt->chg_b[i])
			break;
		if (rec->seq > tt->chg_a[i])
			memset(cand, 0, sizeof(cand));
		cand[i] = true;
	}
	for (i = 0; i < tt->nr_filters; i++)
		if (cand[i] && filter_eval(&tt->filter[i], rec->key, rec->uid,
					   rec->pid, msg->data,
					   (uint32_t)msg->len))
			return true;
	return false;
}

static void on_record(struct tr *s, const struct pcb_msg *msg)
{
	const struct pcb_record *rec = msg->rec;
	struct tr_topic *tt = find_topic(s, rec->topic_id);
	unsigned long long seq = rec->seq;
	bool contiguous;
	char why[160];

	count_inc(s->lossy ? &shm->n.lossy_records : &shm->n.transient_records);
	if (!tt) {
		violation("record of topic id %u, not subscribed",
			  rec->topic_id);
		return;
	}
	/* A record that fails still counts for the order of the rest. */
	if (rec_hostile(rec) ? hostile_verify(msg, why, sizeof(why)) :
			       msg_verify(msg, tt->idx, NULL, why, sizeof(why)))
		violation("%s: %s", tt->name, why);
	contiguous = !s->lossy && !tt->ever_filtered;
	if (!tt->count) {
		if (seq <= tt->s0)
			violation("%s: first record seq %llu, topic was at %llu before subscribing",
				  tt->name, seq, (unsigned long long)tt->s0);
		if (contiguous && tt->s1 != SEQ_UNKNOWN && seq > tt->s1 + 1)
			violation("%s: first record seq %llu, topic was at %llu after SUBSCRIBE",
				  tt->name, seq, (unsigned long long)tt->s1);
		tt->first_seq = seq;
	} else {
		if (seq <= tt->last_seq)
			violation("%s: seq %llu after %llu", tt->name, seq,
				  (unsigned long long)tt->last_seq);
		else if (contiguous && seq != tt->last_seq + 1)
			violation("%s: seq %llu after %llu on a reliable subscription",
				  tt->name, seq,
				  (unsigned long long)tt->last_seq);
		else
			tt->gaps += seq - tt->last_seq - 1;
		if (rec->msg_id <= tt->last_id)
			violation("%s: msg id %llu after %llu", tt->name,
				  (unsigned long long)rec->msg_id,
				  (unsigned long long)tt->last_id);
	}
	if (tt->unsubscribed && seq > tt->u_a)
		violation("%s: seq %llu delivered after UNSUBSCRIBE (topic was at %llu)",
			  tt->name, seq, (unsigned long long)tt->u_a);
	if (!filter_ok(tt, msg)) {
		char f[96];

		filter_format(&tt->filter[tt->nr_filters - 1], f, sizeof(f));
		violation("%s: seq %llu%s satisfies no filter in force (last: %s)",
			  tt->name, seq, rec_hostile(rec) ? " (hostile)" : "",
			  f);
	}
	tt->count++;
	tt->last_seq = seq;
	tt->last_id = rec->msg_id;
}

/* Reads up to @max records, @slow ones with pauses; returns how many. */
static unsigned int consume(struct tr *s, unsigned int max, bool slow)
{
	struct pcb_msg msg;
	unsigned int n = 0;
	int ret;

	while (n < max && (ret = pcb_peek(s->bus, &msg)) == 1) {
		on_record(s, &msg);
		pcb_release(s->bus, &msg);
		n++;
		if (slow && rnd_chance(&s->rnd, 10))
			sleep_ns(rnd_below(&s->rnd, 5 * MSEC));
	}
	if (n < max && ret < 0)
		violation("pcb_peek: %s", strerror(-ret));
	return n;
}

static struct tr_topic *random_active(struct tr *s)
{
	unsigned int i, k;

	for (i = 0, k = (unsigned int)rnd_below(&s->rnd, s->nr); i < s->nr; i++) {
		struct tr_topic *tt = &s->t[(k + i) % s->nr];

		if (tt->active)
			return tt;
	}
	return NULL;
}

static void change_filter(struct tr *s)
{
	struct tr_topic *tt = random_active(s);
	struct pcb_filter_spec *f;
	unsigned int i;
	uint64_t b;
	int ret;

	if (!tt || tt->nr_filters == TR_MAX_FILTERS)
		return;
	i = tt->nr_filters;
	f = &tt->filter[i];
	pcb_filter_init(f);
	if (rnd_chance(&s->rnd, 70))
		filter_random(f, &s->rnd, tt->idx);
	b = seq_of(s, tt->name, tt->id);
	ret = pcb_set_filter(s->bus, tt->id, f->nr_preds ? f : NULL);
	if (ret == -ENOENT && tt->idx == STRESS_TOPIC_CHURN) {
		tt->active = false;	/* deleted */
		return;
	}
	if (ret) {
		violation("%s: SET_FILTER: %s", tt->name, strerror(-ret));
		return;
	}
	count_inc(&shm->n.filter_changes);
	tt->ever_filtered = true;
	tt->chg_b[i] = b == SEQ_UNKNOWN ? 0 : b;
	tt->chg_a[i] = seq_of(s, tt->name, tt->id);
	tt->nr_filters++;
}

static void unsubscribe(struct tr *s, struct tr_topic *tt)
{
	int ret;

	tt->u_b = seq_of(s, tt->name, tt->id);
	ret = pcb_unsubscribe(s->bus, tt->id);
	tt->active = false;
	if (ret == -ENOENT && tt->idx == STRESS_TOPIC_CHURN)
		return;			/* deleted meanwhile */
	if (ret) {
		violation("%s: UNSUBSCRIBE: %s", tt->name, strerror(-ret));
		return;
	}
	count_inc(&shm->n.unsubscribes);
	tt->unsubscribed = true;
	tt->u_a = seq_of(s, tt->name, tt->id);
}

/*
 * After every subscription ended and the ring drained: the ring's dropped
 * count against the gaps and the topics' counts.  Only for sessions whose
 * every subscription was lossy, unfiltered, to a checked topic, and ended
 * by us.
 */
static void account_drops(struct tr *s)
{
	uint64_t lo = 0, hi = 0, dropped = pcb_dropped(s->bus);
	unsigned int i;

	for (i = 0; i < s->nr; i++) {
		const struct tr_topic *tt = &s->t[i];

		if (tt->ever_filtered || tt->idx == STRESS_TOPIC_CHURN ||
		    !tt->unsubscribed || tt->s1 == SEQ_UNKNOWN ||
		    tt->u_b == SEQ_UNKNOWN || tt->u_a == SEQ_UNKNOWN)
			return;
	}
	for (i = 0; i < s->nr; i++) {
		const struct tr_topic *tt = &s->t[i];

		if (!tt->count) {
			lo += tt->u_b > tt->s1 ? tt->u_b - tt->s1 : 0;
			hi += tt->u_a - tt->s0;
			continue;
		}
		lo += tt->gaps;
		hi += tt->gaps;
		lo += tt->first_seq > tt->s1 + 1 ? tt->first_seq - tt->s1 - 1 : 0;
		hi += tt->first_seq - tt->s0 - 1;
		lo += tt->u_b > tt->last_seq ? tt->u_b - tt->last_seq : 0;
		hi += tt->u_a - tt->last_seq;
	}
	if (dropped < lo || dropped > hi)
		violation("lossy ring dropped %llu, the gaps and counts say %llu..%llu",
			  (unsigned long long)dropped, (unsigned long long)lo,
			  (unsigned long long)hi);
	count_inc(&shm->n.lossy_accounted);
	count_add(&shm->n.lossy_dropped, dropped);
}

/* Unsubscribes everything, reads what is left, checks the drops. */
static void orderly_end(struct tr *s)
{
	unsigned int i, idle = 0;
	uint64_t deadline = now_ns() + 30 * NSEC;
	int ret;

	for (i = 0; i < s->nr; i++)
		if (s->t[i].active)
			unsubscribe(s, &s->t[i]);
	/*
	 * Nothing can come in any more: read until the ring stays empty for
	 * 100 ms (a record may wait behind one the kernel is still writing).
	 */
	while (idle < 5 && now_ns() < deadline) {
		if (consume(s, 256, false)) {
			idle = 0;
			continue;
		}
		ret = pcb_wait(s->bus, 20 * MSEC, 0);
		if (ret == -ETIMEDOUT) {
			idle++;
		} else if (ret) {
			violation("PCB_IOC_WAIT: %s", strerror(-ret));
			return;
		}
	}
	if (idle < 5)
		violation("ring not empty 30 s after every subscription ended");
	if (s->lossy)
		account_drops(s);
}

static void session(struct tr *s)
{
	static const size_t sizes[] = { 4 << 10, 8 << 10, 16 << 10, 32 << 10,
					64 << 10, 128 << 10 };
	char name[PCB_NAME_MAX];
	uint64_t end;
	unsigned int t, k, nchurn;
	bool slow;
	int ret;

	memset(s->t, 0, sizeof(s->t));
	s->nr = 0;
	ret = pcb_open(&s->bus);
	if (ret) {
		violation("pcb_open: %s", strerror(-ret));
		sleep_ns(100 * MSEC);
		return;
	}
	ret = pcb_ring_setup(s->bus, sizes[s->lossy ? rnd_below(&s->rnd, 3) :
					    2 + rnd_below(&s->rnd, 4)]);
	if (ret) {
		if (ret != -ENOMEM)
			violation("pcb_ring_setup: %s", strerror(-ret));
		count_inc(&shm->n.enomem);
		pcb_close(s->bus);
		sleep_ns(50 * MSEC);
		return;
	}
	count_inc(&shm->n.sessions);
	for (t = 0; t < shm->cfg.nr_topics; t++) {
		if (rnd_chance(&s->rnd, 50) || (t + 1 == shm->cfg.nr_topics && !s->nr)) {
			topic_name(name, sizeof(name), t);
			add_topic(s, t, name);
		}
	}
	nchurn = s->lossy ? rnd_chance(&s->rnd, 20) :
			    (unsigned int)rnd_below(&s->rnd, 3);
	k = (unsigned int)rnd_below(&s->rnd, STRESS_CHURN_POOL);
	for (t = 0; t < nchurn; t++) {
		churn_name(name, sizeof(name), (k + t) % STRESS_CHURN_POOL);
		add_topic(s, STRESS_TOPIC_CHURN, name);
	}

	slow = rnd_chance(&s->rnd, 30);
	end = now_ns() + 100 * MSEC + rnd_below(&s->rnd, 2000 * MSEC);
	while (now_ns() < end && !stopping()) {
		unsigned int r = (unsigned int)rnd_below(&s->rnd, 100);

		if (r < (s->lossy ? 3 : 8)) {
			change_filter(s);
		} else if (r < 10) {
			struct tr_topic *tt = random_active(s);

			if (tt)
				unsubscribe(s, tt);
		} else if (r < 15) {
			/* Not reading for a while: publishers feel it. */
			sleep_ns(rnd_below(&s->rnd, 100 * MSEC));
		}
		if (consume(s, 64, slow))
			continue;
		ret = pcb_wait(s->bus, 10 * MSEC, 0);
		if (ret && ret != -ETIMEDOUT) {
			violation("PCB_IOC_WAIT: %s", strerror(-ret));
			break;
		}
	}

	switch (rnd_below(&s->rnd, 10)) {
	case 0:
	case 1:
		_exit(0);		/* leave everything to the kernel */
	case 2:
	case 3:
	case 4:
		break;			/* close with subscriptions in place */
	default:
		orderly_end(s);
		break;
	}
	pcb_close(s->bus);
	s->bus = NULL;
}

int transient_main(unsigned int index, bool lossy)
{
	struct tr s = { .lossy = lossy };

	rnd_seed(&s.rnd, (lossy ? ROLE_LOSSY : ROLE_TRANSIENT) * 1000 + index,
		 my_gen);
	/* Not all at once at the start. */
	sleep_ns(rnd_below(&s.rnd, 200 * MSEC));
	while (!stopping())
		session(&s);
	return 0;
}
