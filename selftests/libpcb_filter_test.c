// SPDX-License-Identifier: GPL-2.0
/*
 * libpcb's filters and causality: the filter builder and its text syntax,
 * subscriptions with kernel-side filters and their counters, the
 * consumer-side receive filter, publishing with dependencies and reading
 * them back, and the causal-order checker.
 */
#include "pcb_util.h"

#include <endian.h>

#include <libpcb.h>

#define SCHEMA		0xf117e4ULL
#define MAX_MSG		256
#define RING		(64 * 1024)
#define WAIT		(5 * PCBT_SEC)

/* Opens a libpcb endpoint or skips the test when the bus is absent. */
#define LIBPCB_OPEN(bus) do {						\
	int __ret = pcb_open(&(bus));					\
									\
	if (__ret == -ENOENT || __ret == -ENODEV || __ret == -ENXIO)	\
		PCBT_SKIP(PCB_DEVICE_PATH " is missing (module not loaded)"); \
	if (__ret == -EACCES)						\
		PCBT_SKIP(PCB_DEVICE_PATH " is not accessible to uid %d", \
			  (int)geteuid());				\
	ASSERT_EQ(0, __ret);						\
} while (0)

/* ------------------------------------------------------------------ */
/* The builder                                                        */
/* ------------------------------------------------------------------ */

/* Expects @p to be the predicate made of the other arguments. */
#define EXPECT_PRED(p, fld, o, w, fl, off, msk, val) do {		\
	EXPECT_EQ((fld), (p)->field);					\
	EXPECT_EQ((o), (p)->op);					\
	EXPECT_EQ((w), (p)->width);					\
	EXPECT_EQ((fl), (p)->flags);					\
	EXPECT_EQ((uint32_t)(off), (p)->offset);			\
	EXPECT_EQ((uint64_t)(msk), (p)->mask);				\
	EXPECT_EQ((uint64_t)(val), (p)->value);				\
} while (0)

TEST(builder_fields)
{
	struct pcb_filter_spec f;

	pcb_filter_init(&f);
	EXPECT_EQ(0U, f.nr_preds);
	EXPECT_EQ(0, f.error);
	EXPECT_EQ(0, pcb_filter_check(&f));

	EXPECT_EQ(0, pcb_filter_key(&f, PCB_OP_EQ, UINT64_MAX));
	EXPECT_EQ(0, pcb_filter_uid(&f, PCB_OP_NE, 0));
	EXPECT_EQ(0, pcb_filter_pid(&f, PCB_OP_LT, UINT32_MAX));
	EXPECT_EQ(0, pcb_filter_len(&f, PCB_OP_GE, 100));
	EXPECT_EQ(0, pcb_filter_field(&f, PCB_FIELD_KEY, PCB_OP_LT,
				      (uint64_t)-5, PCB_PRED_SIGNED));
	EXPECT_EQ(0, pcb_filter_field(&f, PCB_FIELD_UID, PCB_OP_GT,
				      (uint64_t)-1, PCB_PRED_SIGNED));
	EXPECT_EQ(0, pcb_filter_payload(&f, 8, 4, PCB_OP_GT, 1000, 0));
	EXPECT_EQ(0, pcb_filter_payload(&f, 2, 2, PCB_OP_LT, (uint64_t)-5,
					PCB_PRED_SIGNED));
	EXPECT_EQ(0, pcb_filter_payload(&f, 0, 2, PCB_OP_EQ, 0x0800,
					PCB_PRED_BE));
	EXPECT_EQ(0, pcb_filter_payload(&f, 4, 8, PCB_OP_LE, (uint64_t)-1,
					PCB_PRED_SIGNED | PCB_PRED_BE));
	EXPECT_EQ(0, pcb_filter_payload(&f, 3, 1, PCB_OP_EQ, 3, 0));
	EXPECT_EQ(0, pcb_filter_mask(&f, 0x0f));
	ASSERT_EQ(11U, f.nr_preds);
	EXPECT_EQ(0, pcb_filter_check(&f));

	EXPECT_PRED(&f.preds[0], PCB_FIELD_KEY, PCB_OP_EQ, 0, 0, 0, 0, UINT64_MAX);
	EXPECT_PRED(&f.preds[1], PCB_FIELD_UID, PCB_OP_NE, 0, 0, 0, 0, 0);
	EXPECT_PRED(&f.preds[2], PCB_FIELD_PID, PCB_OP_LT, 0, 0, 0, 0, UINT32_MAX);
	EXPECT_PRED(&f.preds[3], PCB_FIELD_LEN, PCB_OP_GE, 0, 0, 0, 0, 100);
	EXPECT_PRED(&f.preds[4], PCB_FIELD_KEY, PCB_OP_LT, 0, PCB_PRED_SIGNED,
		    0, 0, -5);
	EXPECT_PRED(&f.preds[5], PCB_FIELD_UID, PCB_OP_GT, 0, PCB_PRED_SIGNED,
		    0, 0, -1);
	EXPECT_PRED(&f.preds[6], PCB_FIELD_PAYLOAD, PCB_OP_GT, 4, 0, 8, 0, 1000);
	EXPECT_PRED(&f.preds[7], PCB_FIELD_PAYLOAD, PCB_OP_LT, 2,
		    PCB_PRED_SIGNED, 2, 0, -5);
	EXPECT_PRED(&f.preds[8], PCB_FIELD_PAYLOAD, PCB_OP_EQ, 2, PCB_PRED_BE,
		    0, 0, 0x0800);
	EXPECT_PRED(&f.preds[9], PCB_FIELD_PAYLOAD, PCB_OP_LE, 8,
		    PCB_PRED_SIGNED | PCB_PRED_BE, 4, 0, -1);
	EXPECT_PRED(&f.preds[10], PCB_FIELD_PAYLOAD, PCB_OP_EQ, 1, 0, 3, 0x0f, 3);
}

TEST(builder_every_op)
{
	static const unsigned int ops[] = {
		PCB_OP_EQ, PCB_OP_NE, PCB_OP_LT, PCB_OP_LE, PCB_OP_GT,
		PCB_OP_GE, PCB_OP_ALL, PCB_OP_ANY,
	};
	struct pcb_filter_spec f;
	unsigned int i;

	pcb_filter_init(&f);
	for (i = 0; i < ARRAY_SIZE(ops); i++) {
		EXPECT_EQ(0, pcb_filter_key(&f, ops[i], i));
		EXPECT_EQ(ops[i], f.preds[i].op);
	}
	EXPECT_EQ(0, pcb_filter_check(&f));

	/* Unknown operators, also ones that would truncate to valid ones. */
	pcb_filter_init(&f);
	EXPECT_EQ(-EINVAL, pcb_filter_key(&f, 0, 0));
	pcb_filter_init(&f);
	EXPECT_EQ(-EINVAL, pcb_filter_key(&f, PCB_OP_ANY + 1, 0));
	pcb_filter_init(&f);
	EXPECT_EQ(-EINVAL, pcb_filter_key(&f, 0x100 | PCB_OP_EQ, 0));
	pcb_filter_init(&f);
	EXPECT_EQ(-EINVAL, pcb_filter_payload(&f, 0, 1, 0x100 | PCB_OP_EQ, 0, 0));
	EXPECT_EQ(0U, f.nr_preds);
}

TEST(builder_widths_and_values)
{
	struct pcb_filter_spec f;
	unsigned int w;

	for (w = 0; w <= 16; w++) {
		bool ok = w == 1 || w == 2 || w == 4 || w == 8;

		pcb_filter_init(&f);
		EXPECT_EQ(ok ? 0 : -EINVAL,
			  pcb_filter_payload(&f, 0, w, PCB_OP_EQ, 0, 0));
	}
	pcb_filter_init(&f);
	EXPECT_EQ(-EINVAL, pcb_filter_payload(&f, 0, 0x102, PCB_OP_EQ, 0, 0));

	/* Unsigned values fit the width. */
	pcb_filter_init(&f);
	EXPECT_EQ(0, pcb_filter_payload(&f, 0, 1, PCB_OP_EQ, 255, 0));
	EXPECT_EQ(0, pcb_filter_payload(&f, 0, 2, PCB_OP_EQ, 0xffff, 0));
	EXPECT_EQ(0, pcb_filter_payload(&f, 0, 4, PCB_OP_EQ, UINT32_MAX, 0));
	EXPECT_EQ(0, pcb_filter_payload(&f, 0, 8, PCB_OP_EQ, UINT64_MAX, 0));
	EXPECT_EQ(0, pcb_filter_field(&f, PCB_FIELD_LEN, PCB_OP_EQ, UINT32_MAX, 0));
	EXPECT_EQ(0, pcb_filter_check(&f));
	pcb_filter_init(&f);
	EXPECT_EQ(-EINVAL, pcb_filter_payload(&f, 0, 1, PCB_OP_EQ, 256, 0));
	pcb_filter_init(&f);
	EXPECT_EQ(-EINVAL, pcb_filter_payload(&f, 0, 2, PCB_OP_EQ, 0x10000, 0));
	pcb_filter_init(&f);
	EXPECT_EQ(-EINVAL, pcb_filter_payload(&f, 0, 4, PCB_OP_EQ, 1ULL << 32, 0));
	pcb_filter_init(&f);
	EXPECT_EQ(-EINVAL, pcb_filter_field(&f, PCB_FIELD_UID, PCB_OP_EQ,
					    1ULL << 32, 0));
	pcb_filter_init(&f);
	EXPECT_EQ(-EINVAL, pcb_filter_field(&f, PCB_FIELD_PID, PCB_OP_EQ,
					    (uint64_t)-1, 0));

	/* Signed values are sign-extended from the width, in its range. */
	pcb_filter_init(&f);
	EXPECT_EQ(0, pcb_filter_payload(&f, 0, 1, PCB_OP_EQ, 127, PCB_PRED_SIGNED));
	EXPECT_EQ(0, pcb_filter_payload(&f, 0, 1, PCB_OP_EQ, (uint64_t)-128,
					PCB_PRED_SIGNED));
	EXPECT_EQ(0, pcb_filter_payload(&f, 0, 4, PCB_OP_EQ, (uint64_t)INT32_MIN,
					PCB_PRED_SIGNED));
	EXPECT_EQ(0, pcb_filter_payload(&f, 0, 8, PCB_OP_EQ, (uint64_t)INT64_MIN,
					PCB_PRED_SIGNED));
	EXPECT_EQ(0, pcb_filter_check(&f));
	pcb_filter_init(&f);
	EXPECT_EQ(-EINVAL, pcb_filter_payload(&f, 0, 1, PCB_OP_EQ, 128,
					      PCB_PRED_SIGNED));
	pcb_filter_init(&f);
	EXPECT_EQ(-EINVAL, pcb_filter_payload(&f, 0, 1, PCB_OP_EQ, (uint64_t)-129,
					      PCB_PRED_SIGNED));
	pcb_filter_init(&f);
	/* 0xff is -1 in a byte, but not sign-extended: refused. */
	EXPECT_EQ(-EINVAL, pcb_filter_payload(&f, 0, 1, PCB_OP_EQ, 0xff,
					      PCB_PRED_SIGNED));
	pcb_filter_init(&f);
	EXPECT_EQ(-EINVAL, pcb_filter_field(&f, PCB_FIELD_LEN, PCB_OP_EQ,
					    0x80000000ULL, PCB_PRED_SIGNED));
}

