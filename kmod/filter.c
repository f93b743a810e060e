// SPDX-License-Identifier: GPL-2.0
/*
 * Subscription filters: checked from userspace once, when set, so that
 * matching a message is a short loop with no error left to find.
 *
 * A filter judges the kernel's copy of a message, never the publisher's
 * memory: what it accepts is exactly what is delivered.  Single publishes
 * match under the topic's lock, atomic batches before taking it, holding
 * a reference to the program; programs are freed a grace period after
 * their last reference goes, as batches look them up under RCU.
 */
#include <linux/bitops.h>
#include <linux/rcupdate.h>
#include <linux/refcount.h>
#include <linux/slab.h>
#include <linux/string.h>
#include <linux/uaccess.h>

#include "internal.h"

struct pcb_pred {
	u8 field;
	u8 op;
	u8 width;		/* bytes, for every field */
	u8 flags;
	u32 offset;
	u64 mask;		/* 0 already turned into the width's ones */
	u64 value;
};

struct pcb_filter_prog {
	refcount_t ref;			/* the subscription's, batches' */
	struct rcu_head rcu;
	unsigned int nr_preds;
	struct pcb_pred preds[];
};

static u64 width_ones(unsigned int width)
{
	return width == 8 ? U64_MAX : BIT_ULL(width * 8) - 1;
}

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
		return p->width;
	}
	return 0;
}

static bool value_fits(u64 value, unsigned int width, bool is_signed)
{
	if (width == 8)
		return true;
	if (is_signed)
		return (s64)value == sign_extend64(value, width * 8 - 1);
	return value <= width_ones(width);
}

static int check_pred(const struct pcb_filter_pred *p, bool last)
{
	bool payload = p->field == PCB_FIELD_PAYLOAD;
	unsigned int width = field_width(p);

	if (!width || p->op < PCB_OP_EQ || p->op > PCB_OP_ANY ||
	    p->flags & ~PCB_PRED_FLAGS_ALL)
		return -EINVAL;
	if (payload ? !is_power_of_2(width) || width > 8 :
		      p->width || p->offset || p->flags & PCB_PRED_BE)
		return -EINVAL;
	if (last && p->flags & PCB_PRED_OR)
		return -EINVAL;
	if (!value_fits(p->mask, width, false) ||
	    !value_fits(p->value, width, p->flags & PCB_PRED_SIGNED))
		return -EINVAL;
	return 0;
}

static void compile_pred(struct pcb_pred *dst, const struct pcb_filter_pred *p)
{
	dst->field = p->field;
	dst->op = p->op;
	dst->width = field_width(p);
	dst->flags = p->flags;
	dst->offset = p->offset;
	dst->mask = p->mask ?: width_ones(dst->width);
	dst->value = p->value;
}

/*
 * The filter at user address @uaddr: NULL for no filter (@uaddr 0, or no
 * predicate: that accepts everything), else a filter or an ERR_PTR.  The
 * caller then checks it against the topic with pcb_filter_fits(); this
 * part may fault, and so is done before taking any lock.
 */
struct pcb_filter_prog *pcb_filter_from_user(u64 uaddr)
{
	struct pcb_filter __user *uf = u64_to_user_ptr(uaddr);
	struct pcb_filter_prog *f = NULL;
	struct pcb_filter_pred *preds;
	struct pcb_filter hdr;
	unsigned int i;
	int ret;

	if (!uaddr)
		return NULL;
	if (copy_from_user(&hdr, uf, sizeof(hdr)))
		return ERR_PTR(-EFAULT);
	if (hdr.flags || hdr.reserved || hdr.nr_preds > PCB_FILTER_MAX_PREDS)
		return ERR_PTR(-EINVAL);
	if (!hdr.nr_preds)
		return NULL;

	preds = pcb_should_fail() ? ERR_PTR(-ENOMEM) :
		memdup_user(uf->preds, hdr.nr_preds * sizeof(*preds));
	if (IS_ERR(preds))
		return ERR_CAST(preds);

	for (i = 0; i < hdr.nr_preds; i++) {
		ret = check_pred(&preds[i], i + 1 == hdr.nr_preds);
		if (ret)
			goto out;
	}
	ret = -ENOMEM;
	if (!pcb_should_fail())
		f = kmalloc(struct_size(f, preds, hdr.nr_preds),
			    GFP_KERNEL_ACCOUNT);
	if (!f)
		goto out;
	atomic_long_inc(&pcb_usage[PCB_USAGE_FILTERS]);
	refcount_set(&f->ref, 1);
	f->nr_preds = hdr.nr_preds;
	for (i = 0; i < hdr.nr_preds; i++)
		compile_pred(&f->preds[i], &preds[i]);
	ret = 0;
out:
	kfree(preds);
	return ret ? ERR_PTR(ret) : f;
}

