// SPDX-License-Identifier: GPL-2.0
/*
 * pcb-stress: building and verifying message payloads.
 *
 * A message is named by (slot, topic, counter); its length, klass, key,
 * hash and filler bytes follow from that name and the run's seed, so a
 * record can be checked byte for byte without any other knowledge, and a
 * checker can ask a filter about a message it never received.
 */
#include <string.h>
#include <unistd.h>

#include "stress.h"

void msg_spec(uint16_t slot, uint32_t topic, uint64_t counter,
	      struct msg_spec *spec)
{
	uint64_t h = mix64(shm->cfg.seed ^ ((uint64_t)slot << 48) ^
			   ((uint64_t)topic << 32) ^ mix64(counter + 1));
	uint32_t room = STRESS_MSG_MAX - STRESS_MSG_HDR;

	/* Mostly small messages, one in eight up to the topic's maximum. */
	if ((h & 7) == 0)
		spec->len = STRESS_MSG_HDR + (uint32_t)((h >> 8) % (room + 1));
	else
		spec->len = STRESS_MSG_HDR + (uint32_t)((h >> 8) % 161);
	spec->klass = (uint32_t)(h >> 32);
	spec->key = mix64(h ^ 0x6b6579ULL);
	spec->hash = mix64(h + 0x68617368ULL);
}

static void fill(uint8_t *p, uint32_t n, uint64_t hash)
{
	uint64_t st = hash;

	while (n >= 8) {
		uint64_t v = rnd_next(&st);

		memcpy(p, &v, 8);
		p += 8;
		n -= 8;
	}
	if (n) {
		uint64_t v = rnd_next(&st);

		memcpy(p, &v, n);
	}
}

/* Returns the payload length; @buf holds STRESS_MSG_MAX bytes. */
uint32_t msg_build(void *buf, uint16_t slot, uint16_t gen, uint32_t topic,
		   uint64_t counter, uint64_t *key)
{
	struct stress_msg *m = buf;
	struct msg_spec spec;

	msg_spec(slot, topic, counter, &spec);
	m->magic = STRESS_MAGIC;
	m->slot = slot;
	m->gen = gen;
	m->topic = topic;
	m->len = spec.len;
	m->counter = counter;
	m->klass = spec.klass;
	m->pid = (uint32_t)getpid();
	m->hash = spec.hash;
	fill((uint8_t *)buf + STRESS_MSG_HDR, spec.len - STRESS_MSG_HDR,
	     spec.hash);
	*key = spec.key;
	return spec.len;
}

static bool filler_ok(const uint8_t *p, uint32_t n, uint64_t hash)
{
	uint64_t st = hash;

	while (n) {
		uint64_t v = rnd_next(&st);
		uint32_t k = n < 8 ? n : 8;

		if (memcmp(p, &v, k))
			return false;
		p += k;
		n -= k;
	}
	return true;
}

#define FAIL(...) do { snprintf(why, why_len, __VA_ARGS__); return -1; } while (0)

/*
 * Checks one received message: its record header against the payload and
 * the payload against its name.  @want_topic is the checked topic index
 * the record's topic id stands for, STRESS_TOPIC_CHURN for a churn topic,
 * or ~0U for either.  Returns 0, or -1 with @why filled in.
 */
int msg_verify(const struct pcb_msg *msg, uint32_t want_topic,
	       const struct stress_msg **out, char *why, size_t why_len)
{
	const struct pcb_record *rec = msg->rec;
	const struct stress_msg *m = msg->data;
	struct msg_spec spec;
	unsigned int i;

	if (msg->len < STRESS_MSG_HDR)
		FAIL("payload of %zu bytes, seq %llu", msg->len,
		     (unsigned long long)rec->seq);
	if (m->magic != STRESS_MAGIC)
		FAIL("bad magic %#x, seq %llu", m->magic,
		     (unsigned long long)rec->seq);
	if (m->len != msg->len || rec->payload_len != msg->len)
		FAIL("payload says %u bytes, record %u, seq %llu", m->len,
		     rec->payload_len, (unsigned long long)rec->seq);
	if (want_topic != ~0U && m->topic != want_topic)
		FAIL("payload of topic %u in topic %u's record (seq %llu)",
		     m->topic, want_topic, (unsigned long long)rec->seq);
	msg_spec(m->slot, m->topic, m->counter, &spec);
	if (spec.len != m->len || spec.klass != m->klass ||
	    spec.hash != m->hash)
		FAIL("corrupt header: slot %u topic %u counter %llu seq %llu",
		     m->slot, m->topic, (unsigned long long)m->counter,
		     (unsigned long long)rec->seq);
	if (rec->key != spec.key)
		FAIL("key %#llx, expected %#llx (slot %u counter %llu)",
		     (unsigned long long)rec->key,
		     (unsigned long long)spec.key, m->slot,
		     (unsigned long long)m->counter);
	if (!filler_ok((const uint8_t *)m + STRESS_MSG_HDR,
		       m->len - STRESS_MSG_HDR, spec.hash))
		FAIL("corrupt payload bytes: slot %u topic %u counter %llu",
		     m->slot, m->topic, (unsigned long long)m->counter);
	if (rec->nr_deps > PCB_MAX_DEPS ||
	    rec->hdr_len != sizeof(*rec) + 8U * rec->nr_deps)
		FAIL("record with %u dependencies, hdr_len %u", rec->nr_deps,
		     rec->hdr_len);
	for (i = 0; i < rec->nr_deps; i++) {
		const uint64_t *deps = (const uint64_t *)(rec + 1);

		if (!deps[i] || deps[i] >= rec->msg_id)
			FAIL("seq %llu id %llu depends on id %llu",
			     (unsigned long long)rec->seq,
			     (unsigned long long)rec->msg_id,
			     (unsigned long long)deps[i]);
	}
	if (shm->cfg.check_pid && rec->pid != m->pid)
		FAIL("record pid %u, publisher %u", rec->pid, m->pid);
	if (rec->uid != shm->cfg.uid)
		FAIL("record uid %u, publisher %u", rec->uid, shm->cfg.uid);
	if (out)
		*out = m;
	return 0;
}