TEST(builder_flags)
{
	struct pcb_filter_spec f;

	/* Only PCB_PRED_SIGNED on record fields, no BE, no OR. */
	pcb_filter_init(&f);
	EXPECT_EQ(-EINVAL, pcb_filter_field(&f, PCB_FIELD_KEY, PCB_OP_EQ, 0,
					    PCB_PRED_BE));
	pcb_filter_init(&f);
	EXPECT_EQ(-EINVAL, pcb_filter_field(&f, PCB_FIELD_KEY, PCB_OP_EQ, 0,
					    PCB_PRED_OR));
	pcb_filter_init(&f);
	EXPECT_EQ(-EINVAL, pcb_filter_field(&f, PCB_FIELD_PAYLOAD, PCB_OP_EQ, 0, 0));
	pcb_filter_init(&f);
	EXPECT_EQ(-EINVAL, pcb_filter_field(&f, 0, PCB_OP_EQ, 0, 0));
	pcb_filter_init(&f);
	EXPECT_EQ(-EINVAL, pcb_filter_field(&f, PCB_FIELD_PAYLOAD + 1,
					    PCB_OP_EQ, 0, 0));
	pcb_filter_init(&f);
	EXPECT_EQ(-EINVAL, pcb_filter_field(&f, 0x100 | PCB_FIELD_KEY,
					    PCB_OP_EQ, 0, 0));
	pcb_filter_init(&f);
	EXPECT_EQ(-EINVAL, pcb_filter_payload(&f, 0, 1, PCB_OP_EQ, 0, PCB_PRED_OR));
	pcb_filter_init(&f);
	EXPECT_EQ(-EINVAL, pcb_filter_payload(&f, 0, 1, PCB_OP_EQ, 0, 0x08));
}

TEST(builder_raw_preds)
{
	struct pcb_filter_pred ok = {
		.field = PCB_FIELD_PAYLOAD, .op = PCB_OP_ANY, .width = 2,
		.flags = PCB_PRED_BE | PCB_PRED_OR, .offset = 6,
		.mask = 0xff00, .value = 0x0100,
	};
	struct pcb_filter_pred p;
	struct pcb_filter_spec f;

	pcb_filter_init(&f);
	EXPECT_EQ(0, pcb_filter_add(&f, &ok));
	EXPECT_EQ(0, memcmp(&ok, &f.preds[0], sizeof(ok)));
	/* Its PCB_PRED_OR waits for an alternative. */
	EXPECT_EQ(-EINVAL, pcb_filter_check(&f));
	EXPECT_EQ(0, pcb_filter_len(&f, PCB_OP_EQ, 1));
	EXPECT_EQ(0, pcb_filter_check(&f));

	/* Each thing the kernel refuses. */
#define REFUSED(member, val) do {					\
		p = (struct pcb_filter_pred){ .field = PCB_FIELD_KEY,	\
					      .op = PCB_OP_EQ };	\
		p.member = (val);					\
		pcb_filter_init(&f);					\
		EXPECT_EQ(-EINVAL, pcb_filter_add(&f, &p));		\
		EXPECT_EQ(0U, f.nr_preds);				\
	} while (0)
	REFUSED(width, 8);
	REFUSED(offset, 1);
	REFUSED(flags, PCB_PRED_BE);
	REFUSED(flags, 0x80);
	REFUSED(field, 0);
	REFUSED(field, 6);
	REFUSED(op, 0);
	REFUSED(op, 9);
#undef REFUSED
	p = ok;
	p.mask = 0x10000;	/* wider than 2 bytes */
	pcb_filter_init(&f);
	EXPECT_EQ(-EINVAL, pcb_filter_add(&f, &p));
	pcb_filter_init(&f);
	EXPECT_EQ(-EINVAL, pcb_filter_add(&f, NULL));
	EXPECT_EQ(-EINVAL, pcb_filter_add(NULL, &ok));
}

TEST(builder_mask)
{
	struct pcb_filter_spec f;

	pcb_filter_init(&f);
	EXPECT_EQ(-EINVAL, pcb_filter_mask(&f, 1));	/* nothing to mask */
	pcb_filter_init(&f);
	EXPECT_EQ(0, pcb_filter_uid(&f, PCB_OP_EQ, 0));
	EXPECT_EQ(0, pcb_filter_mask(&f, UINT32_MAX));
	EXPECT_EQ(UINT32_MAX, f.preds[0].mask);
	EXPECT_EQ(-EINVAL, pcb_filter_mask(&f, 1ULL << 32));
	EXPECT_EQ(-EINVAL, f.error);
	pcb_filter_init(&f);
	EXPECT_EQ(0, pcb_filter_key(&f, PCB_OP_EQ, 0));
	EXPECT_EQ(0, pcb_filter_mask(&f, UINT64_MAX));
	/* 0 is the ABI's "no mask". */
	EXPECT_EQ(0, pcb_filter_mask(&f, 0));
	EXPECT_EQ(0ULL, f.preds[0].mask);
	EXPECT_EQ(0, pcb_filter_payload(&f, 0, 1, PCB_OP_EQ, 0, PCB_PRED_SIGNED));
	EXPECT_EQ(0, pcb_filter_mask(&f, 0xff));
	EXPECT_EQ(-EINVAL, pcb_filter_mask(&f, 0x1ff));
}

TEST(builder_or_groups)
{
	struct pcb_filter_spec f;

	pcb_filter_init(&f);
	EXPECT_EQ(-EINVAL, pcb_filter_or(&f));		/* nothing to join */
	EXPECT_EQ(-EINVAL, pcb_filter_check(&f));

	/* (key == 1 || key == 2 || key == 3) && len > 100 */
	pcb_filter_init(&f);
	EXPECT_EQ(0, pcb_filter_key(&f, PCB_OP_EQ, 1));
	EXPECT_EQ(0, pcb_filter_or(&f));
	EXPECT_EQ(-EINVAL, pcb_filter_check(&f));
	EXPECT_EQ(0, f.error);		/* incomplete, not wrong */
	EXPECT_EQ(0, pcb_filter_key(&f, PCB_OP_EQ, 2));
	EXPECT_EQ(0, pcb_filter_or(&f));
	EXPECT_EQ(0, pcb_filter_or(&f));	/* twice is once */
	EXPECT_EQ(0, pcb_filter_key(&f, PCB_OP_EQ, 3));
	EXPECT_EQ(0, pcb_filter_check(&f));
	EXPECT_EQ(0, pcb_filter_len(&f, PCB_OP_GT, 100));
	EXPECT_EQ(0, pcb_filter_check(&f));
	ASSERT_EQ(4U, f.nr_preds);
	EXPECT_EQ(PCB_PRED_OR, f.preds[0].flags);
	EXPECT_EQ(PCB_PRED_OR, f.preds[1].flags);
	EXPECT_EQ(0, f.preds[2].flags);
	EXPECT_EQ(0, f.preds[3].flags);
}

TEST(builder_limit)
{
	struct pcb_filter_spec f;
	unsigned int i;

	pcb_filter_init(&f);
	for (i = 0; i < PCB_FILTER_MAX_PREDS; i++)
		ASSERT_EQ(0, pcb_filter_key(&f, PCB_OP_NE, i));
	EXPECT_EQ(0, pcb_filter_check(&f));
	EXPECT_EQ(-E2BIG, pcb_filter_key(&f, PCB_OP_NE, 99));
	EXPECT_EQ((unsigned int)PCB_FILTER_MAX_PREDS, f.nr_preds);
	EXPECT_EQ(-E2BIG, pcb_filter_check(&f));
	EXPECT_EQ(-E2BIG, pcb_filter_parse(&f, "key==1", NULL));

	/* A spec with a corrupted count is refused, not overrun. */
	pcb_filter_init(&f);
	f.nr_preds = PCB_FILTER_MAX_PREDS + 1;
	EXPECT_EQ(-EINVAL, pcb_filter_check(&f));
}

TEST(builder_sticky_error)
{
	struct pcb_filter_spec f;

	pcb_filter_init(&f);
	EXPECT_EQ(0, pcb_filter_key(&f, PCB_OP_EQ, 1));
	EXPECT_EQ(-EINVAL, pcb_filter_payload(&f, 0, 3, PCB_OP_EQ, 0, 0));
	/* Later calls change nothing and give the first error back. */
	EXPECT_EQ(-EINVAL, pcb_filter_key(&f, PCB_OP_EQ, 2));
	EXPECT_EQ(-EINVAL, pcb_filter_or(&f));
	EXPECT_EQ(-EINVAL, pcb_filter_mask(&f, 1));
	EXPECT_EQ(-EINVAL, pcb_filter_parse(&f, "key==3", NULL));
	EXPECT_EQ(1U, f.nr_preds);
	EXPECT_EQ(0, f.preds[0].flags);
	EXPECT_EQ(0ULL, f.preds[0].mask);
	EXPECT_EQ(-EINVAL, f.error);
	EXPECT_EQ(-EINVAL, pcb_filter_check(&f));
	/* Starting over clears it. */
	pcb_filter_init(&f);
	EXPECT_EQ(0, pcb_filter_key(&f, PCB_OP_EQ, 2));
	EXPECT_EQ(0, pcb_filter_check(&f));

	EXPECT_EQ(-EINVAL, pcb_filter_key(NULL, PCB_OP_EQ, 1));
	EXPECT_EQ(-EINVAL, pcb_filter_payload(NULL, 0, 1, PCB_OP_EQ, 1, 0));
	EXPECT_EQ(-EINVAL, pcb_filter_mask(NULL, 1));
	EXPECT_EQ(-EINVAL, pcb_filter_or(NULL));
	EXPECT_EQ(-EINVAL, pcb_filter_check(NULL));
	EXPECT_EQ(-EINVAL, pcb_filter_parse(NULL, "key==1", NULL));
	pcb_filter_init(NULL);
}

/* ------------------------------------------------------------------ */
/* The text syntax                                                    */
/* ------------------------------------------------------------------ */

#define P(fld, o, w, fl, off, msk, val)					\
	{ .field = (fld), .op = (o), .width = (w), .flags = (fl),	\
	  .offset = (off), .mask = (msk), .value = (uint64_t)(val) }
#define KEY(o, val)	P(PCB_FIELD_KEY, o, 0, 0, 0, 0, val)
#define PL(o, w, fl, off, val) P(PCB_FIELD_PAYLOAD, o, w, fl, off, 0, val)
#define S		PCB_PRED_SIGNED
#define BE		PCB_PRED_BE
#define OR		PCB_PRED_OR

