/* SPDX-License-Identifier: GPL-2.0 */
/*
 * pcb-stress: shared definitions.
 *
 * One orchestrator process forks every other role and shares with them one
 * anonymous MAP_SHARED region (struct stress_shared), created before the
 * first fork so that every process, respawned ones included, sees it at
 * the same address.  The region holds the run's configuration, the control
 * flags, the counters of the summary and, for every publisher slot and
 * checked topic, the publish log the checked subscribers verify their
 * streams against (see "The publish log" below).
 */
#ifndef PCB_STRESS_H
#define PCB_STRESS_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#include <libpcb.h>

#define STRESS_MAX_PUBS		8
#define STRESS_MAX_TOPICS	4
#define STRESS_MAX_CHECKED	6
#define STRESS_MAX_TRANSIENT	8
#define STRESS_MAX_LOSSY	8
#define STRESS_MAX_CHURN	4
#define STRESS_MAX_HOSTILE	4
#define STRESS_CHURN_POOL	8	/* churn topic names in use */

#define STRESS_MSG_MAX		1024U	/* max_msg_size of every topic */
#define STRESS_BATCH_MAX	16U	/* entries of one batch or uring burst */
#define STRESS_ATOMIC_MAX	8U

#define NSEC			1000000000ULL
#define MSEC			1000000ULL

/* Kernel-style barriers between the processes of the run. */
#define load_acquire(p)		__atomic_load_n((p), __ATOMIC_ACQUIRE)
#define store_release(p, v)	__atomic_store_n((p), (v), __ATOMIC_RELEASE)
#define load_once(p)		__atomic_load_n((p), __ATOMIC_RELAXED)
#define store_once(p, v)	__atomic_store_n((p), (v), __ATOMIC_RELAXED)
#define count_add(p, v)		__atomic_fetch_add((p), (v), __ATOMIC_RELAXED)
#define count_inc(p)		count_add((p), 1)

#define ARRAY_SIZE(a)		(sizeof(a) / sizeof((a)[0]))
#define fallthrough		__attribute__((__fallthrough__))

/*
 * The publish log
 * ---------------
 * Every message a publisher sends to a checked topic has a counter, per
 * (publisher slot, topic), that only ever grows, across the slot's
 * respawns too.  Before the publish call the publisher writes the entry
 * of that counter as PENDING (with its generation), and only then
 * advances next[] past it; after the call it writes the outcome: DONE with
 * the seq and msg_id the kernel returned, or FAILED with the errno.  The
 * tag word is written last with a release store, so a reader that sees
 * DONE sees the seq and msg_id too.
 *
 * A PENDING entry whose generation has been reaped (done_gen) belongs to
 * a publisher killed between logging and recording the outcome: the
 * message may or may not have been accepted ("in doubt").
 *
 * The log of one (slot, topic) is a ring of STRESS_LOG_SIZE entries
 * indexed by counter; a publisher never runs more than that far ahead of
 * the slowest checked subscriber's check cursor (it waits, see
 * pub_log_room()), so no entry is overwritten before every checked
 * subscriber has decided it.
 */
#define STRESS_LOG_BITS		15
#define STRESS_LOG_SIZE		(1U << STRESS_LOG_BITS)

#define LOG_PENDING		1U
#define LOG_DONE		2U
#define LOG_FAILED		3U

#define LOG_TAG(counter, gen, state) \
	(((uint64_t)(counter) << 24) | ((uint64_t)((gen) & 0xffff) << 8) | (state))
#define LOG_COUNTER(tag)	((tag) >> 24)
#define LOG_GEN(tag)		((uint32_t)(((tag) >> 8) & 0xffff))
#define LOG_STATE(tag)		((uint32_t)((tag) & 0xff))

struct log_entry {
	uint64_t tag;
	uint64_t seq;		/* DONE: the seq, 0 when unknown (io_uring) */
	uint64_t msg_id;	/* DONE: the id; FAILED: the errno */
};

/*
 * The payload of every message (host byte order), followed by filler bytes
 * drawn from a generator seeded with the message's hash.  Everything but
 * @gen and @pid is a function of (run seed, slot, topic, counter), so a
 * checker can rebuild a message it never saw, and ask a filter about it.
 */
#define STRESS_MAGIC		0x53545231U	/* "STR1" */
#define STRESS_TOPIC_CHURN	0xffffU		/* topic index of churn topics */

struct stress_msg {
	uint32_t magic;		/* 0 */
	uint16_t slot;		/* 4: publisher slot (churn processes too) */
	uint16_t gen;		/* 6: its generation */
	uint32_t topic;		/* 8: checked topic index, or TOPIC_CHURN */
	uint32_t len;		/* 12: payload length */
	uint64_t counter;	/* 16 */
	uint32_t klass;		/* 24: pseudo-random, for filters */
	uint32_t pid;		/* 28: the publisher's pid */
	uint64_t hash;		/* 32: of the fields above but gen and pid */
};

#define STRESS_MSG_HDR		((uint32_t)sizeof(struct stress_msg))

