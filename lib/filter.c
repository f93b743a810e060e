// SPDX-License-Identifier: LGPL-2.1-or-later OR MIT
/*
 * Subscription filters: building them, parsing them from text, and handing
 * them to the kernel with SUBSCRIBE and SET_FILTER.
 *
 * The builder checks every predicate with the kernel's rules from
 * <linux/pcb.h>, so that a mistake is reported where it was made rather
 * than as an EINVAL from the subscription.
 */
#include <stdbool.h>

#include "internal.h"

/* The ABI form of a filter, as SUBSCRIBE and SET_FILTER read it. */
union raw_filter {
	struct pcb_filter f;
	unsigned char bytes[sizeof(struct pcb_filter) +
			    PCB_FILTER_MAX_PREDS * sizeof(struct pcb_filter_pred)];
};

/* Keep the first error of a builder call. */
static int fail(struct pcb_filter_spec *f, int err)
{
	if (!f->error)
		f->error = err;
	return err;
}

/* Width in bytes of the field @p reads: 0 when @p names no valid field. */
static unsigned int field_width(const struct pcb_filter_pred *p)
{
	switch (p->field) {
	case PCB_FIELD_KEY:
		return 8;
	case PCB_FIELD_UID:
	case PCB_FIELD_PID:
	case PCB_FIELD_LEN:
		return 4;
	case PCB_FIELD_PAYLOAD:
		return p->width == 1 || p->width == 2 || p->width == 4 ||
		       p->width == 8 ? p->width : 0;
	}
	return 0;
}

/* Does @v fit @width bytes, unsigned or (sign-extended) signed? */
static bool value_fits(uint64_t v, unsigned int width, bool is_signed)
{
	unsigned int bits = width * 8;

	if (bits == 64)
		return true;
	if (!is_signed)
		return v >> bits == 0;
	/* The bits above the sign bit all equal it. */
	v >>= bits - 1;
	return v == 0 || v == UINT64_MAX >> (bits - 1);
}

/* The kernel's rules for one predicate, but for the payload offset. */
static int check_pred(const struct pcb_filter_pred *p)
{
	unsigned int width = field_width(p);

	if (!width || p->op < PCB_OP_EQ || p->op > PCB_OP_ANY ||
	    p->flags & ~PCB_PRED_FLAGS_ALL)
		return -EINVAL;
	if (p->field != PCB_FIELD_PAYLOAD &&
	    (p->width || p->offset || p->flags & PCB_PRED_BE))
		return -EINVAL;
	if (!value_fits(p->mask, width, false) ||
	    !value_fits(p->value, width, p->flags & PCB_PRED_SIGNED))
		return -EINVAL;
	return 0;
}

/* The last predicate, or NULL. */
static struct pcb_filter_pred *last_pred(struct pcb_filter_spec *f)
{
	return f->nr_preds ? &f->preds[f->nr_preds - 1] : NULL;
}

PCB_EXPORT void pcb_filter_init(struct pcb_filter_spec *f)
{
	if (f)
		memset(f, 0, sizeof(*f));
}

PCB_EXPORT int pcb_filter_add(struct pcb_filter_spec *f,
			      const struct pcb_filter_pred *pred)
{
	if (!f)
		return -EINVAL;
	if (f->error)
		return f->error;
	if (!pred || check_pred(pred))
		return fail(f, -EINVAL);
	if (f->nr_preds >= PCB_FILTER_MAX_PREDS)
		return fail(f, -E2BIG);
	f->preds[f->nr_preds++] = *pred;
	return 0;
}

PCB_EXPORT int pcb_filter_field(struct pcb_filter_spec *f, unsigned int field,
				unsigned int op, uint64_t value, uint32_t flags)
{
	struct pcb_filter_pred p = {
		.field = (__u8)field,
		.op = (__u8)op,
		.flags = (__u8)flags,
		.value = value,
	};

	/* Out-of-range numbers must not become valid ones by truncation. */
	if (field == PCB_FIELD_PAYLOAD || field > 0xff || op > 0xff ||
	    flags & ~PCB_PRED_SIGNED)
		p.field = 0;
	return pcb_filter_add(f, &p);
}