static const struct parse_case {
	const char *expr;
	unsigned int n;
	struct pcb_filter_pred preds[4];
} parse_cases[] = {
	{ "key==42", 1, { KEY(PCB_OP_EQ, 42) } },
	{ "uid!=0", 1, { P(PCB_FIELD_UID, PCB_OP_NE, 0, 0, 0, 0, 0) } },
	{ "pid<7", 1, { P(PCB_FIELD_PID, PCB_OP_LT, 0, 0, 0, 0, 7) } },
	{ "len>=100", 1, { P(PCB_FIELD_LEN, PCB_OP_GE, 0, 0, 0, 0, 100) } },
	{ "len<=4294967295", 1,
	  { P(PCB_FIELD_LEN, PCB_OP_LE, 0, 0, 0, 0, UINT32_MAX) } },
	{ "key>18446744073709551615", 1, { KEY(PCB_OP_GT, UINT64_MAX) } },
	{ "key==0xFFFFffffFFFFffff", 1, { KEY(PCB_OP_EQ, UINT64_MAX) } },
	{ "key==0X1f", 1, { KEY(PCB_OP_EQ, 0x1f) } },
	{ "key==007", 1, { KEY(PCB_OP_EQ, 7) } },	/* decimal, not octal */
	{ "u32@8>1000", 1, { PL(PCB_OP_GT, 4, 0, 8, 1000) } },
	{ "s16@2<-5", 1, { PL(PCB_OP_LT, 2, S, 2, -5) } },
	{ "be16@0==0x0800", 1, { PL(PCB_OP_EQ, 2, BE, 0, 0x0800) } },
	{ "u8@3&0x0f==3", 1, { P(PCB_FIELD_PAYLOAD, PCB_OP_EQ, 1, 0, 3, 0x0f, 3) } },
	{ "key&0x6:all", 1, { KEY(PCB_OP_ALL, 6) } },
	{ "key&0x6:any", 1, { KEY(PCB_OP_ANY, 6) } },
	{ "key&0:all", 1, { KEY(PCB_OP_ALL, 0) } },
	{ "uid&0xff00==0x100", 1,
	  { P(PCB_FIELD_UID, PCB_OP_EQ, 0, 0, 0, 0xff00, 0x100) } },
	{ "key==1|key==2", 2, { KEY(PCB_OP_EQ, 1), KEY(PCB_OP_EQ, 2) } },
	{ "key==1|key==2,len>100", 3,
	  { KEY(PCB_OP_EQ, 1), KEY(PCB_OP_EQ, 2),
	    P(PCB_FIELD_LEN, PCB_OP_GT, 0, 0, 0, 0, 100) } },
	{ " key == 1 |\tkey == 2 , len > 100 ", 3,
	  { KEY(PCB_OP_EQ, 1), KEY(PCB_OP_EQ, 2),
	    P(PCB_FIELD_LEN, PCB_OP_GT, 0, 0, 0, 0, 100) } },
	{ "u8 @ 3 & 0x0f != 3", 1,
	  { P(PCB_FIELD_PAYLOAD, PCB_OP_NE, 1, 0, 3, 0x0f, 3) } },
	{ "key & 6 : any", 1, { KEY(PCB_OP_ANY, 6) } },
	{ "len>1,len<9|key==3,pid!=1", 4,
	  { P(PCB_FIELD_LEN, PCB_OP_GT, 0, 0, 0, 0, 1),
	    P(PCB_FIELD_LEN, PCB_OP_LT, 0, 0, 0, 0, 9), KEY(PCB_OP_EQ, 3),
	    P(PCB_FIELD_PID, PCB_OP_NE, 0, 0, 0, 0, 1) } },
	/* Every payload type. */
	{ "u8@0==255,u16@1==65535,u32@2==0,u64@3==18446744073709551615", 4,
	  { PL(PCB_OP_EQ, 1, 0, 0, 255), PL(PCB_OP_EQ, 2, 0, 1, 65535),
	    PL(PCB_OP_EQ, 4, 0, 2, 0), PL(PCB_OP_EQ, 8, 0, 3, UINT64_MAX) } },
	{ "s8@0==-128,s16@1==-32768,s32@2==2147483647,s64@3==-9223372036854775808",
	  4, { PL(PCB_OP_EQ, 1, S, 0, -128), PL(PCB_OP_EQ, 2, S, 1, -32768),
	       PL(PCB_OP_EQ, 4, S, 2, INT32_MAX), PL(PCB_OP_EQ, 8, S, 3, INT64_MIN) } },
	{ "be16@0==1,be32@4==2,be64@8==3", 3,
	  { PL(PCB_OP_EQ, 2, BE, 0, 1), PL(PCB_OP_EQ, 4, BE, 4, 2),
	    PL(PCB_OP_EQ, 8, BE, 8, 3) } },
	{ "sbe16@0>-1,sbe32@4>=-2,sbe64@8<=9223372036854775807", 3,
	  { PL(PCB_OP_GT, 2, S | BE, 0, -1), PL(PCB_OP_GE, 4, S | BE, 4, -2),
	    PL(PCB_OP_LE, 8, S | BE, 8, INT64_MAX) } },
	{ "s32@4294967295>-0", 1, { PL(PCB_OP_GT, 4, S, UINT32_MAX, 0) } },
	{ "s16@0&0xffff==-1", 1,
	  { P(PCB_FIELD_PAYLOAD, PCB_OP_EQ, 2, S, 0, 0xffff, -1) } },
};

/* Sets the OR flags the cases leave out: every pred before a '|'. */
static void expected_preds(const struct parse_case *c,
			   struct pcb_filter_pred *out)
{
	const char *p = c->expr;
	unsigned int i = 0;

	memcpy(out, c->preds, sizeof(c->preds));
	for (; *p && i < c->n; p++) {
		if (*p == '|')
			out[i++].flags |= OR;
		else if (*p == ',')
			i++;
	}
}

TEST(parse_forms)
{
	struct pcb_filter_pred want[4];
	struct pcb_filter_spec f;
	unsigned int i, j;

	for (i = 0; i < ARRAY_SIZE(parse_cases); i++) {
		const struct parse_case *c = &parse_cases[i];
		const char *err = NULL;

		pcb_filter_init(&f);
		ASSERT_EQ(0, pcb_filter_parse(&f, c->expr, &err))
			TH_LOG("'%s'", c->expr);
		EXPECT_EQ(NULL, err);
		ASSERT_EQ(c->n, f.nr_preds) TH_LOG("'%s'", c->expr);
		expected_preds(c, want);
		for (j = 0; j < c->n; j++)
			EXPECT_PRED(&f.preds[j], want[j].field, want[j].op,
				    want[j].width, want[j].flags,
				    want[j].offset, want[j].mask,
				    want[j].value);
		EXPECT_EQ(0, memcmp(want, f.preds, c->n * sizeof(want[0])))
			TH_LOG("'%s'", c->expr);
		EXPECT_EQ(0, pcb_filter_check(&f));
	}
}

TEST(parse_appends_and)
{
	struct pcb_filter_spec f;

	pcb_filter_init(&f);
	ASSERT_EQ(0, pcb_filter_key(&f, PCB_OP_NE, 9));
	ASSERT_EQ(0, pcb_filter_parse(&f, "key==1|key==2", NULL));
	ASSERT_EQ(0, pcb_filter_parse(&f, "len>3", NULL));
	ASSERT_EQ(4U, f.nr_preds);
	EXPECT_EQ(0, f.preds[0].flags);
	EXPECT_EQ(OR, f.preds[1].flags);
	EXPECT_EQ(0, f.preds[2].flags);
	EXPECT_EQ(PCB_FIELD_LEN, f.preds[3].field);
	EXPECT_EQ(0, pcb_filter_check(&f));
	/* The last expression can end with the very last predicate. */
	pcb_filter_init(&f);
	f.nr_preds = PCB_FILTER_MAX_PREDS - 2;
	EXPECT_EQ(0, pcb_filter_parse(&f, "key==1|key==2", NULL));
	EXPECT_EQ((unsigned int)PCB_FILTER_MAX_PREDS, f.nr_preds);
}

static const struct parse_error {
	const char *expr;
	int at;			/* offset of the error */
} bad_exprs[] = {
	{ "", 0 },
	{ "   ", 3 },
	{ "key", 3 },			/* no operator */
	{ "key==", 5 },			/* no value */
	{ "key=42", 3 },
	{ "key=>1", 3 },
	{ "key<>1", 4 },
	{ "key!1", 3 },
	{ "foo==1", 0 },		/* unknown field */
	{ "KEY==1", 0 },
	{ "keys==1", 0 },
	{ "u24@0==1", 0 },		/* unknown type */
	{ "be8@0==1", 0 },
	{ "u32==1", 3 },		/* no @ */
	{ "u32@==1", 4 },		/* no offset */
	{ "u32@x==1", 4 },
	{ "u32@-1==1", 4 },
	{ "u32@4294967296==0", 4 },	/* offset beyond 32 bits */
	{ "key==42,", 8 },		/* dangling separators */
	{ "key==42|", 8 },
	{ ",key==1", 0 },
	{ "|key==1", 0 },
	{ "key==1,,key==2", 7 },
	{ "key==1||key==2", 7 },
	{ "key==1 len==2", 7 },		/* no separator */
	{ "key==1&&len==2", 6 },
	{ "u8@0==256", 6 },		/* values out of range */
	{ "u16@0==65536", 7 },
	{ "u32@0==4294967296", 7 },
	{ "uid==4294967296", 5 },
	{ "key==18446744073709551616", 5 },
	{ "key==0x10000000000000000", 5 },
	{ "s8@0==128", 6 },
	{ "s8@0==-129", 6 },
	{ "s8@0==0xff", 6 },		/* -1 is written -1 */
	{ "s64@0==9223372036854775808", 7 },
	{ "s64@0==-9223372036854775809", 7 },
	{ "u8@0==-1", 6 },		/* negative, unsigned */
	{ "key==-1", 5 },
	{ "key==+1", 5 },
	{ "key==0x", 5 },		/* malformed numbers */
	{ "key==12ab", 5 },
	{ "key==1x", 5 },
	{ "key==0x1g", 5 },
	{ "key==1_000", 5 },
	{ "key==--1", 5 },
	{ "s8@0==-", 6 },
	{ "key&0==0", 4 },		/* a mask of 0 */
	{ "u8@0&0x100==0", 5 },		/* a mask too wide */
	{ "u8@0&-1==0", 5 },
	{ "key&==1", 4 },
	{ "key&6", 5 },			/* bits without :all or :any */
	{ "key&6:", 6 },
	{ "key&6:none", 6 },
	{ "key&6:allx", 6 },
	{ "key&6:ALL", 6 },
	{ "key:all", 3 },		/* bits without & */
	{ "key&0x10000000000000000:any", 4 },
	{ "key==1)", 6 },		/* junk at the end */
	{ "(key==1)", 0 },
	{ "key==1;", 6 },
};

