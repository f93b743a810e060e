// SPDX-License-Identifier: GPL-2.0
/*
 * pcb-stress: random subscription filters and an oracle for them.
 *
 * The oracle is a second implementation of the filter semantics of
 * <linux/pcb.h> ("Filters"), written from that text alone: every record a
 * filtered subscription receives must satisfy it, and a checked filtered
 * subscription must receive every accepted message that satisfies it.
 *
 * Filters only look at fields that follow from a message's name (key,
 * length, and payload bytes other than gen and pid) and at the record's
 * uid, the same for every honest publisher, so that the checker can
 * evaluate them for messages it never received.  A uid predicate tells
 * honest records from hostile ones when the run is root's.
 */
#include <string.h>

#include "stress.h"

/* Payload fields a filter may test: (offset, width). */
static const struct {
	uint32_t offset;
	uint8_t width;
} payload_fields[] = {
	{ 4, 2 },	/* slot */
	{ 8, 4 },	/* topic */
	{ 16, 8 },	/* counter */
	{ 16, 2 },
	{ 24, 1 },	/* klass */
	{ 24, 2 },
	{ 24, 4 },
	{ 25, 1 },
	{ 26, 2 },
	{ 27, 1 },
};

#define NR_PAYLOAD_FIELDS ARRAY_SIZE(payload_fields)

static uint64_t width_mask(unsigned int width)
{
	return width >= 8 ? ~0ULL : (1ULL << (8 * width)) - 1;
}

static int64_t sign_extend(uint64_t v, unsigned int width)
{
	unsigned int shift = 64 - 8 * width;

	return (int64_t)(v << shift) >> shift;
}

static uint64_t read_bytes(const uint8_t *p, unsigned int width, bool be)
{
	uint64_t v = 0;
	unsigned int i;

	for (i = 0; i < width; i++) {
		unsigned int b = be ? i : width - 1 - i;

		v = (v << 8) | p[b];
	}
	return v;
}

static bool pred_eval(const struct pcb_filter_pred *p, uint64_t key,
		      uint32_t uid, uint32_t pid, const uint8_t *payload,
		      uint32_t len)
{
	unsigned int width;
	uint64_t field, wmask, v, value;
	int64_t a, b;

	switch (p->field) {
	case PCB_FIELD_KEY:
		width = 8;
		field = key;
		break;
	case PCB_FIELD_UID:
		width = 4;
		field = uid;
		break;
	case PCB_FIELD_PID:
		width = 4;
		field = pid;
		break;
	case PCB_FIELD_LEN:
		width = 4;
		field = len;
		break;
	case PCB_FIELD_PAYLOAD:
		width = p->width;
		if ((uint64_t)p->offset + width > len)
			return false;
		field = read_bytes(payload + p->offset, width,
				   p->flags & PCB_PRED_BE);
		break;
	default:
		return false;
	}
	wmask = width_mask(width);
	v = field & (p->mask ? p->mask : wmask) & wmask;
	value = p->value & wmask;

	switch (p->op) {
	case PCB_OP_EQ:
		return v == value;
	case PCB_OP_NE:
		return v != value;
	case PCB_OP_ALL:
		return (v & value) == value;
	case PCB_OP_ANY:
		return (v & value) != 0;
	}
	if (p->flags & PCB_PRED_SIGNED) {
		a = sign_extend(v, width);
		b = sign_extend(value, width);
		switch (p->op) {
		case PCB_OP_LT: return a < b;
		case PCB_OP_LE: return a <= b;
		case PCB_OP_GT: return a > b;
		case PCB_OP_GE: return a >= b;
		}
		return false;
	}
	switch (p->op) {
	case PCB_OP_LT: return v < value;
	case PCB_OP_LE: return v <= value;
	case PCB_OP_GT: return v > value;
	case PCB_OP_GE: return v >= value;
	}
	return false;
}