/* Whether @f reads only bytes a topic's message can have. */
bool pcb_filter_fits(const struct pcb_filter_prog *f, u32 max_msg_size)
{
	unsigned int i;

	for (i = 0; f && i < f->nr_preds; i++)
		if (f->preds[i].field == PCB_FIELD_PAYLOAD &&
		    (u64)f->preds[i].offset + f->preds[i].width > max_msg_size)
			return false;
	return true;
}

/* Another reference, from an RCU reader; false when it is going. */
bool pcb_filter_get(struct pcb_filter_prog *f)
{
	return refcount_inc_not_zero(&f->ref);
}

void pcb_filter_put(struct pcb_filter_prog *f)
{
	if (!f || !refcount_dec_and_test(&f->ref))
		return;
	atomic_long_dec(&pcb_usage[PCB_USAGE_FILTERS]);
	kfree_rcu(f, rcu);
}

unsigned int pcb_filter_nr_preds(const struct pcb_filter_prog *f)
{
	return f ? f->nr_preds : 0;
}

/* Payload bytes, copied into an aligned buffer. */
union pcb_bytes {
	u8 b[8];
	u16 u16;
	u32 u32;
	u64 u64;
	__be16 be16;
	__be32 be32;
	__be64 be64;
};

static u64 decode(const union pcb_bytes *x, unsigned int width, bool big_endian)
{
	switch (width) {
	case 1:
		return x->b[0];
	case 2:
		return big_endian ? be16_to_cpu(x->be16) : x->u16;
	case 4:
		return big_endian ? be32_to_cpu(x->be32) : x->u32;
	default:
		return big_endian ? be64_to_cpu(x->be64) : x->u64;
	}
}

/* The predicate's field of @msg, as @id's ring sees it; false if absent. */
static bool pred_field(const struct pcb_pred *p, const struct pcb_msg *msg,
		       const struct pcb_ident *id, u64 *x)
{
	union pcb_bytes buf;

	switch (p->field) {
	case PCB_FIELD_KEY:
		*x = msg->key;
		return true;
	case PCB_FIELD_UID:
		*x = id->uid;
		return true;
	case PCB_FIELD_PID:
		*x = id->pid;
		return true;
	case PCB_FIELD_LEN:
		*x = msg->len;
		return true;
	}
	if ((u64)p->offset + p->width > msg->len)
		return false;
	memcpy(buf.b, msg->data + p->offset, p->width);
	*x = decode(&buf, p->width, p->flags & PCB_PRED_BE);
	return true;
}

/* @x is (field & mask), zero-extended from the field's width. */
static bool pred_compare(const struct pcb_pred *p, u64 x)
{
	bool sgn = p->flags & PCB_PRED_SIGNED;
	s64 sx = sign_extend64(x, p->width * 8 - 1);
	s64 sv = p->value;	/* check_pred(): sign-extended already */
	u64 v = p->value & width_ones(p->width);

	switch (p->op) {
	case PCB_OP_EQ:
		return x == v;
	case PCB_OP_NE:
		return x != v;
	case PCB_OP_LT:
		return sgn ? sx < sv : x < v;
	case PCB_OP_LE:
		return sgn ? sx <= sv : x <= v;
	case PCB_OP_GT:
		return sgn ? sx > sv : x > v;
	case PCB_OP_GE:
		return sgn ? sx >= sv : x >= v;
	case PCB_OP_ALL:
		return (x & v) == v;
	default:	/* PCB_OP_ANY: check_pred() let nothing else in */
		return x & v;
	}
}

static bool pred_match(const struct pcb_pred *p, const struct pcb_msg *msg,
		       const struct pcb_ident *id)
{
	u64 x;

	return pred_field(p, msg, id, &x) && pred_compare(p, x & p->mask);
}

/*
 * Whether @f accepts @msg, whose publisher @id's ring sees as it says.
 * Runs of PCB_PRED_OR predicates are alternatives; the runs are ANDed.
 * At most PCB_FILTER_MAX_PREDS steps, each reading at most 8 bytes of the
 * kernel's copy.
 */
bool pcb_filter_match(const struct pcb_filter_prog *f,
		      const struct pcb_msg *msg, const struct pcb_ident *id)
{
	bool run_holds = false;
	unsigned int i;

	for (i = 0; i < f->nr_preds; i++) {
		const struct pcb_pred *p = &f->preds[i];

		if (!run_holds)
			run_holds = pred_match(p, msg, id);
		if (p->flags & PCB_PRED_OR)
			continue;
		if (!run_holds)
			return false;
		run_holds = false;	/* the next run starts */
	}
	return true;
}