TEST(parse_errors)
{
	struct pcb_filter_spec f, before;
	unsigned int i;

	for (i = 0; i < ARRAY_SIZE(bad_exprs); i++) {
		const struct parse_error *e = &bad_exprs[i];
		const char *err = NULL;

		pcb_filter_init(&f);
		ASSERT_EQ(0, pcb_filter_len(&f, PCB_OP_NE, 1));
		before = f;
		EXPECT_EQ(-EINVAL, pcb_filter_parse(&f, e->expr, &err))
			TH_LOG("'%s'", e->expr);
		ASSERT_NE(NULL, err) TH_LOG("'%s'", e->expr);
		EXPECT_EQ(e->at, (int)(err - e->expr)) TH_LOG("'%s'", e->expr);
		/* Nothing appended, and the spec is still good. */
		EXPECT_EQ(0, memcmp(&before, &f, sizeof(f)));
		EXPECT_EQ(0, pcb_filter_check(&f));
		/* errp is optional. */
		EXPECT_EQ(-EINVAL, pcb_filter_parse(&f, e->expr, NULL));
	}
	pcb_filter_init(&f);
	EXPECT_EQ(-EINVAL, pcb_filter_parse(&f, NULL, NULL));
}

TEST(parse_too_many)
{
	struct pcb_filter_spec f, before;
	const char *err = NULL;

	pcb_filter_init(&f);
	f.nr_preds = PCB_FILTER_MAX_PREDS - 1;
	before = f;
	/* -E2BIG is no syntax error: no position, and no sticky error. */
	EXPECT_EQ(-E2BIG, pcb_filter_parse(&f, "key==1|key==2", &err));
	EXPECT_EQ(NULL, err);
	EXPECT_EQ(0, memcmp(&before, &f, sizeof(f)));
	EXPECT_EQ(0, f.error);
	EXPECT_EQ(0, pcb_filter_parse(&f, "key==1", NULL));
}

/* ------------------------------------------------------------------ */
/* The causal-order checker, on made-up streams                       */
/* ------------------------------------------------------------------ */

TEST(causal_accepts_a_good_stream)
{
	struct pcb_causal_check c;
	uint64_t id, i, deps[PCB_MAX_DEPS];
	unsigned int n;

	pcb_causal_init(&c);
	/* Each message depends on up to 8 of the ones before it. */
	for (id = 1; id <= 5000; id++) {
		n = 0;
		for (i = 0; i < id % (PCB_MAX_DEPS + 1) && 3 * i + 1 < id; i++)
			deps[n++] = id - 1 - 3 * i;
		ASSERT_EQ(0, pcb_causal_feed(&c, id, deps, n));
	}
	EXPECT_EQ(5000ULL, c.messages);
	EXPECT_EQ(0ULL, c.violations);
	EXPECT_EQ(0ULL, c.forgotten);

	/* Dependencies on messages the stream never carries are fine. */
	pcb_causal_init(&c);
	for (id = 100; id < 400; id++) {
		deps[0] = id - 50;	/* before the stream started */
		deps[1] = id - 1;
		ASSERT_EQ(0, pcb_causal_feed(&c, id, deps, 2));
	}
	EXPECT_EQ(0ULL, c.violations);
	EXPECT_EQ(0ULL, c.forgotten);
}

TEST(causal_chains)
{
	struct pcb_causal_check c;
	uint64_t deps[PCB_MAX_DEPS];
	unsigned int i;

	/* 1 <- 2 <- 3 ..., each also on the first: in order, no violation. */
	pcb_causal_init(&c);
	ASSERT_EQ(0, pcb_causal_feed(&c, 1, NULL, 0));
	for (i = 2; i < 1000; i++) {
		deps[0] = i - 1;
		deps[1] = 1;
		ASSERT_EQ(0, pcb_causal_feed(&c, i, deps, i > 2 ? 2 : 1));
	}
	EXPECT_EQ(0ULL, c.violations);
	/* Messages whose dependencies arrived are nothing to wait for. */
	EXPECT_EQ(0ULL, c.forgotten);
}

TEST(causal_dep_not_older)
{
	struct pcb_causal_check c;
	uint64_t deps[3] = { 5, 20, 20 };

	pcb_causal_init(&c);
	ASSERT_EQ(0, pcb_causal_feed(&c, 5, NULL, 0));
	EXPECT_EQ(-EPROTO, pcb_causal_feed(&c, 10, deps, 2));
	EXPECT_EQ((unsigned int)PCB_CAUSAL_NOT_AFTER, c.first.kind);
	EXPECT_EQ(10ULL, c.first.dependent);
	EXPECT_EQ(20ULL, c.first.dependency);
	EXPECT_EQ(1ULL, c.violations);

	/* Depending on itself. */
	deps[0] = 30;
	EXPECT_EQ(-EPROTO, pcb_causal_feed(&c, 30, deps, 1));
	EXPECT_EQ((unsigned int)PCB_CAUSAL_NOT_AFTER, c.first.kind);
	EXPECT_EQ(30ULL, c.first.dependent);
	EXPECT_EQ(30ULL, c.first.dependency);
	EXPECT_EQ(2ULL, c.violations);
	EXPECT_EQ(3ULL, c.messages);
}

TEST(causal_late_dependency)
{
	struct pcb_causal_check c;
	uint64_t deps[2] = { 7, 8 };

	pcb_causal_init(&c);
	ASSERT_EQ(0, pcb_causal_feed(&c, 1, NULL, 0));
	/* 10 depends on 7 and 8, which have not come. */
	ASSERT_EQ(0, pcb_causal_feed(&c, 10, deps, 2));
	ASSERT_EQ(0, pcb_causal_feed(&c, 11, NULL, 0));
	EXPECT_EQ(-EPROTO, pcb_causal_feed(&c, 8, NULL, 0));
	EXPECT_EQ((unsigned int)PCB_CAUSAL_LATE_DEP, c.first.kind);
	EXPECT_EQ(10ULL, c.first.dependent);
	EXPECT_EQ(8ULL, c.first.dependency);
	EXPECT_EQ(-EPROTO, pcb_causal_feed(&c, 7, NULL, 0));
	EXPECT_EQ(7ULL, c.first.dependency);
	EXPECT_EQ(2ULL, c.violations);
	/* Each is reported once: ids are unique, so a repeat is no news. */
	EXPECT_EQ(0, pcb_causal_feed(&c, 8, NULL, 0));

	/* A late dependency that is itself wrong is both violations. */
	pcb_causal_init(&c);
	deps[0] = 50;
	ASSERT_EQ(0, pcb_causal_feed(&c, 60, deps, 1));
	deps[0] = 55;
	EXPECT_EQ(-EPROTO, pcb_causal_feed(&c, 50, deps, 1));
	EXPECT_EQ((unsigned int)PCB_CAUSAL_LATE_DEP, c.first.kind);
	EXPECT_EQ(2ULL, c.violations);
}

TEST(causal_window)
{
	struct pcb_causal_check c;
	uint64_t dep, id;

	/* Declarations that never arrive push the oldest out. */
	pcb_causal_init(&c);
	for (id = 1; id <= PCB_CAUSAL_WINDOW + 10; id++) {
		dep = 1000000 + id;	/* never comes */
		ASSERT_EQ(0, pcb_causal_feed(&c, 2000000 + id, &dep, 1));
	}
	EXPECT_EQ(10ULL, c.forgotten);
	/* The oldest are forgotten: their late arrival goes unnoticed... */
	EXPECT_EQ(0, pcb_causal_feed(&c, 1000001, NULL, 0));
	/* ...the newer are not. */
	EXPECT_EQ(-EPROTO, pcb_causal_feed(&c, 1000011, NULL, 0));
	EXPECT_EQ(2000011ULL, c.first.dependent);
	EXPECT_EQ(-EPROTO, pcb_causal_feed(&c, 1000000 + PCB_CAUSAL_WINDOW + 10,
					   NULL, 0));
	EXPECT_EQ(2ULL, c.violations);
}

TEST(causal_errors)
{
	uint64_t deps[PCB_MAX_DEPS + 1] = { 1, 2, 3, 4, 5, 6, 7, 8, 9 };
	struct pcb_causal_check c;

	pcb_causal_init(&c);
	EXPECT_EQ(-EINVAL, pcb_causal_feed(NULL, 1, NULL, 0));
	EXPECT_EQ(-EINVAL, pcb_causal_feed(&c, 0, NULL, 0));
	EXPECT_EQ(-EINVAL, pcb_causal_feed(&c, 100, NULL, 1));
	EXPECT_EQ(-EINVAL, pcb_causal_feed(&c, 100, deps, PCB_MAX_DEPS + 1));
	EXPECT_EQ(0ULL, c.messages);
	EXPECT_EQ(0, pcb_causal_feed(&c, 100, deps, PCB_MAX_DEPS));
	/* Refused messages were not taken into account: 9 is no dependency. */
	EXPECT_EQ(0, pcb_causal_feed(&c, 9, NULL, 0));
	EXPECT_EQ(-EPROTO, pcb_causal_feed(&c, 8, NULL, 0));
	pcb_causal_init(NULL);
}

/* A record as the ring would hold it, for pcb_msg_deps() and the checker. */
struct fake_record {
	struct pcb_record rec;
	uint64_t deps[PCB_MAX_DEPS];
	char payload[8];
};

static void fake_msg(struct fake_record *r, struct pcb_msg *msg, uint64_t id,
		     const uint64_t *deps, unsigned int n)
{
	memset(r, 0, sizeof(*r));
	r->rec.msg_id = id;
	r->rec.nr_deps = (__u16)n;
	r->rec.hdr_len = (__u16)(sizeof(r->rec) + n * sizeof(uint64_t));
	memcpy(r->deps, deps, n * sizeof(uint64_t));
	memset(msg, 0, sizeof(*msg));
	msg->rec = &r->rec;
	msg->data = (const char *)r + r->rec.hdr_len;
}

TEST(causal_feed_msg)
{
	static const uint64_t d2[] = { 300, 200 };
	struct fake_record r;
	struct pcb_causal_check c;
	const uint64_t *deps = NULL;
	struct pcb_msg msg;

	/* The record layout: the ids right after the 64-byte header. */
	ASSERT_EQ(64U, sizeof(struct pcb_record));
	fake_msg(&r, &msg, 400, d2, 2);
	EXPECT_EQ(2U, pcb_msg_deps(&msg, &deps));
	EXPECT_EQ((const void *)r.deps, (const void *)deps);
	EXPECT_EQ(300ULL, deps[0]);
	EXPECT_EQ(200ULL, deps[1]);
	EXPECT_EQ(2U, pcb_msg_deps(&msg, NULL));

	pcb_causal_init(&c);
	ASSERT_EQ(0, pcb_causal_feed_msg(&c, &msg));
	fake_msg(&r, &msg, 300, NULL, 0);
	EXPECT_EQ(0U, pcb_msg_deps(&msg, &deps));
	EXPECT_EQ(-EPROTO, pcb_causal_feed_msg(&c, &msg));
	EXPECT_EQ((unsigned int)PCB_CAUSAL_LATE_DEP, c.first.kind);
	EXPECT_EQ(400ULL, c.first.dependent);
	EXPECT_EQ(300ULL, c.first.dependency);
}