/* Runs joined by PCB_PRED_OR hold when one of them does; all runs must. */
bool filter_eval(const struct pcb_filter_spec *f, uint64_t key,
		 uint32_t uid, uint32_t pid, const void *payload,
		 uint32_t len)
{
	bool run = false;
	unsigned int i;

	for (i = 0; i < f->nr_preds; i++) {
		const struct pcb_filter_pred *p = &f->preds[i];

		run = run || pred_eval(p, key, uid, pid, payload, len);
		if (p->flags & PCB_PRED_OR)
			continue;
		if (!run)
			return false;
		run = false;
	}
	return true;
}

/* The filter's verdict on message (slot, topic, counter). */
bool filter_eval_counter(const struct pcb_filter_spec *f, uint16_t slot,
			 uint32_t topic, uint64_t counter)
{
	struct stress_msg m = { 0 };
	struct msg_spec spec;

	if (!f || !f->nr_preds)
		return true;
	/* Filters look at the header only (offsets below 32). */
	msg_spec(slot, topic, counter, &spec);
	m.magic = STRESS_MAGIC;
	m.slot = slot;
	m.topic = topic;
	m.len = spec.len;
	m.counter = counter;
	m.klass = spec.klass;
	m.hash = spec.hash;
	return filter_eval(f, spec.key, shm->cfg.uid, 0, &m, spec.len);
}

/* A value for a comparison: often the field of a sample message. */
static uint64_t pick_value(uint64_t *rnd, const struct pcb_filter_pred *p,
			   uint32_t topic)
{
	uint16_t slot = (uint16_t)rnd_below(rnd, shm->cfg.nr_pubs);
	uint64_t counter = rnd_below(rnd, 200000);
	struct stress_msg m = { 0 };
	struct msg_spec spec;
	unsigned int width = p->field == PCB_FIELD_KEY ? 8 :
			     p->field == PCB_FIELD_PAYLOAD ? p->width : 4;
	uint64_t v;

	msg_spec(slot, topic, counter, &spec);
	m.slot = slot;
	m.topic = topic;
	m.counter = counter;
	m.klass = spec.klass;
	switch (p->field) {
	case PCB_FIELD_KEY:
		v = spec.key;
		break;
	case PCB_FIELD_LEN:
		v = spec.len;
		break;
	default:
		v = read_bytes((const uint8_t *)&m + p->offset, width,
			       p->flags & PCB_PRED_BE);
		break;
	}
	if (p->op == PCB_OP_ALL || p->op == PCB_OP_ANY)
		v = (1ULL << rnd_below(rnd, 8 * width)) |
		    (rnd_chance(rnd, 50) ? 1ULL << rnd_below(rnd, 8 * width) : 0);
	else if (p->mask)
		v &= p->mask;
	v &= width_mask(width);
	if (p->flags & PCB_PRED_SIGNED)
		v = (uint64_t)sign_extend(v, width);
	return v;
}

static void random_pred(struct pcb_filter_pred *p, uint64_t *rnd,
			uint32_t topic)
{
	unsigned int width;

	memset(p, 0, sizeof(*p));
	switch (rnd_below(rnd, 7)) {
	case 0:
		p->field = PCB_FIELD_KEY;
		width = 8;
		break;
	case 6:
		/* The kernel's uid: an honest publisher's or a hostile one's. */
		p->field = PCB_FIELD_UID;
		p->op = rnd_chance(rnd, 50) ? PCB_OP_EQ : PCB_OP_NE;
		p->value = rnd_chance(rnd, 50) ? shm->cfg.uid :
						 shm->cfg.hostile_uid;
		return;
	case 1:
		p->field = PCB_FIELD_LEN;
		width = 4;
		break;
	default: {
		unsigned int i = (unsigned int)rnd_below(rnd, NR_PAYLOAD_FIELDS);

		p->field = PCB_FIELD_PAYLOAD;
		p->offset = payload_fields[i].offset;
		p->width = payload_fields[i].width;
		width = p->width;
		if (width > 1 && rnd_chance(rnd, 30))
			p->flags |= PCB_PRED_BE;
		break;
	}
	}
	p->op = (uint8_t)(PCB_OP_EQ + rnd_below(rnd, 8));
	if (p->op >= PCB_OP_LT && p->op <= PCB_OP_GE && rnd_chance(rnd, 25))
		p->flags |= PCB_PRED_SIGNED;
	if (rnd_chance(rnd, 25))
		p->mask = rnd_next(rnd) & width_mask(width);
	p->value = pick_value(rnd, p, topic);
}

