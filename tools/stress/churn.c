// SPDX-License-Identifier: GPL-2.0
/*
 * pcb-stress: topic churn.
 *
 * Creates a churn topic, subscribes its own ring to it, publishes a few
 * messages while publishers and transient subscribers of the other roles
 * find the topic by name and use it, then deletes it while they may still
 * be at it.  After the delete: the handle must fail with EIDRM, the
 * subscription and the name must be gone, and the ring must hold every
 * message the churn process published successfully, once, with the seq
 * and id it was told, in a contiguous run of the topic's seqs, and none it
 * was told had failed.
 *
 * Churn processes use disjoint names of the pool, so a name only ever
 * exists twice over when a killed churn process left its topic behind.
 */
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

#include "stress.h"

#define CHURN_MSGS	20

struct own {
	uint64_t counter;
	uint64_t seq, msg_id;		/* seq 0: the publish failed */
	bool seen;
};

struct churn {
	unsigned int index;
	uint16_t slot;			/* in payloads: after the publishers */
	uint64_t rnd;
	uint64_t counter;
	struct pcb *bus;
	uint8_t buf[STRESS_MSG_MAX] __attribute__((aligned(8)));
};

static int count_ours(const struct pcb_topic_info *info, void *arg)
{
	size_t len = strlen(shm->cfg.prefix);
	unsigned int *n = arg;

	if (!strncmp(info->name, shm->cfg.prefix, len) &&
	    info->name[len] == '/')
		(*n)++;
	else if (shm->cfg.isolated && !strncmp(info->name, "stress-", 7))
		violation("TOPIC_LIST shows %s, of another run's bus",
			  info->name);
	return 0;
}

static void publish_own(struct churn *c, int handle, struct own *own,
			unsigned int n)
{
	unsigned int i;

	for (i = 0; i < n; i++) {
		struct pcb_publish arg = { 0 };
		uint64_t key;

		own[i].counter = c->counter++;
		own[i].seq = 0;
		own[i].seen = false;
		arg.handle = (uint32_t)handle;
		arg.len = msg_build(c->buf, c->slot, (uint16_t)my_gen,
				    STRESS_TOPIC_CHURN, own[i].counter,
				    &key);
		arg.key = key;
		arg.payload = (uintptr_t)c->buf;
		arg.timeout_ns = 20 * MSEC;
		if (!ioctl(pcb_fd(c->bus), PCB_IOC_PUBLISH, &arg)) {
			own[i].seq = arg.seq;
			own[i].msg_id = arg.msg_id;
			count_inc(&shm->n.accepted);
		} else if (errno == ETIMEDOUT) {
			count_inc(&shm->n.failed_timeout);
		} else {
			violation("publishing to my own churn topic: %s",
				  strerror(errno));
		}
	}
}

static bool own_missing(const struct own *own, unsigned int n)
{
	unsigned int i;

	for (i = 0; i < n; i++)
		if (own[i].seq && !own[i].seen)
			return true;
	return false;
}

/*
 * Everything the ring got from topic @id, against what we published.  A
 * record of ours may wait behind one another publisher is still writing
 * (records commit out of order): we wait up to 5 s for the last of ours.
 */
static void check_ring(struct churn *c, const char *name, uint32_t id,
		       uint64_t s1, struct own *own, unsigned int n)
{
	uint64_t count = 0, last_seq = 0, last_id = 0;
	uint64_t deadline = now_ns() + 5 * NSEC;
	struct pcb_msg msg;
	unsigned int i, idle = 0;
	char why[160];
	int ret;

	while (idle < 2 || (own_missing(own, n) && now_ns() < deadline)) {
		ret = pcb_peek(c->bus, &msg);
		if (ret < 0) {
			violation("pcb_peek: %s", strerror(-ret));
			return;
		}
		if (!ret) {
			ret = pcb_wait(c->bus, 20 * MSEC, 0);
			if (ret == -ETIMEDOUT)
				idle++;
			else if (ret)
				violation("PCB_IOC_WAIT: %s", strerror(-ret));
			continue;
		}
		const struct pcb_record *rec = msg.rec;
		const struct stress_msg *m;

		if (rec->topic_id != id) {
			violation("%s: record of topic id %u in a ring subscribed to %u only",
				  name, rec->topic_id, id);
		} else if (msg_verify(&msg, STRESS_TOPIC_CHURN, &m, why,
				      sizeof(why))) {
			violation("%s: %s", name, why);
		} else {
			if (count && rec->seq != last_seq + 1)
				violation("%s: seq %llu after %llu", name,
					  (unsigned long long)rec->seq,
					  (unsigned long long)last_seq);
			if (!count && s1 && rec->seq > s1 + 1)
				violation("%s: first seq %llu, topic at %llu after SUBSCRIBE",
					  name, (unsigned long long)rec->seq,
					  (unsigned long long)s1);
			if (count && rec->msg_id <= last_id)
				violation("%s: msg id %llu after %llu", name,
					  (unsigned long long)rec->msg_id,
					  (unsigned long long)last_id);
			for (i = 0; m->slot == c->slot && i < n; i++) {
				if (own[i].counter != m->counter)
					continue;
				if (!own[i].seq || own[i].seen ||
				    own[i].seq != rec->seq ||
				    own[i].msg_id != rec->msg_id)
					violation("%s: my message %llu delivered as seq %llu id %llu; publish said seq %llu id %llu%s",
						  name,
						  (unsigned long long)m->counter,
						  (unsigned long long)rec->seq,
						  (unsigned long long)rec->msg_id,
						  (unsigned long long)own[i].seq,
						  (unsigned long long)own[i].msg_id,
						  own[i].seen ? " (twice)" : "");
				own[i].seen = true;
			}
			count++;
			last_seq = rec->seq;
			last_id = rec->msg_id;
		}
		pcb_release(c->bus, &msg);
	}
	for (i = 0; i < n; i++)
		if (own[i].seq && !own[i].seen)
			violation("%s: my message %llu (seq %llu) never delivered",
				  name, (unsigned long long)own[i].counter,
				  (unsigned long long)own[i].seq);
	count_inc(&shm->n.churn_checked);
}