/* ------------------------------------------------------------------ */
/* Against the kernel                                                 */
/* ------------------------------------------------------------------ */

FIXTURE(bus) {
	struct pcb *pub;	/* publishes */
	struct pcb *sub;	/* receives */
	char name[PCB_NAME_MAX];
	uint32_t topic_id;
	int handle;
};

FIXTURE_SETUP(bus)
{
	struct pcb_topic_opts opts = PCB_TOPIC_OPTS_DEFAULT;

	self->pub = NULL;
	self->sub = NULL;
	LIBPCB_OPEN(self->pub);
	LIBPCB_OPEN(self->sub);
	pcbt_name(self->name, "lib-filter");
	opts.schema_id = SCHEMA;
	opts.max_msg_size = MAX_MSG;
	ASSERT_EQ(0, pcb_topic_create(self->pub, self->name, &opts,
				      &self->topic_id));
	self->handle = pcb_topic_open(self->pub, self->name, SCHEMA);
	ASSERT_LE(0, self->handle);
	ASSERT_EQ(0, pcb_ring_setup(self->sub, RING));
}

FIXTURE_TEARDOWN(bus)
{
	pcb_close(self->sub);
	pcb_close(self->pub);
	pcbt_cleanup();
}

/* A message to publish and whether the filter under test takes it. */
struct fmsg {
	uint64_t key;
	uint32_t len;
	uint8_t data[16];	/* the first bytes; the rest are zero */
	bool want;
};

static void put16(struct fmsg *m, unsigned int off, uint16_t v)
{
	memcpy(m->data + off, &v, sizeof(v));
}

static void put32(struct fmsg *m, unsigned int off, uint32_t v)
{
	memcpy(m->data + off, &v, sizeof(v));
}

static void put64(struct fmsg *m, unsigned int off, uint64_t v)
{
	memcpy(m->data + off, &v, sizeof(v));
}

static int publish_fmsg(FIXTURE_DATA(bus) *self, const struct fmsg *m,
			uint64_t *id)
{
	uint8_t buf[MAX_MSG] = { 0 };

	memcpy(buf, m->data, sizeof(m->data));
	return pcb_try_publish(self->pub, self->handle, buf, m->len, m->key, id);
}

/*
 * Publishes @m with the subscription's filter set to @f and checks that
 * exactly the wanted messages arrive, in order, and that the counters
 * moved by as much.  @expr names the filter in messages.
 */
static void check_spec(struct __test_metadata *_metadata,
		       FIXTURE_DATA(bus) *self, const struct pcb_filter_spec *f,
		       const char *expr, const struct fmsg *m, unsigned int n)
{
	struct pcb_sub_info before, after;
	uint64_t ids[16];
	unsigned int i, wanted = 0;
	struct pcb_msg msg;

	ASSERT_GE(ARRAY_SIZE(ids), n);
	ASSERT_EQ(0, pcb_set_filter(self->sub, self->topic_id, f))
		TH_LOG("'%s'", expr);
	ASSERT_EQ(0, pcb_sub_info(self->sub, self->topic_id, &before));
	EXPECT_EQ(f->nr_preds, before.nr_preds);

	for (i = 0; i < n; i++)
		ASSERT_EQ(0, publish_fmsg(self, &m[i], &ids[i]));
	for (i = 0; i < n; i++) {
		if (!m[i].want)
			continue;
		wanted++;
		ASSERT_EQ(1, pcb_peek(self->sub, &msg))
			TH_LOG("'%s': message %u", expr, i);
		EXPECT_EQ(ids[i], msg.rec->msg_id)
			TH_LOG("'%s': message %u", expr, i);
		pcb_release(self->sub, &msg);
	}
	EXPECT_EQ(0, pcb_peek(self->sub, &msg)) TH_LOG("'%s'", expr);

	ASSERT_EQ(0, pcb_sub_info(self->sub, self->topic_id, &after));
	EXPECT_EQ(wanted, after.delivered - before.delivered) TH_LOG("'%s'", expr);
	EXPECT_EQ(n - wanted, after.rejected - before.rejected)
		TH_LOG("'%s'", expr);
	EXPECT_EQ(0ULL, after.dropped);
}

/* check_spec() with the filter parsed from @expr. */
static void check_filter(struct __test_metadata *_metadata,
			 FIXTURE_DATA(bus) *self, const char *expr,
			 const struct fmsg *m, unsigned int n)
{
	struct pcb_filter_spec f;

	pcb_filter_init(&f);
	ASSERT_EQ(0, pcb_filter_parse(&f, expr, NULL)) TH_LOG("'%s'", expr);
	check_spec(_metadata, self, &f, expr, m, n);
}

#define M(k, l, w)	{ .key = (k), .len = (l), .want = (w) }

TEST_F(bus, filter_record_fields)
{
	const struct fmsg keys[] = {
		M(41, 1, false), M(42, 1, true), M(43, 1, false),
	};
	const struct fmsg ne[] = { M(0, 0, false), M(1, 0, true) };
	const struct fmsg lt[] = { M(4, 0, true), M(5, 0, false), M(6, 0, false) };
	const struct fmsg le[] = { M(4, 0, true), M(5, 0, true), M(6, 0, false) };
	const struct fmsg gt[] = { M(4, 0, false), M(5, 0, false), M(6, 0, true) };
	const struct fmsg ge[] = { M(4, 0, false), M(5, 0, true), M(6, 0, true) };
	const struct fmsg big[] = {
		M(0, 0, false), M(UINT64_MAX - 1, 0, false),
		M(UINT64_MAX, 0, true),
	};
	const struct fmsg lens[] = {
		M(0, 99, false), M(0, 100, true), M(0, MAX_MSG, true),
		M(0, 0, false),
	};
	const struct fmsg all[] = { M(0, 0, true), M(1, 1, true) };
	const struct fmsg none[] = { M(0, 0, false), M(1, 1, false) };
	char expr[64];

	ASSERT_EQ(0, pcb_subscribe(self->sub, self->name, SCHEMA, 0, NULL));
	check_filter(_metadata, self, "key==42", keys, 3);
	check_filter(_metadata, self, "key!=0", ne, 2);
	check_filter(_metadata, self, "key<5", lt, 3);
	check_filter(_metadata, self, "key<=5", le, 3);
	check_filter(_metadata, self, "key>5", gt, 3);
	check_filter(_metadata, self, "key>=5", ge, 3);
	check_filter(_metadata, self, "key==0xffffffffffffffff", big, 3);
	check_filter(_metadata, self, "len>=100", lens, 4);
	/* The record's uid and pid are the publisher's: ours. */
	snprintf(expr, sizeof(expr), "uid==%u", (unsigned int)geteuid());
	check_filter(_metadata, self, expr, all, 2);
	snprintf(expr, sizeof(expr), "uid!=%u", (unsigned int)geteuid());
	check_filter(_metadata, self, expr, none, 2);
	snprintf(expr, sizeof(expr), "pid==%u", (unsigned int)getpid());
	check_filter(_metadata, self, expr, all, 2);
	snprintf(expr, sizeof(expr), "pid<%u", (unsigned int)getpid());
	check_filter(_metadata, self, expr, none, 2);
	/* Filters that take everything and nothing. */
	check_filter(_metadata, self, "key&0:all", all, 2);
	check_filter(_metadata, self, "key&0:any", none, 2);
}

/* Signed comparisons of record fields, which the text syntax lacks. */
TEST_F(bus, filter_signed_fields)
{
	const struct fmsg keys[] = {
		M((uint64_t)-6, 0, true), M((uint64_t)-5, 0, false),
		M(5, 0, false), M(INT64_MIN, 0, true), M(INT64_MAX, 0, false),
	};
	const struct fmsg lens[] = { M(0, 0, true), M(0, 1, false) };
	const struct fmsg all[] = { M(0, 0, true), M(0, 9, true) };
	struct pcb_filter_spec f;

	ASSERT_EQ(0, pcb_subscribe(self->sub, self->name, SCHEMA, 0, NULL));
	pcb_filter_init(&f);
	ASSERT_EQ(0, pcb_filter_field(&f, PCB_FIELD_KEY, PCB_OP_LT,
				      (uint64_t)-5, PCB_PRED_SIGNED));
	check_spec(_metadata, self, &f, "signed key < -5", keys, 5);
	pcb_filter_init(&f);
	ASSERT_EQ(0, pcb_filter_field(&f, PCB_FIELD_LEN, PCB_OP_LE, 0,
				      PCB_PRED_SIGNED));
	check_spec(_metadata, self, &f, "signed len <= 0", lens, 2);
	/* Our uid, 0 or 65534, is above -1 as a signed number... */
	pcb_filter_init(&f);
	ASSERT_EQ(0, pcb_filter_field(&f, PCB_FIELD_UID, PCB_OP_GT,
				      (uint64_t)-1, PCB_PRED_SIGNED));
	check_spec(_metadata, self, &f, "signed uid > -1", all, 2);
	/* ...and below 0xffffffff unsigned, which is -1 signed. */
	pcb_filter_init(&f);
	ASSERT_EQ(0, pcb_filter_uid(&f, PCB_OP_LT, UINT32_MAX));
	check_spec(_metadata, self, &f, "uid < 0xffffffff", all, 2);
}

TEST_F(bus, filter_bits_and_groups)
{
	const struct fmsg bits_all[] = {
		M(6, 0, true), M(7, 0, true), M(2, 0, false), M(4, 0, false),
		M(0, 0, false), M(0xf6, 0, true),
	};
	const struct fmsg bits_any[] = {
		M(2, 0, true), M(4, 0, true), M(6, 0, true), M(1, 0, false),
		M(0, 0, false), M(9, 0, false),
	};
	const struct fmsg masked[] = {
		M(0x13, 0, true), M(0x03, 0, true), M(0x14, 0, false),
		M(0x1003, 0, true),
	};
	const struct fmsg groups[] = {
		M(1, 4, true), M(2, 4, true), M(3, 4, false), M(1, 3, false),
		M(2, 100, true), M(0, 100, false),
	};

	ASSERT_EQ(0, pcb_subscribe(self->sub, self->name, SCHEMA, 0, NULL));
	check_filter(_metadata, self, "key&0x6:all", bits_all, 6);
	check_filter(_metadata, self, "key&0x6:any", bits_any, 6);
	check_filter(_metadata, self, "key&0x0f==3", masked, 4);
	check_filter(_metadata, self, "key==1|key==2,len>3", groups, 6);
	check_filter(_metadata, self, "len>3,key==1|key==2", groups, 6);
}