PCB_EXPORT int pcb_filter_payload(struct pcb_filter_spec *f, uint32_t offset,
				  unsigned int width, unsigned int op,
				  uint64_t value, uint32_t flags)
{
	struct pcb_filter_pred p = {
		.field = PCB_FIELD_PAYLOAD,
		.op = (__u8)op,
		.width = (__u8)width,
		.flags = (__u8)flags,
		.offset = offset,
		.value = value,
	};

	if (width > 0xff || op > 0xff ||
	    flags & ~(uint32_t)(PCB_PRED_SIGNED | PCB_PRED_BE))
		p.field = 0;
	return pcb_filter_add(f, &p);
}

PCB_EXPORT int pcb_filter_mask(struct pcb_filter_spec *f, uint64_t mask)
{
	struct pcb_filter_pred *p;

	if (!f)
		return -EINVAL;
	if (f->error)
		return f->error;
	p = last_pred(f);
	if (!p || !value_fits(mask, field_width(p), false))
		return fail(f, -EINVAL);
	p->mask = mask;
	return 0;
}

PCB_EXPORT int pcb_filter_or(struct pcb_filter_spec *f)
{
	struct pcb_filter_pred *p;

	if (!f)
		return -EINVAL;
	if (f->error)
		return f->error;
	p = last_pred(f);
	if (!p)
		return fail(f, -EINVAL);
	p->flags |= PCB_PRED_OR;
	return 0;
}

PCB_EXPORT int pcb_filter_check(const struct pcb_filter_spec *f)
{
	if (!f || f->nr_preds > PCB_FILTER_MAX_PREDS)
		return -EINVAL;
	if (f->error)
		return f->error;
	if (f->nr_preds && f->preds[f->nr_preds - 1].flags & PCB_PRED_OR)
		return -EINVAL;
	return 0;
}

/* ------------------------------------------------------------------ */
/* The text syntax                                                    */
/* ------------------------------------------------------------------ */

struct parser {
	const char *p;		/* the next character */
	const char *err;	/* where the error is, once there is one */
};

/* Fail at @at. */
static bool syntax_error(struct parser *ps, const char *at)
{
	ps->err = at;
	return false;
}

static void skip_spaces(struct parser *ps)
{
	while (*ps->p == ' ' || *ps->p == '\t')
		ps->p++;
}

/* Take @tok if it comes next (after spaces). */
static bool accept(struct parser *ps, const char *tok)
{
	size_t n = strlen(tok);

	skip_spaces(ps);
	if (strncmp(ps->p, tok, n))
		return false;
	ps->p += n;
	return true;
}