/*
 * Hostile processes publish payloads that start with HOSTILE_MAGIC (both
 * versions of a buffer they flip while the kernel reads it); entries of
 * batches that must fail as a whole start with DEAD_MAGIC, and no ring may
 * ever receive them.  Honest consumers tell hostile records by their pid
 * (see hostile_pids), not by their bytes: a hostile payload under an
 * honest pid is a forgery and fails the honest checks.
 */
#define HOSTILE_MAGIC		0x48535431U	/* "HST1" */
#define DEAD_MAGIC		0x44454144U	/* "DEAD" */

/* Ways of hostility, each a thread of every hostile process. */
enum hostile_kind {
	HOSTILE_CONS,		/* nonsensical consumer positions */
	HOSTILE_FORGE,		/* consumer position past a BUSY record */
	HOSTILE_FLIP,		/* payload and batch flipped while published */
	HOSTILE_BATCH,		/* oversized and wrapping batches */
	NR_HOSTILE_KINDS,
};

#define STRESS_PID_MAX		(1U << 22)	/* the kernel's PID_MAX_LIMIT */
#define STRESS_DIGESTS		(1U << 16)

/*
 * Faults the run can inject into its own bookkeeping, to show that the
 * checker catches what it claims to catch (--inject).
 */
enum stress_inject {
	INJECT_NONE,
	INJECT_LOSE,		/* checked 0 ignores one record */
	INJECT_DUP,		/* checked 0 reads one record twice */
	INJECT_CORRUPT,		/* checked 0 sees one payload byte flipped */
	INJECT_FAILED,		/* publisher 0 logs a success as a timeout */
	INJECT_SEQ,		/* publisher 0 logs a wrong seq */
	INJECT_FILTER,		/* checked 2 sees one record its filter rejects */
	INJECT_HOSTILE,		/* checked 0 sees a hostile record changed */
	NR_INJECT,
};

/* Roles, for messages and for the kill statistics. */
enum stress_role {
	ROLE_PUB,
	ROLE_CHECKED,
	ROLE_TRANSIENT,
	ROLE_LOSSY,
	ROLE_CHURN,
	ROLE_HOSTILE,
	NR_ROLES,
};

struct stress_config {
	uint64_t seed;
	unsigned int duration_s;
	unsigned int nr_pubs;
	unsigned int nr_topics;
	unsigned int nr_checked;
	unsigned int nr_transient;
	unsigned int nr_lossy;
	unsigned int nr_churn;
	unsigned int nr_hostile;
	unsigned int hostile_skip;	/* 1 << enum hostile_kind: left out */
	unsigned int kill_ms;		/* mean time between kills, 0: none */
	bool use_uring;
	bool verbose;
	bool isolated;			/* no other run shares the bus */
	enum stress_inject inject;
	bool check_pid;			/* records carry our pids */
	uint32_t uid;			/* records carry this uid */
	uint32_t hostile_uid;		/* ... and this one, of hostile processes */
	char prefix[32];		/* of every topic name of the run */
};

/* Counters of the summary; all updated with count_add(). */
struct stress_counters {
	uint64_t violations;

	uint64_t calls[5];		/* single, try, batch, atomic, uring */
	uint64_t accepted;		/* publishes that returned success */
	uint64_t accepted_checked;
	uint64_t failed_timeout;
	uint64_t failed_again;
	uint64_t failed_intr;
	uint64_t failed_canceled;	/* atomic batch or uring chain */
	uint64_t failed_big;		/* E2BIG */
	uint64_t failed_churn;		/* EIDRM, ENOENT, ... on churn topics */
	uint64_t guard_waits;		/* publisher waited for the checkers */

	uint64_t kills[NR_ROLES];
	uint64_t respawns;
	uint64_t sessions;		/* transient and lossy subscriptions */
	uint64_t subscribes;
	uint64_t unsubscribes;
	uint64_t filter_changes;
	uint64_t transient_records;
	uint64_t lossy_records;
	uint64_t lossy_dropped;
	uint64_t lossy_accounted;	/* sessions whose drops were checked */
	uint64_t enomem;		/* ring set-ups refused for memory */

	uint64_t churn_created;
	uint64_t churn_deleted;
	uint64_t churn_checked;		/* churn rounds whose ring was checked */
	uint64_t churn_lists;

	uint64_t hostile_sessions;	/* rings of hostile consumers */
	uint64_t hostile_broken;	/* ... that ended broken */
	uint64_t hostile_cons_writes;	/* nonsensical positions written */
	uint64_t forge_busy;		/* positions written past a BUSY record */
	uint64_t forge_flood;		/* ... at prod_pos, then a big publish */
	uint64_t flip_calls;		/* publish calls with a flipping buffer */
	uint64_t flip_accepted;		/* ... messages accepted */
	uint64_t big_batches;		/* oversized batches, refused as the uapi says */
	uint64_t big_accepted;		/* atomic batches too big for a lossy ring */
	uint64_t hostile_records;	/* hostile records honest consumers got */
	uint64_t hostile_enomem;	/* hostile rings refused for memory */
};