TEST_F(bus, filter_payload_fields)
{
	struct fmsg u32s[4] = {
		M(0, 12, false), M(0, 12, true), M(0, 11, false), M(0, 16, true),
	};
	struct fmsg s16s[4] = {
		M(0, 4, true), M(0, 4, false), M(0, 4, false), M(0, 3, false),
	};
	struct fmsg be16s[3] = { M(0, 2, true), M(0, 2, false), M(0, 1, false) };
	struct fmsg u8m[4] = {
		M(0, 4, true), M(0, 4, true), M(0, 4, false), M(0, 3, false),
	};
	struct fmsg sbe32s[3] = { M(0, 8, true), M(0, 8, false), M(0, 8, false) };
	struct fmsg u64s[2] = { M(0, 16, true), M(0, 16, false) };
	struct fmsg s8s[3] = { M(0, 1, true), M(0, 1, true), M(0, 1, false) };
	struct fmsg ne_short[2] = { M(0, 3, false), M(0, 4, true) };

	ASSERT_EQ(0, pcb_subscribe(self->sub, self->name, SCHEMA, 0, NULL));

	put32(&u32s[0], 8, 1000);
	put32(&u32s[1], 8, 1001);
	put32(&u32s[2], 8, 5000);	/* one byte short of the field */
	put32(&u32s[3], 8, UINT32_MAX);
	check_filter(_metadata, self, "u32@8>1000", u32s, 4);

	put16(&s16s[0], 2, (uint16_t)-6);
	put16(&s16s[1], 2, (uint16_t)-5);
	put16(&s16s[2], 2, 5);
	put16(&s16s[3], 2, (uint16_t)-6);	/* too short */
	check_filter(_metadata, self, "s16@2<-5", s16s, 4);
	/* The same bytes unsigned: 0xfffa is large. */
	s16s[0].want = s16s[1].want = s16s[2].want = true;
	check_filter(_metadata, self, "u16@2>=5", s16s, 4);

	put16(&be16s[0], 0, htobe16(0x0800));
	put16(&be16s[1], 0, 0x0800);		/* host order: 00 08 */
	be16s[2].data[0] = 0x08;
	check_filter(_metadata, self, "be16@0==0x0800", be16s, 3);

	u8m[0].data[3] = 0x13;
	u8m[1].data[3] = 0x03;
	u8m[2].data[3] = 0x14;
	u8m[3].data[2] = 0x03;
	check_filter(_metadata, self, "u8@3&0x0f==3", u8m, 4);

	put32(&sbe32s[0], 4, htobe32((uint32_t)-1));
	put32(&sbe32s[1], 4, htobe32(1));
	put32(&sbe32s[2], 4, htobe32(0x7fffffff));
	check_filter(_metadata, self, "sbe32@4<0", sbe32s, 3);

	put64(&u64s[0], 8, UINT64_MAX);
	put64(&u64s[1], 8, UINT64_MAX - 1);
	check_filter(_metadata, self, "u64@8==0xffffffffffffffff", u64s, 2);

	s8s[0].data[0] = 0xff;	/* -1 */
	s8s[1].data[0] = 0x7f;
	s8s[2].data[0] = 0x80;	/* -128 */
	check_filter(_metadata, self, "s8@0>=-1", s8s, 3);

	/* Too short for the field: false, even for !=. */
	check_filter(_metadata, self, "u8@3!=1", ne_short, 2);
}

TEST_F(bus, filter_payload_boundary)
{
	struct pcb_filter_spec f;
	uint8_t buf[MAX_MSG] = { 0 };
	struct pcb_sub_info info;
	struct pcb_msg msg;
	uint64_t id;

	/* The last bytes a message can have, and one past them. */
	pcb_filter_init(&f);
	ASSERT_EQ(0, pcb_filter_parse(&f, "u8@256==7", NULL));
	EXPECT_EQ(-EINVAL, pcb_subscribe_filtered(self->sub, self->name, SCHEMA,
						  0, &f, NULL));
	pcb_filter_init(&f);
	ASSERT_EQ(0, pcb_filter_parse(&f, "u64@249==7", NULL));
	EXPECT_EQ(-EINVAL, pcb_subscribe_filtered(self->sub, self->name, SCHEMA,
						  0, &f, NULL));
	pcb_filter_init(&f);
	ASSERT_EQ(0, pcb_filter_parse(&f, "key==1|u32@253==7", NULL));
	EXPECT_EQ(-EINVAL, pcb_subscribe_filtered(self->sub, self->name, SCHEMA,
						  0, &f, NULL));
	pcb_filter_init(&f);
	ASSERT_EQ(0, pcb_filter_parse(&f, "u8@255==7|u64@248==7", NULL));
	ASSERT_EQ(0, pcb_subscribe_filtered(self->sub, self->name, SCHEMA, 0,
					    &f, NULL));
	ASSERT_EQ(0, pcb_sub_info(self->sub, self->topic_id, &info));
	EXPECT_EQ(2U, info.nr_preds);

	pcb_filter_init(&f);
	ASSERT_EQ(0, pcb_filter_parse(&f, "u64@249==7", NULL));
	EXPECT_EQ(-EINVAL, pcb_set_filter(self->sub, self->topic_id, &f));
	/* The failed change left the filter as it was. */
	ASSERT_EQ(0, pcb_sub_info(self->sub, self->topic_id, &info));
	EXPECT_EQ(2U, info.nr_preds);

	buf[MAX_MSG - 1] = 7;
	ASSERT_EQ(0, pcb_try_publish(self->pub, self->handle, buf, MAX_MSG - 1,
				     0, NULL));
	ASSERT_EQ(0, pcb_try_publish(self->pub, self->handle, buf, MAX_MSG, 1,
				     &id));
	ASSERT_EQ(1, pcb_peek(self->sub, &msg));
	EXPECT_EQ(id, msg.rec->msg_id);
	pcb_release(self->sub, &msg);
	EXPECT_EQ(0, pcb_peek(self->sub, &msg));
}

TEST_F(bus, subscribe_filtered)
{
	struct pcb_filter_spec f;
	struct pcb_sub_info info;
	struct pcb_msg msg;
	uint32_t id = 0;
	uint64_t k;

	pcb_filter_init(&f);
	ASSERT_EQ(0, pcb_filter_key(&f, PCB_OP_GE, 5));
	ASSERT_EQ(0, pcb_subscribe_filtered(self->sub, self->name, SCHEMA, 0,
					    &f, &id));
	EXPECT_EQ(self->topic_id, id);
	for (k = 0; k < 10; k++)
		ASSERT_EQ(0, pcb_try_publish(self->pub, self->handle, "m", 1,
					     k, NULL));
	for (k = 5; k < 10; k++) {
		ASSERT_EQ(1, pcb_peek(self->sub, &msg));
		EXPECT_EQ(k, msg.rec->key);
		pcb_release(self->sub, &msg);
	}
	EXPECT_EQ(0, pcb_peek(self->sub, &msg));

	ASSERT_EQ(0, pcb_sub_info(self->sub, self->topic_id, &info));
	EXPECT_EQ(self->topic_id, info.topic_id);
	EXPECT_EQ(0U, info.flags);
	EXPECT_EQ(1U, info.nr_preds);
	EXPECT_EQ(5ULL, info.delivered);
	EXPECT_EQ(5ULL, info.rejected);
	EXPECT_EQ(0ULL, info.dropped);
}

TEST_F(bus, subscribe_filtered_errors)
{
	struct pcb_filter_spec f;
	struct pcb_sub_info info;

	/* The builder's errors never reach the kernel. */
	pcb_filter_init(&f);
	ASSERT_EQ(0, pcb_filter_key(&f, PCB_OP_EQ, 1));
	ASSERT_EQ(0, pcb_filter_or(&f));
	EXPECT_EQ(-EINVAL, pcb_subscribe_filtered(self->sub, self->name, SCHEMA,
						  0, &f, NULL));
	pcb_filter_init(&f);
	for (int i = 0; i <= PCB_FILTER_MAX_PREDS; i++)
		pcb_filter_key(&f, PCB_OP_NE, (uint64_t)i);
	EXPECT_EQ(-E2BIG, pcb_subscribe_filtered(self->sub, self->name, SCHEMA,
						 0, &f, NULL));
	EXPECT_EQ(-ENOENT, pcb_sub_info(self->sub, self->topic_id, &info));

	/* The subscription's own errors as before. */
	pcb_filter_init(&f);
	EXPECT_EQ(-EINVAL, pcb_subscribe_filtered(NULL, self->name, SCHEMA, 0,
						  &f, NULL));
	EXPECT_EQ(-EPROTOTYPE, pcb_subscribe_filtered(self->sub, self->name,
						      SCHEMA + 1, 0, &f, NULL));
	EXPECT_EQ(-EBADFD, pcb_subscribe_filtered(self->pub, self->name, SCHEMA,
						  0, &f, NULL));
	EXPECT_EQ(-ENOENT, pcb_subscribe_filtered(self->sub, "pcbt-no-such-topic",
						  SCHEMA, 0, &f, NULL));

	/* An empty filter takes everything and counts as none. */
	ASSERT_EQ(0, pcb_subscribe_filtered(self->sub, self->name, SCHEMA,
					    PCB_SUB_LOSSY, &f, NULL));
	ASSERT_EQ(0, pcb_sub_info(self->sub, self->topic_id, &info));
	EXPECT_EQ(PCB_SUB_LOSSY, info.flags);
	EXPECT_EQ(0U, info.nr_preds);
	EXPECT_EQ(-EALREADY, pcb_subscribe_filtered(self->sub, self->name,
						    SCHEMA, 0, &f, NULL));
}

TEST_F(bus, set_filter)
{
	struct pcb_filter_spec f;
	struct pcb_sub_info info;
	struct pcb_msg msg;
	uint64_t k;

	ASSERT_EQ(0, pcb_subscribe(self->sub, self->name, SCHEMA, 0, NULL));
	for (k = 0; k < 3; k++)
		ASSERT_EQ(0, pcb_try_publish(self->pub, self->handle, "a", 1, k, NULL));

	pcb_filter_init(&f);
	ASSERT_EQ(0, pcb_filter_parse(&f, "key==1", NULL));
	ASSERT_EQ(0, pcb_set_filter(self->sub, self->topic_id, &f));
	for (k = 0; k < 3; k++)
		ASSERT_EQ(0, pcb_try_publish(self->pub, self->handle, "b", 1, k, NULL));
	ASSERT_EQ(0, pcb_sub_info(self->sub, self->topic_id, &info));
	EXPECT_EQ(1U, info.nr_preds);
	EXPECT_EQ(4ULL, info.delivered);
	EXPECT_EQ(2ULL, info.rejected);

	/* Removed: everything again, and the counters carry on. */
	ASSERT_EQ(0, pcb_set_filter(self->sub, self->topic_id, NULL));
	for (k = 0; k < 3; k++)
		ASSERT_EQ(0, pcb_try_publish(self->pub, self->handle, "c", 1, k, NULL));
	ASSERT_EQ(0, pcb_sub_info(self->sub, self->topic_id, &info));
	EXPECT_EQ(0U, info.nr_preds);
	EXPECT_EQ(7ULL, info.delivered);
	EXPECT_EQ(2ULL, info.rejected);

	/* What came through, in order: a0 a1 a2 b1 c0 c1 c2. */
	for (k = 0; k < 7; k++) {
		static const char want[] = "aaabccc";
		static const uint64_t keys[] = { 0, 1, 2, 1, 0, 1, 2 };

		ASSERT_EQ(1, pcb_peek(self->sub, &msg));
		EXPECT_EQ(want[k], *(const char *)msg.data);
		EXPECT_EQ(keys[k], msg.rec->key);
		pcb_release(self->sub, &msg);
	}
	EXPECT_EQ(0, pcb_peek(self->sub, &msg));

	/* Errors. */
	pcb_filter_init(&f);
	ASSERT_EQ(0, pcb_filter_key(&f, PCB_OP_EQ, 1));
	ASSERT_EQ(0, pcb_filter_or(&f));
	EXPECT_EQ(-EINVAL, pcb_set_filter(self->sub, self->topic_id, &f));
	EXPECT_EQ(-EINVAL, pcb_set_filter(NULL, self->topic_id, NULL));
	EXPECT_EQ(-EBADFD, pcb_set_filter(self->pub, self->topic_id, NULL));
	ASSERT_EQ(0, pcb_unsubscribe(self->sub, self->topic_id));
	EXPECT_EQ(-ENOENT, pcb_set_filter(self->sub, self->topic_id, NULL));
}