/* Deleting made every use of the topic fail the documented way. */
static void check_gone(struct churn *c, const char *name, int handle,
		       uint32_t id)
{
	struct pcb_topic_info info;
	struct pcb_sub_info si;
	int ret;

	ret = pcb_try_publish(c->bus, handle, c->buf, STRESS_MSG_HDR, 0, NULL);
	if (ret != -EIDRM)
		violation("%s: publish after delete: %s, expected EIDRM", name,
			  strerror(-ret));
	ret = pcb_sub_info(c->bus, id, &si);
	if (ret != -ENOENT)
		violation("%s: SUB_INFO after delete: %s, expected ENOENT",
			  name, strerror(-ret));
	ret = pcb_topic_info(c->bus, name, &info);
	if (ret != -ENOENT)
		violation("%s: TOPIC_INFO after delete: %s, expected ENOENT",
			  name, strerror(-ret));
	ret = pcb_topic_close(c->bus, handle);
	if (ret)
		violation("%s: closing the handle of a deleted topic: %s", name,
			  strerror(-ret));
}

static void round_once(struct churn *c)
{
	struct pcb_topic_opts opts = PCB_TOPIC_OPTS_DEFAULT;
	struct own own[CHURN_MSGS];
	char name[PCB_NAME_MAX];
	unsigned int k, n;
	uint32_t id, sub_id;
	uint64_t s1 = 0;
	int handle, ret;

	k = c->index + shm->cfg.nr_churn *
	    (unsigned int)rnd_below(&c->rnd, STRESS_CHURN_POOL / shm->cfg.nr_churn);
	churn_name(name, sizeof(name), k);
	opts.max_msg_size = STRESS_MSG_MAX;
	/* Reliable subscriptions need read and execute permission. */
	opts.mode = 0755;
	/* Now and then a schema the other roles do not name. */
	opts.schema_id = rnd_chance(&c->rnd, 10) ? 7 : 0;
	ret = pcb_topic_create(c->bus, name, &opts, &id);
	if (ret == -EEXIST) {
		/* Left behind by a churn process that was killed. */
		ret = pcb_topic_delete(c->bus, name);
		if (ret)
			violation("%s: deleting a leftover: %s", name,
				  strerror(-ret));
		else
			count_inc(&shm->n.churn_deleted);
		return;
	}
	if (ret) {
		violation("%s: create: %s", name, strerror(-ret));
		sleep_ns(50 * MSEC);
		return;
	}
	count_inc(&shm->n.churn_created);

	ret = pcb_subscribe(c->bus, name, opts.schema_id, 0, &sub_id);
	if (ret || sub_id != id)
		violation("%s: subscribe: %s, id %u of %u", name,
			  strerror(-ret), sub_id, id);
	topic_published(c->bus, name, &s1);
	handle = pcb_topic_open(c->bus, name, opts.schema_id);
	if (handle < 0) {
		violation("%s: open: %s", name, strerror(-handle));
		return;
	}
	n = 1 + (unsigned int)rnd_below(&c->rnd, CHURN_MSGS);
	publish_own(c, handle, own, n);
	sleep_ns(rnd_below(&c->rnd, 200 * MSEC));
	if (rnd_chance(&c->rnd, 10)) {
		unsigned int ours = 0;

		ret = pcb_topic_list(c->bus, count_ours, &ours);
		if (ret < 0 || ours < 1 + shm->cfg.nr_topics)
			violation("TOPIC_LIST: %d, %u of ours", ret, ours);
		count_inc(&shm->n.churn_lists);
	}
	ret = pcb_topic_delete(c->bus, name);
	if (ret) {
		violation("%s: delete: %s", name, strerror(-ret));
		return;
	}
	count_inc(&shm->n.churn_deleted);
	check_gone(c, name, handle, id);
	check_ring(c, name, id, s1, own, n);
}

int churn_main(unsigned int index)
{
	struct churn *c = calloc(1, sizeof(*c));
	int ret;

	if (!c)
		die("out of memory");
	c->index = index;
	c->slot = (uint16_t)(shm->cfg.nr_pubs + index);
	c->counter = (uint64_t)my_gen << 32;
	rnd_seed(&c->rnd, ROLE_CHURN * 1000 + index, my_gen);
	ret = pcb_open(&c->bus);
	if (ret)
		die("pcb_open: %s", strerror(-ret));
	ret = pcb_ring_setup(c->bus, 64 << 10);
	if (ret)
		die("pcb_ring_setup: %s", strerror(-ret));
	while (!stopping())
		round_once(c);
	pcb_close(c->bus);
	free(c);
	return 0;
}