/* Records of hostile processes: told by their pid (see stress.h). */
bool rec_hostile(const struct pcb_record *rec)
{
	uint32_t pid = rec->pid;

	if (pid >= STRESS_PID_MAX)
		return false;
	return load_acquire(&shm->hostile_pids[pid / 64]) & (1ULL << (pid % 64));
}

/* FNV-1a over what every subscriber of a message must get alike. */
static uint32_t msg_digest(const struct pcb_msg *msg)
{
	const struct pcb_record *rec = msg->rec;
	const uint8_t *p = msg->data;
	uint64_t h = 0xcbf29ce484222325ULL;
	size_t i;

	h = mix64(h ^ rec->key ^ ((uint64_t)rec->topic_id << 32) ^ rec->seq);
	for (i = 0; i < msg->len; i++)
		h = (h ^ p[i]) * 0x100000001b3ULL;
	return (uint32_t)(h ^ (h >> 32) ^ msg->len);
}

/*
 * Every subscriber of a message receives the same bytes: the first to see
 * a hostile message notes a digest of it under its id, later ones compare.
 * A slot holds the low half of the id and the digest; a slot reused by
 * another message just stops the comparison.
 */
static int digest_check(const struct pcb_msg *msg)
{
	uint64_t id = msg->rec->msg_id;
	uint64_t *slot = &shm->digest[mix64(id) % STRESS_DIGESTS];
	uint64_t want = ((id & 0xffffffffULL) << 32) | msg_digest(msg);
	uint64_t seen = load_acquire(slot);

	if (seen >> 32 != want >> 32) {
		store_release(slot, want);
		return 0;
	}
	return seen == want ? 0 : -1;
}

/*
 * A record of a hostile publisher: its bytes are whatever the publisher
 * had when the kernel copied them, but the record must still say who sent
 * it, must never be an entry of a batch that failed, and must read the
 * same in every ring.
 */
int hostile_verify(const struct pcb_msg *msg, char *why, size_t why_len)
{
	const struct pcb_record *rec = msg->rec;
	uint32_t magic = 0;

	if (msg->len >= sizeof(magic))
		memcpy(&magic, msg->data, sizeof(magic));
	if (magic == DEAD_MAGIC)
		FAIL("seq %llu id %llu: an entry of an atomic batch the uapi refuses was delivered",
		     (unsigned long long)rec->seq,
		     (unsigned long long)rec->msg_id);
	if (rec->uid != shm->cfg.hostile_uid)
		FAIL("seq %llu: record of hostile pid %u says uid %u, the process has %u",
		     (unsigned long long)rec->seq, rec->pid, rec->uid,
		     shm->cfg.hostile_uid);
	if (digest_check(msg))
		FAIL("seq %llu id %llu (hostile pid %u, %zu bytes): another subscriber got other bytes",
		     (unsigned long long)rec->seq,
		     (unsigned long long)rec->msg_id, rec->pid, msg->len);
	return 0;
}

/*
 * A hostile payload of @len bytes: the header of some honest-looking
 * message of @topic (so that filters judge it like one), marked as
 * hostile, then noise.
 */
void hostile_payload(uint8_t *buf, uint32_t len, uint64_t *rnd,
		     uint32_t topic)
{
	uint8_t tmp[STRESS_MSG_MAX] __attribute__((aligned(8)));
	uint32_t magic = HOSTILE_MAGIC, i;
	uint64_t key;

	msg_build(tmp, (uint16_t)rnd_below(rnd, shm->cfg.nr_pubs), 0, topic,
		  rnd_below(rnd, 200000), &key);
	for (i = 0; i < len; i++)
		buf[i] = i < STRESS_MSG_HDR ? tmp[i] : (uint8_t)rnd_next(rnd);
	if (len >= sizeof(magic))
		memcpy(buf, &magic, sizeof(magic));
}