TEST_F(bus, sub_info_errors)
{
	struct pcb_sub_info info;

	EXPECT_EQ(-ENOENT, pcb_sub_info(self->sub, self->topic_id, &info));
	EXPECT_EQ(-EBADFD, pcb_sub_info(self->pub, self->topic_id, &info));
	EXPECT_EQ(-EINVAL, pcb_sub_info(self->sub, self->topic_id, NULL));
	EXPECT_EQ(-EINVAL, pcb_sub_info(NULL, self->topic_id, &info));
}

/* Every message is delivered, dropped or rejected: never two, never none. */
TEST_F(bus, counters_add_up_when_lossy)
{
	struct pcb_topic_info ti;
	struct pcb_filter_spec f;
	struct pcb_sub_info info;
	struct pcb *small;
	char buf[200] = { 0 };
	uint64_t k, received = 0;
	struct pcb_msg msg;

	LIBPCB_OPEN(small);
	ASSERT_EQ(0, pcb_ring_setup(small, PCB_RING_MIN_SIZE));
	pcb_filter_init(&f);
	ASSERT_EQ(0, pcb_filter_parse(&f, "key&1:any", NULL));
	ASSERT_EQ(0, pcb_subscribe_filtered(small, self->name, SCHEMA,
					    PCB_SUB_LOSSY, &f, NULL));
	for (k = 0; k < 100; k++)
		ASSERT_EQ(0, pcb_try_publish(self->pub, self->handle, buf,
					     sizeof(buf), k, NULL));
	while (pcb_peek(small, &msg) == 1) {
		EXPECT_EQ(1ULL, msg.rec->key & 1);
		received++;
		pcb_release(small, &msg);
	}
	ASSERT_EQ(0, pcb_sub_info(small, self->topic_id, &info));
	ASSERT_EQ(0, pcb_topic_info(self->pub, self->name, &ti));
	EXPECT_EQ(100ULL, ti.published);
	EXPECT_EQ(50ULL, info.rejected);
	EXPECT_EQ(received, info.delivered);
	EXPECT_LT(0ULL, info.dropped);
	EXPECT_EQ(ti.published, info.delivered + info.dropped + info.rejected);
	/* The ring header counts the ring's drops: here only this one. */
	EXPECT_EQ(info.dropped, pcb_dropped(small));
	pcb_close(small);
}

/* A message the filter rejects never waits for room in the ring. */
TEST_F(bus, rejected_messages_take_no_room)
{
	char buf[200] = { 0 };
	struct pcb_filter_spec f;
	struct pcb *small;
	int n = 0;

	LIBPCB_OPEN(small);
	ASSERT_EQ(0, pcb_ring_setup(small, PCB_RING_MIN_SIZE));
	pcb_filter_init(&f);
	ASSERT_EQ(0, pcb_filter_key(&f, PCB_OP_EQ, 1));
	ASSERT_EQ(0, pcb_subscribe_filtered(small, self->name, SCHEMA, 0, &f,
					    NULL));
	while (!pcb_try_publish(self->pub, self->handle, buf, sizeof(buf), 1,
				NULL))
		ASSERT_GT(100, ++n);
	EXPECT_EQ(-EAGAIN, pcb_try_publish(self->pub, self->handle, buf,
					   sizeof(buf), 1, NULL));
	/* Full for key 1, yet key 2 goes through, as often as we like. */
	for (n = 0; n < 50; n++)
		ASSERT_EQ(0, pcb_try_publish(self->pub, self->handle, buf,
					     sizeof(buf), 2, NULL));
	pcb_close(small);
}

/* ------------------------------------------------------------------ */
/* The receive filter                                                 */
/* ------------------------------------------------------------------ */

struct recv_state {
	unsigned int calls;
	uint64_t last_key;
	bool reject_all;
};

static bool even_keys(const struct pcb_msg *msg, void *arg)
{
	struct recv_state *st = arg;

	st->calls++;
	st->last_key = msg->rec->key;
	return !st->reject_all && !(msg->rec->key & 1);
}

TEST_F(bus, recv_filter)
{
	struct recv_state st = { 0 };
	struct pcb_msg msg, again;
	uint64_t k;

	ASSERT_EQ(0, pcb_subscribe(self->sub, self->name, SCHEMA, 0, NULL));
	EXPECT_EQ(-EINVAL, pcb_set_recv_filter(NULL, even_keys, &st));
	ASSERT_EQ(0, pcb_set_recv_filter(self->sub, even_keys, &st));
	for (k = 0; k < 10; k++)
		ASSERT_EQ(0, pcb_try_publish(self->pub, self->handle, &k,
					     sizeof(k), k, NULL));
	for (k = 0; k < 10; k += 2) {
		ASSERT_EQ(1, pcb_receive(self->sub, &msg, WAIT));
		EXPECT_EQ(k, msg.rec->key);
		/* Peeking again asks the filter no more. */
		ASSERT_EQ(1, pcb_peek(self->sub, &again));
		EXPECT_EQ(msg.rec, again.rec);
		EXPECT_EQ(k + 1, st.calls);
		pcb_release(self->sub, &msg);
	}
	EXPECT_EQ(0, pcb_peek(self->sub, &msg));
	EXPECT_EQ(10U, st.calls);
	EXPECT_EQ(9ULL, st.last_key);
	EXPECT_EQ(5ULL, pcb_recv_skipped(self->sub));

	/* Without a filter every message again. */
	ASSERT_EQ(0, pcb_set_recv_filter(self->sub, NULL, NULL));
	ASSERT_EQ(0, pcb_try_publish(self->pub, self->handle, "x", 1, 1, NULL));
	ASSERT_EQ(1, pcb_peek(self->sub, &msg));
	EXPECT_EQ(1ULL, msg.rec->key);
	EXPECT_EQ(10U, st.calls);

	/* A message already shown stays shown when a filter comes. */
	st.reject_all = true;
	ASSERT_EQ(0, pcb_set_recv_filter(self->sub, even_keys, &st));
	ASSERT_EQ(1, pcb_peek(self->sub, &again));
	EXPECT_EQ(msg.rec, again.rec);
	EXPECT_EQ(10U, st.calls);
	pcb_release(self->sub, &msg);
	EXPECT_EQ(5ULL, pcb_recv_skipped(self->sub));
	EXPECT_EQ(0ULL, pcb_recv_skipped(NULL));
}

/* Rejecting a message gives its space back; pcb_receive() keeps waiting. */
TEST_F(bus, recv_filter_releases)
{
	struct recv_state st = { .reject_all = true };
	char buf[200] = { 0 };
	uint64_t start, spent;
	struct pcb *small;
	struct pcb_msg msg;
	int n = 0, i;

	LIBPCB_OPEN(small);
	ASSERT_EQ(0, pcb_ring_setup(small, PCB_RING_MIN_SIZE));
	ASSERT_EQ(0, pcb_subscribe(small, self->name, SCHEMA, 0, NULL));
	ASSERT_EQ(0, pcb_set_recv_filter(small, even_keys, &st));
	while (!pcb_try_publish(self->pub, self->handle, buf, sizeof(buf), 0,
				NULL))
		ASSERT_GT(100, ++n);
	ASSERT_LT(0, n);

	/* Nothing to show, but the whole ring was released. */
	EXPECT_EQ(0, pcb_peek(small, &msg));
	EXPECT_EQ((unsigned int)n, st.calls);
	EXPECT_EQ((uint64_t)n, pcb_recv_skipped(small));
	for (i = 0; i < n; i++)
		ASSERT_EQ(0, pcb_try_publish(self->pub, self->handle, buf,
					     sizeof(buf), 0, NULL));

	start = pcbt_now_ns(CLOCK_MONOTONIC);
	EXPECT_EQ(-ETIMEDOUT, pcb_receive(small, &msg, 50 * PCBT_MS));
	spent = pcbt_now_ns(CLOCK_MONOTONIC) - start;
	EXPECT_LE(50 * PCBT_MS, spent);
	EXPECT_EQ(2ULL * n, pcb_recv_skipped(small));
	pcb_close(small);
}

/* ------------------------------------------------------------------ */
/* Dependencies                                                       */
/* ------------------------------------------------------------------ */

TEST_F(bus, publish_deps)
{
	uint64_t a, b, c, d, deps[2];
	const uint64_t *got;
	struct pcb_msg msg;

	ASSERT_EQ(0, pcb_subscribe(self->sub, self->name, SCHEMA, 0, NULL));
	ASSERT_EQ(0, pcb_publish(self->pub, self->handle, "a", 1, 0, 0, &a));
	ASSERT_EQ(0, pcb_publish(self->pub, self->handle, "b", 1, 0, 0, &b));
	/* Any order: the record keeps the publisher's. */
	deps[0] = b;
	deps[1] = a;
	ASSERT_EQ(0, pcb_publish_deps(self->pub, self->handle, "cc", 2, 3,
				      deps, 2, 0, &c));
	EXPECT_LT(b, c);
	ASSERT_EQ(0, pcb_try_publish_deps(self->pub, self->handle, "ddd", 3, 4,
					  &c, 1, &d));
	EXPECT_LT(c, d);
	ASSERT_EQ(0, pcb_publish_deps(self->pub, self->handle, NULL, 0, 5,
				      NULL, 0, 0, NULL));

	ASSERT_EQ(1, pcb_peek(self->sub, &msg));
	EXPECT_EQ(0U, pcb_msg_deps(&msg, &got));
	EXPECT_EQ(sizeof(struct pcb_record), msg.rec->hdr_len);
	pcb_release(self->sub, &msg);
	ASSERT_EQ(1, pcb_peek(self->sub, &msg));
	pcb_release(self->sub, &msg);

	ASSERT_EQ(1, pcb_peek(self->sub, &msg));
	EXPECT_EQ(c, msg.rec->msg_id);
	ASSERT_EQ(2U, pcb_msg_deps(&msg, &got));
	EXPECT_EQ(b, got[0]);
	EXPECT_EQ(a, got[1]);
	EXPECT_EQ(0U, (uintptr_t)got % 8);
	/* The payload after the dependencies, aligned, intact. */
	EXPECT_EQ(2U, msg.len);
	EXPECT_EQ(0, memcmp("cc", msg.data, 2));
	EXPECT_EQ((const char *)got + 16, (const char *)msg.data);
	EXPECT_EQ(0U, (uintptr_t)msg.data % PCB_REC_ALIGN);
	EXPECT_EQ(3ULL, msg.rec->key);
	pcb_release(self->sub, &msg);

	ASSERT_EQ(1, pcb_peek(self->sub, &msg));
	ASSERT_EQ(1U, pcb_msg_deps(&msg, &got));
	EXPECT_EQ(c, got[0]);
	EXPECT_EQ(0, memcmp("ddd", msg.data, 3));
	pcb_release(self->sub, &msg);
	ASSERT_EQ(1, pcb_peek(self->sub, &msg));
	EXPECT_EQ(0U, pcb_msg_deps(&msg, NULL));
	EXPECT_EQ(0U, msg.len);
	pcb_release(self->sub, &msg);
	EXPECT_EQ(0, pcb_peek(self->sub, &msg));
}