/* 1 to 4 predicates, some of them alternatives of the next one. */
void filter_random(struct pcb_filter_spec *f, uint64_t *rnd, uint32_t topic)
{
	unsigned int n = 1 + (unsigned int)rnd_below(rnd, 4), i;

	pcb_filter_init(f);
	for (i = 0; i < n; i++) {
		struct pcb_filter_pred p;

		random_pred(&p, rnd, topic);
		if (i + 1 < n && rnd_chance(rnd, 35))
			p.flags |= PCB_PRED_OR;
		if (pcb_filter_add(f, &p))
			die("filter_random: predicate refused by libpcb");
	}
}

/*
 * A random filter that lets through between 15 and 85 % of the messages
 * of a topic, for the checked subscribers: one that takes everything or
 * nothing would prove little.
 */
void filter_selective(struct pcb_filter_spec *f, uint64_t *rnd, uint32_t topic)
{
	unsigned int tries, i, yes;

	for (tries = 0; tries < 1000; tries++) {
		filter_random(f, rnd, topic);
		for (i = yes = 0; i < 400; i++)
			yes += filter_eval_counter(f,
				(uint16_t)rnd_below(rnd, shm->cfg.nr_pubs),
				topic, rnd_below(rnd, 200000));
		if (yes >= 60 && yes <= 340)
			return;
	}
	die("no selective filter found");
}

/* The filter in the syntax of pcb_filter_parse(), for messages. */
void filter_format(const struct pcb_filter_spec *f, char *buf, size_t size)
{
	static const char *const ops[] = {
		[PCB_OP_EQ] = "==", [PCB_OP_NE] = "!=", [PCB_OP_LT] = "<",
		[PCB_OP_LE] = "<=", [PCB_OP_GT] = ">", [PCB_OP_GE] = ">=",
		[PCB_OP_ALL] = ":all", [PCB_OP_ANY] = ":any",
	};
	size_t used = 0;
	unsigned int i;

	buf[0] = 0;
	if (!f || !f->nr_preds) {
		snprintf(buf, size, "none");
		return;
	}
	for (i = 0; i < f->nr_preds && used < size; i++) {
		const struct pcb_filter_pred *p = &f->preds[i];
		char field[24], mask[24] = "";
		bool bits = p->op == PCB_OP_ALL || p->op == PCB_OP_ANY;
		int n;

		if (p->field == PCB_FIELD_KEY)
			snprintf(field, sizeof(field), "key");
		else if (p->field == PCB_FIELD_LEN)
			snprintf(field, sizeof(field), "len");
		else if (p->field == PCB_FIELD_UID)
			snprintf(field, sizeof(field), "uid");
		else
			snprintf(field, sizeof(field), "%s%s%u@%u",
				 p->flags & PCB_PRED_SIGNED ? "s" :
				 p->flags & PCB_PRED_BE ? "" : "u",
				 p->flags & PCB_PRED_BE ? "be" : "",
				 8 * p->width, p->offset);
		if (p->mask && !bits)
			snprintf(mask, sizeof(mask), "&%#llx",
				 (unsigned long long)p->mask);
		if (bits)
			n = snprintf(buf + used, size - used, "%s%s&%#llx%s%s",
				     field, mask, (unsigned long long)p->value,
				     ops[p->op], i + 1 < f->nr_preds ?
				     (p->flags & PCB_PRED_OR ? "|" : ",") : "");
		else
			n = snprintf(buf + used, size - used, "%s%s%s%lld%s",
				     field, mask, ops[p->op],
				     (long long)p->value, i + 1 < f->nr_preds ?
				     (p->flags & PCB_PRED_OR ? "|" : ",") : "");
		if (n < 0)
			break;
		used += (size_t)n;
	}
}