static int hex_digit(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Digits in @base into @out: false on none, or on overflow. */
static bool parse_digits(struct parser *ps, unsigned int base, uint64_t *out)
{
	const char *start = ps->p;
	uint64_t v = 0;
	int d;

	while ((d = hex_digit(*ps->p)) >= 0 && (unsigned int)d < base) {
		if (v > (UINT64_MAX - (unsigned int)d) / base)
			return false;
		v = v * base + (unsigned int)d;
		ps->p++;
	}
	*out = v;
	return ps->p != start;
}

/*
 * A number that fits @width bytes: decimal or 0x hex, negative only when
 * @is_signed (and then stored sign-extended to 64 bits).
 */
static bool parse_number(struct parser *ps, unsigned int width, bool is_signed,
			 uint64_t *out)
{
	const char *start;
	bool neg = false;
	uint64_t v;

	skip_spaces(ps);
	start = ps->p;
	if (*ps->p == '-') {
		if (!is_signed)
			return syntax_error(ps, start);
		neg = true;
		ps->p++;
	}
	if (ps->p[0] == '0' && (ps->p[1] == 'x' || ps->p[1] == 'X')) {
		ps->p += 2;
		if (!parse_digits(ps, 16, &v))
			return syntax_error(ps, start);
	} else if (!parse_digits(ps, 10, &v)) {
		return syntax_error(ps, start);
	}
	/* A number runs up to a non-alphanumeric character: "12ab" is junk. */
	if (hex_digit(*ps->p) >= 0 || (*ps->p >= 'g' && *ps->p <= 'z') ||
	    (*ps->p >= 'G' && *ps->p <= 'Z') || *ps->p == '_')
		return syntax_error(ps, start);
	if (neg) {
		/* Down to -2^63: the magnitude may be one more than INT64_MAX. */
		if (v > (uint64_t)INT64_MAX + 1)
			return syntax_error(ps, start);
		v = -v;
	} else if (is_signed && v > (uint64_t)INT64_MAX) {
		return syntax_error(ps, start);
	}
	if (!value_fits(v, width, is_signed))
		return syntax_error(ps, start);
	*out = v;
	return true;
}

/* The payload types: "u16" and so on. */
static const struct {
	const char *name;
	unsigned int width;
	uint8_t flags;
} types[] = {
	{ "u8", 1, 0 }, { "u16", 2, 0 }, { "u32", 4, 0 }, { "u64", 8, 0 },
	{ "s8", 1, PCB_PRED_SIGNED }, { "s16", 2, PCB_PRED_SIGNED },
	{ "s32", 4, PCB_PRED_SIGNED }, { "s64", 8, PCB_PRED_SIGNED },
	{ "be16", 2, PCB_PRED_BE }, { "be32", 4, PCB_PRED_BE },
	{ "be64", 8, PCB_PRED_BE },
	{ "sbe16", 2, PCB_PRED_SIGNED | PCB_PRED_BE },
	{ "sbe32", 4, PCB_PRED_SIGNED | PCB_PRED_BE },
	{ "sbe64", 8, PCB_PRED_SIGNED | PCB_PRED_BE },
};

static const struct {
	const char *name;
	uint8_t field;
} fields[] = {
	{ "key", PCB_FIELD_KEY }, { "uid", PCB_FIELD_UID },
	{ "pid", PCB_FIELD_PID }, { "len", PCB_FIELD_LEN },
};

#define ARRAY_SIZE(a)	(sizeof(a) / sizeof((a)[0]))

static bool is_word_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

/* A field: "key", or a payload type and "@OFFSET". */
static bool parse_field(struct parser *ps, struct pcb_filter_pred *pred)
{
	const char *start;
	uint64_t offset;
	size_t n, i;

	skip_spaces(ps);
	start = ps->p;
	for (n = 0; is_word_char(start[n]); n++)
		;
	ps->p += n;
	for (i = 0; i < ARRAY_SIZE(fields); i++) {
		if (strlen(fields[i].name) == n && !strncmp(start, fields[i].name, n)) {
			pred->field = fields[i].field;
			return true;
		}
	}
	for (i = 0; i < ARRAY_SIZE(types); i++)
		if (strlen(types[i].name) == n && !strncmp(start, types[i].name, n))
			break;
	if (i == ARRAY_SIZE(types))
		return syntax_error(ps, start);
	if (!accept(ps, "@"))
		return syntax_error(ps, ps->p);
	if (!parse_number(ps, 4, false, &offset))
		return false;
	pred->field = PCB_FIELD_PAYLOAD;
	pred->width = (__u8)types[i].width;
	pred->flags = types[i].flags;
	pred->offset = (__u32)offset;
	return true;
}

/* The comparisons, two-character ones first. */
static const struct {
	const char *tok;
	uint8_t op;
} cmps[] = {
	{ "==", PCB_OP_EQ }, { "!=", PCB_OP_NE }, { "<=", PCB_OP_LE },
	{ ">=", PCB_OP_GE }, { "<", PCB_OP_LT }, { ">", PCB_OP_GT },
};

/* ":all" or ":any" after "field & BITS". */
static bool parse_bits_op(struct parser *ps, struct pcb_filter_pred *pred)
{
	const char *start;

	skip_spaces(ps);
	start = ps->p;
	if (accept(ps, "all"))
		pred->op = PCB_OP_ALL;
	else if (accept(ps, "any"))
		pred->op = PCB_OP_ANY;
	if (!pred->op || is_word_char(*ps->p))
		return syntax_error(ps, start);
	return true;
}

static bool parse_pred(struct parser *ps, struct pcb_filter_pred *pred)
{
	unsigned int width;
	const char *at;
	uint64_t num;
	size_t i;

	memset(pred, 0, sizeof(*pred));
	if (!parse_field(ps, pred))
		return false;
	width = field_width(pred);
	if (accept(ps, "&")) {
		skip_spaces(ps);
		at = ps->p;
		if (!parse_number(ps, width, false, &num))
			return false;
		if (accept(ps, ":")) {
			pred->value = num;
			return parse_bits_op(ps, pred);
		}
		/* The ABI reads a mask of 0 as no mask: not what "&0" says. */
		if (!num)
			return syntax_error(ps, at);
		pred->mask = num;
	}
	for (i = 0; i < ARRAY_SIZE(cmps); i++) {
		if (accept(ps, cmps[i].tok)) {
			pred->op = cmps[i].op;
			break;
		}
	}
	if (!pred->op)
		return syntax_error(ps, ps->p);
	if (!parse_number(ps, width, pred->flags & PCB_PRED_SIGNED, &num))
		return false;
	pred->value = num;
	return true;
}

/* The whole expression into @f; a negative errno on failure. */
static int parse_filter(struct parser *ps, struct pcb_filter_spec *f)
{
	struct pcb_filter_pred pred;
	int ret;

	for (;;) {
		bool more = true;

		if (!parse_pred(ps, &pred))
			return -EINVAL;
		if (accept(ps, "|"))
			pred.flags |= PCB_PRED_OR;
		else if (!accept(ps, ","))
			more = false;
		if (!more && *ps->p) {
			syntax_error(ps, ps->p);
			return -EINVAL;
		}
		ret = pcb_filter_add(f, &pred);
		if (ret || !more)
			return ret;
	}
}

PCB_EXPORT int pcb_filter_parse(struct pcb_filter_spec *f, const char *expr,
				const char **errp)
{
	struct parser ps = { .p = expr };
	struct pcb_filter_spec tmp;
	int ret;

	if (!f)
		return -EINVAL;
	if (f->error)
		return f->error;
	if (!expr)
		return -EINVAL;
	/* Build on a copy: @f stays as it was if anything is wrong. */
	tmp = *f;
	ret = parse_filter(&ps, &tmp);
	if (ret) {
		if (errp && ret == -EINVAL)
			*errp = ps.err ? ps.err : ps.p;
		return ret;
	}
	*f = tmp;
	return 0;
}

/* ------------------------------------------------------------------ */
/* Subscriptions                                                      */
/* ------------------------------------------------------------------ */

/* @f in ABI form in @raw: 0, or @f's error. */
static int to_raw(const struct pcb_filter_spec *f, union raw_filter *raw)
{
	int ret = pcb_filter_check(f);

	if (ret)
		return ret;
	memset(&raw->f, 0, sizeof(raw->f));
	raw->f.nr_preds = f->nr_preds;
	memcpy(raw->f.preds, f->preds, f->nr_preds * sizeof(f->preds[0]));
	return 0;
}

PCB_EXPORT int pcb_subscribe_filtered(struct pcb *bus, const char *name,
				      uint64_t schema_id, uint32_t flags,
				      const struct pcb_filter_spec *filter,
				      uint32_t *topic_id)
{
	struct pcb_subscribe arg = { 0 };
	union raw_filter raw;
	int ret;

	if (!bus)
		return -EINVAL;
	ret = pcb_copy_name(arg.name, name);
	if (ret)
		return ret;
	if (filter) {
		ret = to_raw(filter, &raw);
		if (ret)
			return ret;
		arg.filter = (uintptr_t)&raw.f;
	}
	arg.schema_id = schema_id;
	arg.flags = flags;
	ret = pcb_ioctl(bus, PCB_IOC_SUBSCRIBE, &arg);
	if (!ret && topic_id)
		*topic_id = arg.topic_id;
	return ret;
}

PCB_EXPORT int pcb_set_filter(struct pcb *bus, uint32_t topic_id,
			      const struct pcb_filter_spec *filter)
{
	struct pcb_sub_filter arg = { .topic_id = topic_id };
	union raw_filter raw;
	int ret;

	if (!bus)
		return -EINVAL;
	if (filter) {
		ret = to_raw(filter, &raw);
		if (ret)
			return ret;
		arg.filter = (uintptr_t)&raw.f;
	}
	return pcb_ioctl(bus, PCB_IOC_SET_FILTER, &arg);
}

PCB_EXPORT int pcb_sub_info(struct pcb *bus, uint32_t topic_id,
			    struct pcb_sub_info *info)
{
	struct pcb_sub_info arg = { .topic_id = topic_id };
	int ret;

	if (!bus || !info)
		return -EINVAL;
	ret = pcb_ioctl(bus, PCB_IOC_SUB_INFO, &arg);
	if (!ret)
		*info = arg;
	return ret;
}