TEST_F(bus, publish_max_deps)
{
	uint64_t deps[PCB_MAX_DEPS + 1], id;
	const uint64_t *got;
	struct pcb_msg msg;
	unsigned int i;

	ASSERT_EQ(0, pcb_subscribe(self->sub, self->name, SCHEMA, 0, NULL));
	for (i = 0; i <= PCB_MAX_DEPS; i++)
		ASSERT_EQ(0, pcb_publish(self->pub, self->handle, "x", 1, 0, 0,
					 &deps[i]));
	EXPECT_EQ(-EINVAL, pcb_publish_deps(self->pub, self->handle, "y", 1, 0,
					    deps, PCB_MAX_DEPS + 1, 0, NULL));
	/* The largest payload with the most dependencies fits any ring. */
	{
		static char big[MAX_MSG];

		memset(big, 0x5a, sizeof(big));
		ASSERT_EQ(0, pcb_publish_deps(self->pub, self->handle, big,
					      MAX_MSG, 0, deps, PCB_MAX_DEPS,
					      0, &id));
	}
	for (i = 0; i <= PCB_MAX_DEPS; i++) {
		ASSERT_EQ(1, pcb_peek(self->sub, &msg));
		pcb_release(self->sub, &msg);
	}
	ASSERT_EQ(1, pcb_peek(self->sub, &msg));
	EXPECT_EQ(id, msg.rec->msg_id);
	ASSERT_EQ((unsigned int)PCB_MAX_DEPS, pcb_msg_deps(&msg, &got));
	EXPECT_EQ(0, memcmp(deps, got, PCB_MAX_DEPS * sizeof(uint64_t)));
	EXPECT_EQ((size_t)MAX_MSG, msg.len);
	EXPECT_EQ(0x5a, ((const uint8_t *)msg.data)[MAX_MSG - 1]);
	pcb_release(self->sub, &msg);
}

TEST_F(bus, publish_deps_errors)
{
	uint64_t a, deps[2];
	struct pcb_topic_info ti;

	ASSERT_EQ(0, pcb_publish(self->pub, self->handle, "a", 1, 0, 0, &a));
	/* From the future, zero, twice the same. */
	deps[0] = a + 1000 * PCBT_SEC;
	EXPECT_EQ(-EINVAL, pcb_publish_deps(self->pub, self->handle, "b", 1, 0,
					    deps, 1, 0, NULL));
	deps[0] = 0;
	EXPECT_EQ(-EINVAL, pcb_try_publish_deps(self->pub, self->handle, "b", 1,
						0, deps, 1, NULL));
	deps[0] = a;
	deps[1] = a;
	EXPECT_EQ(-EINVAL, pcb_publish_deps(self->pub, self->handle, "b", 1, 0,
					    deps, 2, 0, NULL));
	EXPECT_EQ(-EFAULT, pcb_publish_deps(self->pub, self->handle, "b", 1, 0,
					    NULL, 1, 0, NULL));
	ASSERT_EQ(0, pcb_topic_info(self->pub, self->name, &ti));
	EXPECT_EQ(1ULL, ti.published);
	EXPECT_EQ(-EINVAL, pcb_publish_deps(NULL, self->handle, "b", 1, 0,
					    deps, 1, 0, NULL));
	EXPECT_EQ(-EMSGSIZE, pcb_publish_deps(self->pub, self->handle, "b",
					      MAX_MSG + 1, 0, deps, 1, 0, NULL));
}

TEST_F(bus, batch_deps)
{
	struct pcb_batch_entry e[3];
	struct pcb_topic_info ti;
	uint64_t a, deps[2];
	const uint64_t *got;
	struct pcb_msg msg;
	unsigned int i;

	ASSERT_EQ(0, pcb_subscribe(self->sub, self->name, SCHEMA, 0, NULL));
	ASSERT_EQ(0, pcb_publish(self->pub, self->handle, "a", 1, 0, 0, &a));
	ASSERT_EQ(1, pcb_peek(self->sub, &msg));
	pcb_release(self->sub, &msg);

	for (i = 0; i < 3; i++)
		pcb_batch_entry_prep(&e[i], self->handle, "e", 1, i);
	deps[0] = a;
	ASSERT_EQ(3, pcb_publish_batch_deps(self->pub, e, 3, 0, 0, deps, 1));
	for (i = 0; i < 3; i++) {
		EXPECT_EQ(0, e[i].result);
		ASSERT_EQ(1, pcb_peek(self->sub, &msg));
		EXPECT_EQ(e[i].msg_id, msg.rec->msg_id);
		ASSERT_EQ(1U, pcb_msg_deps(&msg, &got));
		EXPECT_EQ(a, got[0]);
		pcb_release(self->sub, &msg);
	}

	/* Bad dependencies fail the whole call, nothing published. */
	deps[1] = a;
	EXPECT_EQ(-EINVAL, pcb_publish_batch_deps(self->pub, e, 3, 0, 0, deps, 2));
	EXPECT_EQ(-EINVAL, pcb_publish_batch_deps(self->pub, e, 3,
						  PCB_PUB_ATOMIC, 0, deps, 2));
	EXPECT_EQ(-EFAULT, pcb_publish_batch_deps(self->pub, e, 3, 0, 0, NULL, 1));
	ASSERT_EQ(0, pcb_topic_info(self->pub, self->name, &ti));
	EXPECT_EQ(4ULL, ti.published);
	EXPECT_EQ(0, pcb_peek(self->sub, &msg));
}

/* ------------------------------------------------------------------ */
/* Causal order through the kernel                                    */
/* ------------------------------------------------------------------ */

#define RELAY_MSGS	300

struct relay {
	FIXTURE_DATA(bus) *self;
	struct pcb *in;		/* subscribed to the fixture's topic */
	int out;		/* handle on the second topic */
	int ret;
};

/* Reads each message of the first topic and answers it on the second. */
static void *relay_thread(void *arg)
{
	struct relay *r = arg;
	struct pcb_msg msg;
	uint64_t dep;
	int i;

	for (i = 0; i < RELAY_MSGS && !r->ret; i++) {
		r->ret = pcb_receive(r->in, &msg, WAIT);
		if (r->ret != 1)
			break;
		dep = msg.rec->msg_id;
		pcb_release(r->in, &msg);
		r->ret = pcb_publish_deps(r->self->pub, r->out, &i, sizeof(i),
					  1, &dep, 1, WAIT, NULL);
	}
	return NULL;
}

/*
 * A consumer of both topics sees every answer after the message it
 * answers, and the checker agrees; so it does when the stream is
 * replayed in the wrong order.
 */
TEST_F(bus, causal_order_end_to_end)
{
	struct pcb_topic_opts opts = PCB_TOPIC_OPTS_DEFAULT;
	struct relay r = { .self = self };
	struct pcb_causal_check c;
	char answers[PCB_NAME_MAX];
	static uint64_t ids[2 * RELAY_MSGS];
	static uint64_t dep_of[2 * RELAY_MSGS];
	struct pcb_msg msg;
	pthread_t t;
	int i, n = 0, answered = 0;

	pcbt_name(answers, "lib-answers");
	opts.schema_id = SCHEMA;
	opts.max_msg_size = MAX_MSG;
	ASSERT_EQ(0, pcb_topic_create(self->pub, answers, &opts, NULL));
	r.out = pcb_topic_open(self->pub, answers, SCHEMA);
	ASSERT_LE(0, r.out);
	LIBPCB_OPEN(r.in);
	ASSERT_EQ(0, pcb_ring_setup(r.in, RING));
	ASSERT_EQ(0, pcb_subscribe(r.in, self->name, SCHEMA, 0, NULL));
	ASSERT_EQ(0, pcb_subscribe(self->sub, self->name, SCHEMA, 0, NULL));
	ASSERT_EQ(0, pcb_subscribe(self->sub, answers, SCHEMA, 0, NULL));

	ASSERT_EQ(0, pthread_create(&t, NULL, relay_thread, &r));
	pcb_causal_init(&c);
	for (i = 0; i < RELAY_MSGS; i++) {
		ASSERT_EQ(0, pcb_publish(self->pub, self->handle, &i, sizeof(i),
					 0, WAIT, NULL));
		/* Read as we go, so that the two streams interleave. */
		while (pcb_peek(self->sub, &msg) == 1) {
			const uint64_t *d;

			EXPECT_EQ(0, pcb_causal_feed_msg(&c, &msg));
			ids[n] = msg.rec->msg_id;
			dep_of[n] = pcb_msg_deps(&msg, &d) ? d[0] : 0;
			answered += dep_of[n] != 0;
			n++;
			pcb_release(self->sub, &msg);
		}
	}
	while (n < 2 * RELAY_MSGS) {
		const uint64_t *d;

		ASSERT_EQ(1, pcb_receive(self->sub, &msg, WAIT));
		EXPECT_EQ(0, pcb_causal_feed_msg(&c, &msg));
		ids[n] = msg.rec->msg_id;
		dep_of[n] = pcb_msg_deps(&msg, &d) ? d[0] : 0;
		answered += dep_of[n] != 0;
		n++;
		pcb_release(self->sub, &msg);
	}
	pthread_join(t, NULL);
	EXPECT_EQ(0, r.ret);
	pcb_close(r.in);
	EXPECT_EQ(RELAY_MSGS, answered);
	EXPECT_EQ((uint64_t)2 * RELAY_MSGS, c.messages);
	EXPECT_EQ(0ULL, c.violations);

	/*
	 * Replayed backwards, every answer comes before what it answers:
	 * each is found, unless the window had to forget it.
	 */
	pcb_causal_init(&c);
	for (i = n - 1; i >= 0; i--)
		pcb_causal_feed(&c, ids[i], dep_of[i] ? &dep_of[i] : NULL,
				dep_of[i] != 0);
	EXPECT_EQ((uint64_t)RELAY_MSGS, c.violations + c.forgotten);
	EXPECT_LT(0ULL, c.violations);
}

TEST_HARNESS_MAIN