struct pub_slot {
	uint32_t gen;			/* of the live (or last) process */
	uint32_t done_gen;		/* generations up to this one are gone */
	uint64_t done_marker;		/* id of a message published after */
	uint64_t next[STRESS_MAX_TOPICS];	/* next counter per topic */
	uint64_t churn_counter;
};

/* What a checked subscriber reports. */
struct checked_result {
	bool done;
	uint64_t delivered;		/* records read */
	uint64_t verified;		/* accepted publishes found delivered */
	uint64_t filtered_out;		/* accepted, rejected by the filter */
	uint64_t filter_window;		/* ... by one of two, during a change */
	uint64_t filter_changes;
	uint64_t before_start;		/* accepted before it subscribed */
	uint64_t doubt_seen;		/* in doubt, delivered */
	uint64_t doubt_unseen;		/* in doubt, not delivered */
	uint64_t failed_unseen;		/* failed publishes, not delivered */
	uint64_t first_seq[STRESS_MAX_TOPICS];
	uint64_t last_seq[STRESS_MAX_TOPICS];
	char filter[STRESS_MAX_TOPICS][96];
};

struct stress_shared {
	struct stress_config cfg;
	uint64_t start_ns;		/* CLOCK_MONOTONIC at the start */
	uint32_t topic_id[STRESS_MAX_TOPICS];
	int stop;			/* every role but the checked: finish */
	int drain;			/* checked: read up to final_seq */
	uint64_t final_seq[STRESS_MAX_TOPICS];
	uint32_t checked_ready;		/* checked subscribers subscribed */
	uint32_t hostile_ready;		/* hostile processes subscribed */
	uint32_t injected;		/* --inject: done */
	struct stress_counters n;
	struct pub_slot pubs[STRESS_MAX_PUBS];
	/* Check cursors of the checked subscribers, ~0 before they start. */
	uint64_t cursor[STRESS_MAX_CHECKED][STRESS_MAX_PUBS][STRESS_MAX_TOPICS];
	struct checked_result checked[STRESS_MAX_CHECKED];
	/* Bit per pid: the processes of hostile roles, set before they start. */
	uint64_t hostile_pids[STRESS_PID_MAX / 64];
	/* What some subscriber got of a hostile message (see msg.c). */
	uint64_t digest[STRESS_DIGESTS];
	struct log_entry log[STRESS_MAX_PUBS][STRESS_MAX_TOPICS][STRESS_LOG_SIZE];
};

extern struct stress_shared *shm;

/* Who this process is, for messages. */
extern enum stress_role my_role;
extern unsigned int my_index;
extern unsigned int my_gen;

/* util.c */
uint64_t now_ns(void);
void sleep_ns(uint64_t ns);
uint64_t mix64(uint64_t x);
uint64_t rnd_next(uint64_t *state);
uint64_t rnd_below(uint64_t *state, uint64_t n);
bool rnd_chance(uint64_t *state, unsigned int percent);
void rnd_seed(uint64_t *state, uint64_t a, uint64_t b);
const char *role_name(enum stress_role role);
const char *errname(int err);
void violation(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void note(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
bool stopping(void);
void topic_name(char *buf, size_t size, unsigned int topic);
void churn_name(char *buf, size_t size, unsigned int k);
void clock_topic_name(char *buf, size_t size);
int topic_published(struct pcb *bus, const char *name, uint64_t *seq);

/* msg.c */
struct msg_spec {
	uint32_t len;
	uint32_t klass;
	uint64_t key;
	uint64_t hash;
};

void msg_spec(uint16_t slot, uint32_t topic, uint64_t counter,
	      struct msg_spec *spec);
uint32_t msg_build(void *buf, uint16_t slot, uint16_t gen, uint32_t topic,
		   uint64_t counter, uint64_t *key);
int msg_verify(const struct pcb_msg *msg, uint32_t want_topic,
	       const struct stress_msg **out, char *why, size_t why_len);
bool rec_hostile(const struct pcb_record *rec);
int hostile_verify(const struct pcb_msg *msg, char *why, size_t why_len);
void hostile_payload(uint8_t *buf, uint32_t len, uint64_t *rnd,
		     uint32_t topic);

/* filter.c */
void filter_random(struct pcb_filter_spec *f, uint64_t *rnd,
		   uint32_t topic);
void filter_selective(struct pcb_filter_spec *f, uint64_t *rnd,
		      uint32_t topic);
bool filter_eval(const struct pcb_filter_spec *f, uint64_t key,
		 uint32_t uid, uint32_t pid, const void *payload,
		 uint32_t len);
bool filter_eval_counter(const struct pcb_filter_spec *f, uint16_t slot,
			 uint32_t topic, uint64_t counter);
void filter_format(const struct pcb_filter_spec *f, char *buf, size_t size);

/* The roles; each runs in its own process and returns its exit status. */
int publisher_main(unsigned int slot);
int checked_main(unsigned int index);
int transient_main(unsigned int index, bool lossy);
int churn_main(unsigned int index);
int hostile_main(unsigned int index);

#endif /* PCB_STRESS_H */
