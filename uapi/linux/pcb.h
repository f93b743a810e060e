/* SPDX-License-Identifier: GPL-2.0 WITH Linux-syscall-note */
/*
 * pcb - Phase Coherence Bus: a local publish/subscribe bus in the kernel.
 *
 * This header is the whole contract between the module and userspace.
 *
 * Model
 * -----
 * Every open() of /dev/pcb is an *endpoint*.  An endpoint can
 *  - create, look up, list and delete topics;
 *  - open topics for publishing (a small integer *handle*, permission and
 *    schema checked once) and publish messages through the handle;
 *  - own one receive *ring*, set up once and mmap()ed by the consumer, and
 *    subscribe that ring to any number of topics.
 * The endpoint lives until its last file descriptor is closed and its ring
 * is unmapped; then every subscription and handle it holds is removed and
 * the ring is freed.  open() fails with ENFILE or EMFILE past the endpoint
 * limits, with EDQUOT when the caller would make a bus past its limit,
 * and with ENOMEM (see "Limits and accounting").
 *
 * Conventions
 * -----------
 * All ioctls return 0 on success or -1 with errno set.  Every struct has
 * reserved words (named reserved*) that must be zero on input, else EINVAL;
 * the kernel zeroes them on output.  Unknown flag bits give EINVAL.  A bad
 * user pointer gives EFAULT.  An unknown ioctl command gives ENOTTY.
 *
 * Arguments and the buffers they point to need no particular alignment,
 * and may overlap one another: the kernel reads each buffer when it needs
 * it and writes the argument back last.  With a length of 0, the pointer
 * it goes with is not used.  When several errors apply, which one is
 * returned is not specified beyond what each ioctl says.
 *
 * A call that waits (PUBLISH, PUBLISH_BATCH, WAIT) ends with EINTR when a
 * signal arrives, as each ioctl says.  An interruption that is not a
 * signal (io_uring's task work for the same thread) restarts a call that
 * has done nothing yet, transparently, and the restart keeps the call's
 * deadline (timeout_ns counts from the first time the call found it had
 * to wait, not from each restart) for up to 8 threads of
 * one endpoint interrupted at the same moment (a ninth starts its timeout
 * over); a plain batch that has published entries returns, the rest
 * marked EINTR.
 *
 * Errors common to several ioctls:
 *  EINVAL       reserved word not zero, unknown flag, malformed argument
 *  EFAULT       a pointer (the argument or one inside it) is not readable
 *               or writable
 *  ENAMETOOLONG a topic name has no NUL within PCB_NAME_MAX bytes
 *  ENOENT       no topic of that name (or id) exists
 *  EACCES       the topic's mode does not grant the caller the right
 *  EPROTOTYPE   the caller's schema id differs from the topic's
 *  EBADF        a publish handle that this endpoint has not opened
 *  EBADFD       the endpoint has no ring (RING_SETUP not done yet)
 *  EIDRM        the topic behind a publish handle has been deleted
 *  E2BIG        a batch too big to be published all at once (PCB_PUB_ATOMIC)
 *  EDQUOT       the caller's user already holds its fair share of a limited
 *               resource, or its per-user limit (see "Limits and
 *               accounting")
 *
 * Threat model
 * ------------
 * /dev/pcb is mode 0666 by default: every local user may open it, so the
 * kernel treats every argument, every byte of a payload and every word a
 * consumer can write (its consumer page) as hostile, and rereads none of
 * them after checking it.  What a local user can and cannot do to what is
 * not theirs:
 *  - topics: see the names, schemas, sizes, modes and owners of every
 *    topic of their bus; publish, subscribe lossy, subscribe reliably,
 *    see the traffic, only as the topic's mode grants (PCB_MODE_MASK);
 *    delete only their own; take a free plain name first, never a user's
 *    name "~UID/" of another uid (see "Topic names");
 *  - messages: a record's pid and uid are the kernel's, a message's id
 *    comes from the bus's clock, and every subscriber of a message
 *    receives the same bytes, the ones the publisher had when the kernel
 *    copied them; a filter judges exactly those bytes.  No one can put
 *    bytes into another's record, and no one can make a record say it
 *    came from someone else;
 *  - rings: a consumer can break only its own ring, with a nonsensical
 *    cons_pos; the kernel then stops writing to it.  A reliable
 *    subscriber can make the topic's publishers wait (or fail with
 *    EAGAIN) while its ring is full: that is what the execute right of
 *    the mode grants, and publishers choose their timeouts;
 *  - the kernel: every loop and copy done under a spinlock has a bound no
 *    user can raise (README.md states the worst cases); everything a user
 *    makes the module hold is counted against that user until it is
 *    freed, and bounded by the limits below;
 *  - other namespaces: a bus is private to its IPC namespace; nothing in
 *    one changes what another's records say.
 * What a user gives away by granting rights on their topics (write:
 * anyone may publish; read: anyone may listen and see the traffic;
 * execute: anyone may make publishers wait) is theirs to decide.
 *
 * Namespaces
 * ----------
 * Each IPC namespace has its own bus: its own topics, ids of topics,
 * statistics and /proc/pcb listings.  An endpoint belongs to the bus of
 * the IPC namespace its opener was in at open(); a file descriptor passed
 * to a process of another namespace keeps reaching the bus it was opened
 * on, as a POSIX message queue descriptor does.  A bus goes away once its
 * IPC namespace has died and no endpoint of it is left; its topics go
 * with it, about 10 s later at most (the kernel does not tell modules when
 * an IPC namespace dies: pcb looks every 10 s while such a bus is idle, and
 * at every open() and read of /proc/pcb/usage).
 *
 * Topic rights follow the caller's credentials as the kernel sees them:
 * owner uids and gids are kernel ids, so a process that is root in a
 * child user namespace is still its outer uid to a topic of the parent's.
 * The override for owners (CAP_IPC_OWNER) and the right to give a topic
 * away (CAP_CHOWN) count only in the user namespace that owns the bus's
 * IPC namespace.  Uids given to and returned by the topic ioctls are in
 * the caller's user namespace (overflowuid when unmapped).
 *
 * Records carry the publisher's pid (thread group id) and effective uid
 * as the ring's owner sees them, as SCM_CREDENTIALS does for a socket's
 * receiver: in the pid namespace and the user namespace of the process
 * that called RING_SETUP, fixed at that call.  A publisher not visible in
 * that pid namespace shows as pid 0, an unmapped uid as overflowuid
 * (65534).  Filters on PCB_FIELD_PID and PCB_FIELD_UID compare these
 * values.  The kernel takes both from the publishing task: no namespace a
 * publisher or another consumer makes changes what a ring reads, and no
 * one can choose the namespace in which other users' identities are
 * computed.
 *
 * Limits and accounting
 * ---------------------
 * Module parameters (/sys/module/pcb/parameters/, changeable at run time by
 * root; a new value applies to what is created afterwards):
 *  max_topics             topics over all buses (ENOSPC beyond)
 *  max_subscribers        subscriptions of one topic (ENOSPC beyond)
 *  max_endpoints          open endpoints over all buses (ENFILE beyond)
 *  max_endpoints_per_user open endpoints of one user (EMFILE beyond)
 *  max_subscriptions_per_user subscriptions of the rings of one user
 *                         (EDQUOT beyond)
 *  max_handles_per_user   publish handles open by one user (EDQUOT beyond)
 *  max_buses_per_user     buses one user makes by opening the device first
 *                         in an IPC namespace (open() fails with EDQUOT
 *                         beyond)
 *  max_ring_size          largest ring data area (EINVAL beyond)
 *  max_msg_size           largest max_msg_size of a topic (EINVAL beyond)
 * Topics and endpoints are counted against the real uid of their creator,
 * subscriptions (with their filters) against the real uid of the ring's
 * owner, publish handles against the real uid of the endpoint's opener,
 * and a bus against the real uid of the first opener in its IPC
 * namespace (a bus lives as long as its namespace or an endpoint of it),
 * until they are freed.  A topic is counted until TOPIC_DELETE;
 * what a deleted topic leaves behind while publish handles still name it
 * (its name, its id and a few hundred bytes, never its statistics) is
 * counted with those handles.
 *
 * Users are kernel uids: a user who owns subordinate uids (a user
 * namespace mapping a range of them, set up by root through
 * newuidmap) is as many users as the uids it maps, each with its own
 * per-user limits and fair share.  Limits per user bound what one uid
 * holds, not what one person does (ring memory too, charged per uid as
 * io_uring charges it); the global limits (max_topics, max_endpoints,
 * max_subscribers) bound the rest.
 *
 * Fair share: a user may take one more topic, endpoint, or subscription of
 * a topic only while it holds fewer of them than remain free, that is, at
 * most half of what remains; else EDQUOT (EMFILE for endpoints).  One user
 * alone can thus take half of max_topics, and the next user half of the
 * rest.  CAP_SYS_RESOURCE (in the initial user namespace) lifts the
 * fair-share rule, not the limits; so does owning the topic, for its
 * subscriptions.  A caller both at a limit and past its fair share gets
 * the limit's errno (ENOSPC, ENFILE).
 *
 * Ring memory: the pages of a ring (its data area and its two header
 * pages) are locked memory charged to the real user of the caller of
 * RING_SETUP, against the caller's RLIMIT_MEMLOCK, as io_uring charges its
 * rings, until the ring is freed.  RING_SETUP fails with ENOMEM when the
 * charge would take the user past the limit.  Callers with CAP_IPC_LOCK
 * are neither limited nor charged.
 *
 * Fault injection: module parameter fail_nth (root only), when set to N >
 * 0, makes the Nth memory allocation made from then on by a set-up path
 * (open, topic create, topic open, ring set-up, subscribe, filter, the
 * first open of a bus) fail as if memory were short, and then resets
 * itself to 0.  Reading it back tells whether the failure happened.  The
 * caller sees ENOMEM and nothing is left behind.  For tests only.
 *
 * /proc/pcb/usage (root only) counts what the module holds over all buses:
 * buses, topics, endpoints, subscriptions, publish handles, rings, ring
 * pages (data and header pages), filters and users with something
 * charged; every count returns to 0 when everything is closed and deleted
 * and every namespace is gone.
 *
 * /proc/pcb/topics lists every topic of the reader's bus; its published and
 * subscriptions columns read "-" for a topic whose traffic the reader may
 * not see.  /proc/pcb/subscriptions lists only the subscriptions to topics
 * whose traffic the reader may see.  "The reader" is the credentials that
 * opened the file, as for other /proc files.
 *
 * README.md says how much kernel memory one
 * unprivileged user can make the module hold, worst case, with the
 * defaults.
 *
 * Message ids and causality
 * -------------------------
 * Every message gets a 64-bit id from its bus's hybrid logical clock:
 * max(CLOCK_REALTIME in ns when the publish call entered the kernel,
 * previous id of the bus + 1).  Each bus (IPC
 * namespace) has its own clock.  Ids are unique on the bus and strictly
 * increasing in the order messages are published, whatever the topics,
 * threads and CPUs: a message published after another one of the same
 * bus was published (in particular after its record was read) has a
 * greater id.  Buses share nothing: a publisher in one container does not
 * touch the clock of another's.
 *
 * A publish may also name up to PCB_MAX_DEPS ids of messages it depends
 * on (@deps and @nr_deps of the publish structs below).  The kernel checks
 * that none is from the future, gives the new message an id greater than
 * every dependency, and carries them in the record (see struct
 * pcb_record).  EINVAL when @nr_deps > PCB_MAX_DEPS, when a dependency is
 * 0 or from the future (greater than both the last id the bus handed out
 * and CLOCK_REALTIME in ns now), or when the same id is named twice.
 * Whether an id not from the future belonged to a message is not checked:
 * ids are not kept.  The wall clock takes part so that the answer tells
 * nothing of when the bus's last message, maybe on a topic the caller may
 * not see, went out.  With @nr_deps 0, @deps is ignored.
 */
#ifndef _UAPI_LINUX_PCB_H
#define _UAPI_LINUX_PCB_H

#include <linux/types.h>
#include <linux/ioctl.h>

#define PCB_DEVICE_PATH		"/dev/pcb"

/* Length of a topic name buffer, including the terminating NUL. */
#define PCB_NAME_MAX		64

/*
 * Topic names: 1 to PCB_NAME_MAX - 1 characters from [A-Za-z0-9._:/-],
 * not starting with '.', or a user's name: '~', a uid in decimal (no
 * leading zero), '/', then at least one character of the former kind.
 * Anything else is EINVAL; a name without a NUL in its PCB_NAME_MAX bytes
 * is ENAMETOOLONG.
 *
 * Names are first come, first served on a bus, as for POSIX message queues
 * and shared memory: anyone may take a free plain name first.  A user's
 * name "~UID/..." is only ever a topic owned by that uid (as seen in the
 * user namespace that owns the bus's IPC namespace): TOPIC_CREATE gives
 * EPERM for any other owner.  A program that must not be fooled by a
 * squatter uses such a name, or checks the owner with TOPIC_INFO.
 */

/*
 * Topic mode: the low nine permission bits, as for files.  Read (4) grants
 * a lossy subscription and the sight of the topic's traffic (counters,
 * statistics, subscriptions); write (2) grants publish (open for
 * publishing); read and execute (4 + 1) grant a reliable subscription, the
 * right to make publishers wait: a reader without execute can never slow
 * a publisher down.  Owner bits apply when the caller's fsuid is the
 * topic's uid, group bits when the caller is in the topic's gid, else
 * other bits.  CAP_IPC_OWNER in the user namespace that owns the bus's
 * IPC namespace overrides the mode.  A typical mode is 0744: the owner
 * publishes and subscribes reliably, everyone else may listen, lossy.
 */
#define PCB_MODE_MASK		0777

/* Use the caller's fsuid / fsgid as owner (TOPIC_CREATE uid/gid). */
#define PCB_OWNER_CALLER	((__u32)-1)

/*
 * struct pcb_topic_create - PCB_IOC_TOPIC_CREATE
 * @name:	 in: the topic name
 * @schema_id:	 in: schema of the messages; publishers and subscribers must
 *		 name the same id (0 is a valid id like any other)
 * @max_msg_size: in: largest payload in bytes, 1 .. module parameter
 *		 max_msg_size (default 1 MiB), else EINVAL
 * @mode:	 in: permission bits (PCB_MODE_MASK), others EINVAL
 * @uid, @gid:	 in: owner, or PCB_OWNER_CALLER, in the caller's user
 *		 namespace (EINVAL when not mapped there).  As with chown(2),
 *		 a uid other than the caller's fsuid, or a gid the caller is
 *		 not a member of, needs CAP_CHOWN in the user namespace that
 *		 owns the bus's IPC namespace, and ids mapped there, else
 *		 EPERM
 * @flags:	 in: none defined, must be 0
 * @topic_id:	 out: the new topic's id, never 0.  Ids are taken in
 *		 turn from 1 to 2^32 - 1 and then from 1 again, skipping ids
 *		 in use: an id names one live topic at a time, and a deleted
 *		 topic's id comes back only after about 2^32 more topics have
 *		 been created on the bus.  Records of a deleted topic may stay
 *		 in rings: their topic_id then names nothing, or, after such a
 *		 wrap, a newer topic.
 *
 * Errors: EEXIST (the name is taken), ENOMEM, ENOSPC (module parameter
 * max_topics reached, or every id of the bus in use), EDQUOT (the
 * caller's fair share of topics is taken), EPERM (a user's name "~UID/"
 * for an owner other than UID, or an owner the caller may not give),
 * and the common ones.
 */
struct pcb_topic_create {
	char	name[PCB_NAME_MAX];
	__u64	schema_id;
	__u32	max_msg_size;
	__u32	mode;
	__u32	uid;
	__u32	gid;
	__u32	flags;
	__u32	topic_id;
	__u64	reserved[4];
};

/*
 * struct pcb_topic_info - PCB_IOC_TOPIC_INFO and entries of PCB_IOC_TOPIC_LIST
 * @name:	  in (TOPIC_INFO): the name to look up; out (LIST): the name
 * @schema_id, @max_msg_size, @mode, @uid, @gid, @flags: out: as created
 * @topic_id:	  out
 * @flags:	  out: PCB_TOPIC_INFO_HIDDEN when the caller may not see
 *		  the topic's traffic; other bits are the topic's flags
 * @nr_subscribers: out: current number of subscriptions
 * @published:	  out: messages accepted so far (the last sequence number)
 * @reserved:	  in (TOPIC_INFO): must be zero
 *
 * Looking a topic up needs no right on it: its name, schema, size, mode
 * and owner are public, as a file's are to ls -l.  Its traffic is not:
 * @nr_subscribers and @published are 0, and @flags has
 * PCB_TOPIC_INFO_HIDDEN, unless the caller owns the topic, has read
 * permission on it, or has CAP_IPC_OWNER.
 */
#define PCB_TOPIC_INFO_HIDDEN	0x80000000U

struct pcb_topic_info {
	char	name[PCB_NAME_MAX];
	__u64	schema_id;
	__u32	max_msg_size;
	__u32	mode;
	__u32	uid;
	__u32	gid;
	__u32	flags;
	__u32	topic_id;
	__u32	nr_subscribers;
	__u32	reserved0;
	__u64	published;
	__u64	reserved[4];
};

/*
 * struct pcb_topic_list - PCB_IOC_TOPIC_LIST
 * @entries:	in: user pointer to an array of struct pcb_topic_info
 * @capacity:	in: number of entries in the array
 * @start_id:	in: list topics whose id is >= start_id
 * @count:	out: number of entries written (ascending id order)
 * @next_id:	out: start_id for the next call, 0 when the list is complete
 *
 * Topics created or deleted during a walk may or may not be listed.
 */
struct pcb_topic_list {
	__u64	entries;
	__u32	capacity;
	__u32	start_id;
	__u32	count;
	__u32	next_id;
	__u64	reserved[2];
};

/*
 * struct pcb_topic_name - PCB_IOC_TOPIC_DELETE
 *
 * Deleting needs the caller's fsuid to be the topic's owner, or
 * CAP_IPC_OWNER; else EPERM.  Deletion removes every subscription to the
 * topic (records already in rings stay readable), makes every publish
 * handle to it fail with EIDRM, frees the name, the topic's share of
 * max_topics and its statistics at once; the handles keep a small
 * remainder (see "Limits and accounting") until they are closed.
 */
struct pcb_topic_name {
	char	name[PCB_NAME_MAX];
	__u64	reserved[2];
};

/*
 * struct pcb_topic_open - PCB_IOC_TOPIC_OPEN: open a topic for publishing
 * @name:	in
 * @schema_id:	in: must equal the topic's, else EPROTOTYPE
 * @flags:	in: none defined, must be 0
 * @handle:	out: the publish handle, valid for this endpoint only
 * @topic_id:	out
 * @max_msg_size: out
 *
 * Needs write permission on the topic (EACCES).  EMFILE when the endpoint
 * has PCB_MAX_HANDLES handles open, EDQUOT when the caller's user has
 * module parameter max_handles_per_user open.
 */
#define PCB_MAX_HANDLES		1024

struct pcb_topic_open {
	char	name[PCB_NAME_MAX];
	__u64	schema_id;
	__u32	flags;
	__u32	handle;
	__u32	topic_id;
	__u32	max_msg_size;
	__u64	reserved[2];
};

/*
 * struct pcb_topic_close - PCB_IOC_TOPIC_CLOSE: close a publish handle.
 * EBADF when the handle is not open.
 */
struct pcb_topic_close {
	__u32	handle;
	__u32	reserved0;
	__u64	reserved[1];
};

/*
 * struct pcb_publish - PCB_IOC_PUBLISH
 * @handle:	in: from TOPIC_OPEN
 * @flags:	in: PCB_PUB_*
 * @payload:	in: user pointer to the message
 * @len:	in: payload length, 0 .. topic's max_msg_size (EMSGSIZE)
 * @key:	in: publisher-supplied 64-bit key, copied into the record
 * @timeout_ns: in: how long to wait for room in reliable subscribers'
 *		rings, from the first time there was none; 0 waits without
 *		limit.  Ignored with PCB_PUB_NONBLOCK.
 * @msg_id:	out: the message id
 * @seq:	out: the per-topic sequence number (so a publisher learns
 *		how many messages the topic has carried, its own and others')
 * @nr_deps:	in: number of dependencies, 0 .. PCB_MAX_DEPS
 * @deps:	in: user pointer to @nr_deps __u64 ids of messages this one
 *		depends on (see "Message ids and causality" above)
 *
 * A message goes to every reliable subscriber or to none.  When a reliable
 * subscriber's ring has no room:
 *  - with PCB_PUB_NONBLOCK: EAGAIN at once, nothing published;
 *  - else the caller sleeps until there is room (ETIMEDOUT when
 *    timeout_ns passes, EINTR on a signal; nothing published in either
 *    case).
 * Lossy subscribers whose ring is full miss the message (counted in their
 * ring header's @dropped).  A topic with no subscriber accepts the message
 * (it gets an id and a sequence number and reaches nobody).
 *
 * Errors: EBADF, EIDRM, EMSGSIZE, EAGAIN, ETIMEDOUT, EINTR, EFAULT, EINVAL.
 * Its out words (@msg_id, @seq) must be writable: the kernel checks that
 * before publishing, so EFAULT always means nothing was published, and
 * writes nothing else of the struct.  An unreadable payload or
 * dependency array is EFAULT whether or not any subscriber would take the
 * message.
 */
#define PCB_PUB_NONBLOCK	0x00000001U
#define PCB_PUB_FLAGS_ALL	(PCB_PUB_NONBLOCK)

/* Most dependencies one message can declare. */
#define PCB_MAX_DEPS		8

struct pcb_publish {
	__u32	handle;
	__u32	flags;
	__u64	payload;
	__u32	len;
	__u32	nr_deps;
	__u64	key;
	__u64	timeout_ns;
	__u64	msg_id;
	__u64	seq;
	__u64	deps;
	__u64	reserved[1];
};

/*
 * struct pcb_batch_entry - one message of PCB_IOC_PUBLISH_BATCH
 * @handle, @payload, @len, @key: in, as in struct pcb_publish
 * @flags:	in: none defined, must be 0
 * @result:	out: 0, or the negative errno this message failed with
 * @msg_id, @seq: out, when @result is 0
 */
struct pcb_batch_entry {
	__u32	handle;
	__u32	flags;
	__u64	payload;
	__u32	len;
	__s32	result;
	__u64	key;
	__u64	msg_id;
	__u64	seq;
};

/*
 * struct pcb_publish_batch - PCB_IOC_PUBLISH_BATCH: many messages, to one
 * or several topics, in one system call.
 * @entries:	in: user pointer to @count struct pcb_batch_entry, readable
 *		and writable
 * @count:	in: 1 .. PCB_BATCH_MAX, else EINVAL
 * @flags:	in: PCB_PUB_NONBLOCK, PCB_PUB_ATOMIC
 * @timeout_ns:	in: as in struct pcb_publish, for the whole batch
 * @nr_deps, @deps: in: dependencies of every message of the batch, as in
 *		struct pcb_publish (messages of a batch need not name each
 *		other: their ids already increase in array order)
 * @published:	out: number of entries published
 *
 * Entries are published in array order, each with the rules of a single
 * publish (order, all-or-nothing across reliable subscribers, waiting or
 * EAGAIN), so their message ids increase in array order.
 *
 * Without PCB_PUB_ATOMIC an entry that fails does not stop the others: its
 * @result says why.  The ioctl returns 0 once every entry has a result,
 * even if some failed; a signal stops it, the entries not tried get
 * -EINTR.
 *
 * With PCB_PUB_ATOMIC every entry is published or none is.  Ids still
 * increase in array order and each topic keeps its order, but a ring
 * subscribed to several topics of the batch receives the batch's records
 * grouped by topic: first the topics it subscribed to reliably, then the
 * lossy ones, each in ascending topic id (a lossy subscription never takes
 * the room of a reliable one); sort by msg_id to see them in the batch's
 * order.  Entries may name at most PCB_BATCH_ATOMIC_TOPICS distinct
 * topics (else E2BIG), their
 * payloads may add up to PCB_BATCH_ATOMIC_BYTES at most (else E2BIG: the
 * kernel copies them all before it publishes any), their records over
 * all the rings they go to may add up to PCB_BATCH_FANOUT_BYTES at most
 * (else E2BIG: the kernel writes them without being scheduled out, so
 * that they hold up their consumers only as long as the copies take),
 * and every reliable
 * subscriber's ring must be big enough for all the batch's records its
 * subscriptions' filters accept (else E2BIG, however empty the ring is).
 * A lossy subscriber whose ring is too small for them, or too full,
 * misses all of them (counted as dropped).  If one entry is invalid
 * (EBADF, EINVAL,
 * EMSGSIZE, EFAULT, or E2BIG for a topic too many), it gets that error and
 * all the others -ECANCELED, and the ioctl fails with that error; if the
 * batch cannot be published as a whole (EAGAIN, ETIMEDOUT, EINTR, E2BIG,
 * EIDRM), every entry gets that error and so does the ioctl.
 *
 * Errors of the ioctl itself: EFAULT (@entries not readable and writable,
 * @deps not readable), EINVAL (flags, reserved words, @count,
 * dependencies), and with PCB_PUB_ATOMIC those above.  The dependencies
 * are checked first: when they fail, no entry is looked at and no
 * @result is written.  The struct itself must be writable: the kernel
 * checks that before publishing (EFAULT, nothing published).  If results
 * cannot be written back after messages were published (only a racing
 * munmap() or mprotect() can do that), EFAULT, and @published is not
 * updated either.
 */
#define PCB_PUB_ATOMIC		0x00000002U
#define PCB_BATCH_FLAGS_ALL	(PCB_PUB_NONBLOCK | PCB_PUB_ATOMIC)
#define PCB_BATCH_MAX		4096
#define PCB_BATCH_ATOMIC_TOPICS	8
#define PCB_BATCH_ATOMIC_BYTES	(16U << 20)
#define PCB_BATCH_FANOUT_BYTES	(256ULL << 20)

struct pcb_publish_batch {
	__u64	entries;
	__u32	count;
	__u32	flags;
	__u64	timeout_ns;
	__u32	published;
	__u32	nr_deps;
	__u64	deps;
	__u64	reserved[1];
};

/*
 * io_uring: IORING_OP_URING_CMD on a /dev/pcb fd, on a ring set up with
 * IORING_SETUP_SQE128 (else the command completes with EINVAL).
 *
 * cmd_op PCB_URING_CMD_PUBLISH publishes one message (any other cmd_op
 * completes with -ENOTTY); the SQE's command
 * area holds struct pcb_uring_publish.  The completion's res is 0 or a
 * negative errno as for PCB_IOC_PUBLISH.  The message id goes to the
 * first extra word of the CQE when the ring has IORING_SETUP_CQE32, and
 * to *@msg_id_addr when it is not 0 (EFAULT if it cannot be written; the
 * message is published all the same).
 *
 * Backpressure: with PCB_PUB_NONBLOCK a full reliable ring completes the
 * command with EAGAIN.  Without it, the command waits for room (in an
 * io_uring worker; up to @timeout_ns, 0 without limit) and is cancelled,
 * completing with EINTR, when the ring is torn down or its task exits.
 *
 * Registered buffers: with IORING_URING_CMD_FIXED in the SQE's
 * uring_cmd_flags and buf_index naming a registered buffer, @payload is an
 * address inside that buffer.  Its pages are already pinned, so the
 * kernel copies from them directly, without faulting them in or walking
 * the page tables of the caller; EFAULT when @payload and @len are not
 * inside the buffer.
 *
 * With IORING_SETUP_SQPOLL, the polling thread submits: a publisher that
 * keeps it busy makes no system call at all.  The record's pid is the
 * process's, the uid that of the ring's creator.
 *
 * @nr_deps and @deps declare dependencies as in struct pcb_publish; the
 * array is read when the command is issued (for a linked command, once
 * the one before it has completed), so it must stay valid until then.
 */
#define PCB_URING_CMD_PUBLISH	0x01

struct pcb_uring_publish {
	__u32	handle;
	__u32	flags;
	__u64	payload;
	__u32	len;
	__u32	nr_deps;
	__u64	key;
	__u64	timeout_ns;
	__u64	msg_id_addr;
	__u64	deps;
	__u64	reserved[2];
};

/*
 * struct pcb_ring_setup - PCB_IOC_RING_SETUP
 * @data_size:	in: size of the data area in bytes, a power of two from
 *		PCB_RING_MIN_SIZE to module parameter max_ring_size
 *		(default 64 MiB), else EINVAL
 * @flags:	in: none defined, must be 0
 * @page_size:	out: the page size; the offsets below are multiples of it
 * @cons_offset: out: mmap offset of the consumer page (struct
 *		pcb_ring_consumer), the only page that may be mapped writable
 * @header_offset: out: mmap offset of the header page (struct
 *		pcb_ring_header), read-only
 * @data_offset: out: mmap offset of the data area, read-only; it is
 *		mapped twice in a row (2 * data_size bytes) so that a record
 *		that wraps is contiguous in memory
 * @mmap_size:	out: total length of the mapping
 *
 * One ring per endpoint: EBUSY on a second call.  ENOMEM when memory is
 * short, or when the ring's pages would take the user past RLIMIT_MEMLOCK
 * (see "Limits and accounting").
 *
 * mmap() rules (errno of mmap):
 *  - a writable mapping must be MAP_SHARED, start at cons_offset and be
 *    exactly one page long, else EPERM;
 *  - read-only mappings may cover any page range inside mmap_size and can
 *    never be made writable with mprotect();
 *  - a range beyond mmap_size is EINVAL; no ring yet is EBADFD;
 *  - the pages are mapped when mmap() returns: a mapping can be moved
 *    with mremap() but not grown, and a range dropped with MADV_DONTNEED
 *    is not mapped again (SIGBUS when touched): map the ring anew.
 */
#define PCB_RING_MIN_SIZE	4096U

struct pcb_ring_setup {
	__u32	data_size;
	__u32	flags;
	__u32	page_size;
	__u32	reserved0;
	__u64	cons_offset;
	__u64	header_offset;
	__u64	data_offset;
	__u64	mmap_size;
	__u64	reserved[2];
};

/*
 * Filters
 * =======
 *
 * A subscription may carry a filter, evaluated by the kernel when a
 * message is published: a message the filter rejects takes no room in the
 * ring, wakes nobody, never makes a publisher wait for this ring, and is
 * counted in the subscription's @rejected (PCB_IOC_SUB_INFO).
 *
 * A filter is a list of predicates.  Each compares one field of the
 * message, ANDed with @mask, with @value:
 *
 *   field               width    what
 *   PCB_FIELD_KEY       8        the publisher's key
 *   PCB_FIELD_UID       4        the record's uid
 *   PCB_FIELD_PID       4        the record's pid
 *   PCB_FIELD_LEN       4        the payload length
 *   PCB_FIELD_PAYLOAD   @width   payload bytes @offset .. @offset + @width,
 *                                in host byte order (big-endian with
 *                                PCB_PRED_BE); false for a message shorter
 *                                than @offset + @width
 *
 * Operators: EQ, NE, LT, LE, GT, GE compare (field & mask) with @value,
 * unsigned unless PCB_PRED_SIGNED (then both are two's complement numbers
 * of the field's width); ALL holds when every bit of @value is set in
 * (field & mask), ANY when at least one is.  EQ, NE, ALL and ANY compare
 * bits: they take @value in the field's width, signed or not.
 *
 * Predicates are ANDed, except that PCB_PRED_OR joins a predicate to the
 * next one as alternatives: a run of predicates joined by PCB_PRED_OR holds
 * when any of them holds, and the filter accepts a message when every run
 * holds.  For example (key == 1 || key == 2) && len > 100 is
 *   { KEY, EQ, 1, OR }, { KEY, EQ, 2 }, { LEN, GT, 100 }.
 *
 * A filter with no predicate accepts everything, like no filter.
 *
 * Validated when set (EINVAL): nr_preds <= PCB_FILTER_MAX_PREDS, known
 * field, operator and flags, @width 1, 2, 4 or 8 for PAYLOAD and 0 for the
 * other fields, @offset 0 except for PAYLOAD, @offset + @width no more than
 * the topic's max_msg_size, @mask and @value representable in the field's
 * width (for PCB_PRED_SIGNED, @value sign-extended from it), PCB_PRED_BE
 * only on PAYLOAD, no PCB_PRED_OR on the last predicate, @flags and
 * @reserved of struct pcb_filter zero.
 */
#define PCB_FILTER_MAX_PREDS	16

/* pred->field */
#define PCB_FIELD_KEY		1
#define PCB_FIELD_UID		2
#define PCB_FIELD_PID		3
#define PCB_FIELD_LEN		4
#define PCB_FIELD_PAYLOAD	5

/* pred->op */
#define PCB_OP_EQ		1
#define PCB_OP_NE		2
#define PCB_OP_LT		3
#define PCB_OP_LE		4
#define PCB_OP_GT		5
#define PCB_OP_GE		6
#define PCB_OP_ALL		7	/* every bit of @value set */
#define PCB_OP_ANY		8	/* some bit of @value set */

/* pred->flags */
#define PCB_PRED_OR		0x01U	/* this one or the next */
#define PCB_PRED_SIGNED		0x02U	/* signed comparison */
#define PCB_PRED_BE		0x04U	/* big-endian payload field */
#define PCB_PRED_FLAGS_ALL	(PCB_PRED_OR | PCB_PRED_SIGNED | PCB_PRED_BE)

/*
 * struct pcb_filter_pred - one predicate
 * @field:	PCB_FIELD_*
 * @op:		PCB_OP_*
 * @width:	PAYLOAD: bytes compared, 1, 2, 4 or 8; else 0
 * @flags:	PCB_PRED_*
 * @offset:	PAYLOAD: offset of the bytes in the payload; else 0
 * @mask:	ANDed with the field before comparing; 0 means all ones
 * @value:	what the field is compared with
 */
struct pcb_filter_pred {
	__u8	field;
	__u8	op;
	__u8	width;
	__u8	flags;
	__u32	offset;
	__u64	mask;
	__u64	value;
};

/*
 * struct pcb_filter - a filter, as passed to SUBSCRIBE and SET_FILTER
 * @nr_preds:	number of entries in @preds
 * @flags:	none defined, must be 0
 * @preds:	the predicates
 */
struct pcb_filter {
	__u32	nr_preds;
	__u32	flags;
	__u64	reserved;
	struct pcb_filter_pred preds[];
};

/*
 * struct pcb_subscribe - PCB_IOC_SUBSCRIBE / PCB_IOC_UNSUBSCRIBE
 * @name:	in (SUBSCRIBE): the topic; ignored by UNSUBSCRIBE
 * @schema_id:	in (SUBSCRIBE): must equal the topic's, else EPROTOTYPE
 * @flags:	in (SUBSCRIBE): PCB_SUB_*; must be 0 for UNSUBSCRIBE
 * @topic_id:	out (SUBSCRIBE), in (UNSUBSCRIBE)
 * @filter:	in (SUBSCRIBE): user pointer to a struct pcb_filter, or 0
 *		for none; must be 0 for UNSUBSCRIBE
 *
 * SUBSCRIBE needs read permission, and for a reliable subscription read
 * and execute permission (EACCES; see PCB_MODE_MASK), and a ring (EBADFD)
 * big enough for one record of the topic's largest message with
 * PCB_MAX_DEPS dependencies (ENOSPC); EINVAL for a filter that does not
 * validate.  EALREADY when the ring is already subscribed to the topic.
 * ENOSPC also when the topic has module parameter max_subscribers
 * subscriptions (to tell the two apart, compare the ring's data_size with
 * PCB_REC_SIZE() of the topic's max_msg_size from TOPIC_INFO); EDQUOT when
 * the ring's user holds its fair share of them, or module parameter
 * max_subscriptions_per_user subscriptions over all its rings.  The
 * struct must be writable: checked before subscribing, so EFAULT means no
 * subscription was made.
 * UNSUBSCRIBE: ENOENT when the ring is not subscribed to topic_id.
 *
 * Where a subscription starts and ends: SUBSCRIBE, UNSUBSCRIBE and each
 * publish to the topic happen one at a time, in the topic's order.  A
 * subscription is offered every message published after SUBSCRIBE
 * returns and none published before SUBSCRIBE was called; a publish that
 * runs at the same time falls wholly on one side.  The same holds for
 * UNSUBSCRIBE, closing the ring, and the filter set by PCB_IOC_SET_FILTER.
 *
 * Reliable (default): publishers wait for room (or fail with EAGAIN) and a
 * message reaches all reliable subscribers or none.
 * Lossy (PCB_SUB_LOSSY): when the ring is full this subscriber misses the
 * message; header->dropped counts it and the consumer sees a gap in the
 * topic's sequence numbers.  A lossy subscriber never slows a publisher.
 */
#define PCB_SUB_LOSSY		0x00000001U
#define PCB_SUB_FLAGS_ALL	(PCB_SUB_LOSSY)

struct pcb_subscribe {
	char	name[PCB_NAME_MAX];
	__u64	schema_id;
	__u32	flags;
	__u32	topic_id;
	__u64	filter;
	__u64	reserved[1];
};

/*
 * struct pcb_sub_filter - PCB_IOC_SET_FILTER: replace the filter of one of
 * this ring's subscriptions, while messages flow
 * @topic_id:	in: the subscription's topic
 * @flags:	in: none defined, must be 0
 * @filter:	in: user pointer to the new struct pcb_filter, or 0 to
 *		remove the filter
 *
 * Atomic: every message is checked against either the old filter or the
 * new one, never a mix; messages published after the ioctl returns see
 * the new one.  The counters of struct pcb_sub_info carry on.
 * Errors: ENOENT (the ring is not subscribed to @topic_id), EBADFD (no
 * ring), EINVAL (the filter does not validate), EFAULT, ENOMEM.
 */
struct pcb_sub_filter {
	__u32	topic_id;
	__u32	flags;
	__u64	filter;
	__u64	reserved[2];
};

/*
 * struct pcb_sub_info - PCB_IOC_SUB_INFO: one subscription of this ring
 * @topic_id:	in
 * @flags:	out: its PCB_SUB_* flags (ignored on input)
 * @nr_preds:	out: predicates of its filter, 0 when it has none
 * @delivered:	out: records written into the ring for it
 * @dropped:	out: messages it missed because the ring was full (lossy)
 * @rejected:	out: messages its filter rejected
 *
 * The counters start at 0 when the subscription is made.  Messages its
 * filter accepts but a broken ring no longer receives are in none of them
 * (the statistics count them as dropped_broken).
 * Errors: ENOENT, EBADFD, EINVAL (@reserved words), EFAULT.
 */
struct pcb_sub_info {
	__u32	topic_id;
	__u32	flags;
	__u32	nr_preds;
	__u32	reserved0;
	__u64	delivered;
	__u64	dropped;
	__u64	rejected;
	__u64	reserved[4];
};

/*
 * struct pcb_wait - PCB_IOC_WAIT: sleep until the ring has a record.
 * @timeout_ns:	in: 0 waits without limit
 * @flags:	in: none defined, must be 0
 *
 * Sets PCB_CONS_NEED_WAKEUP in the consumer page itself, so the caller
 * cannot miss a wake-up.  Returns 0 as soon as the record at cons_pos is
 * complete (at once if so on entry), ETIMEDOUT, EINTR, EBADFD (no ring) or EPIPE (the
 * ring is broken, see PCB_RING_BROKEN).  It also does what PCB_IOC_NOTIFY
 * does, as the caller has presumably consumed what it had.
 */
struct pcb_wait {
	__u64	timeout_ns;
	__u32	flags;
	__u32	reserved0;
	__u64	reserved[2];
};

/*
 * Ring layout and barrier protocol
 * ================================
 *
 * The mapping (offsets from struct pcb_ring_setup):
 *
 *   cons_offset    one page, RW: struct pcb_ring_consumer
 *   header_offset  one page, RO: struct pcb_ring_header
 *   data_offset    data_size bytes, RO, then the same pages again
 *
 * Positions are free-running __u64 byte counts; the byte at position p is
 * data[p & (data_size - 1)].  Records start at 8-byte aligned positions
 * and never need to be split: thanks to the double mapping, a record that
 * crosses the end of the area continues in the second copy.
 *
 * Each record starts with struct pcb_record.  Its first word, @len, holds
 * the record length in bytes (header, dependencies and payload, without
 * the padding to 8 bytes) and two flag bits:
 *   PCB_REC_BUSY     the kernel is still writing the record: stop here and
 *                    retry later (later records may be complete already
 *                    but must not be consumed before this one)
 *   PCB_REC_DISCARD  skip the record: it was reserved but not published
 * The next record starts at pos + PCB_REC_SIZE(len).
 *
 * Who writes what:
 *
 *   field                       writer     reader
 *   header->prod_pos            kernel     consumer
 *   record words                kernel     consumer
 *   header->dropped, ->flags    kernel     consumer
 *   cons->cons_pos              consumer   kernel
 *   cons->flags                 consumer   kernel (the kernel sets
 *                                          NEED_WAKEUP in PCB_IOC_WAIT and
 *                                          poll)
 *
 * Barriers (each acquire pairs with the release on the same line):
 *
 *   kernel (producer)                   consumer
 *   ------------------------------------------------------------------------
 *   1. reserve: prod_pos advanced with  A. p = load_acquire(&prod_pos)
 *      store_release after writing         pairs with 1: the BUSY len word
 *      len = size | BUSY at the old        of every record below p is
 *      position                            visible
 *   2. commit: write the record, then   B. l = load_acquire(&rec->len) for
 *      store_release(&rec->len, size)      each record below p; pairs with
 *      (BUSY cleared)                      2: if !(l & BUSY) the record's
 *                                          contents are visible
 *   3. space check: c = load_acquire(   C. after reading the records,
 *      &cons_pos) pairs with C before      store_release(&cons_pos, new);
 *      the kernel reuses the bytes; it     the kernel may overwrite them
 *      then reads the len words from       only after this store
 *      its oldest uncommitted record on
 *      (the pending position), which
 *      the acquire orders after every
 *      commit the consumer saw
 *   4. wake-up: after 2, smp_mb() then  D. to sleep: set NEED_WAKEUP in
 *      if (cons->flags & NEED_WAKEUP)      cons->flags, smp_mb() (pairs
 *      wake the consumer; the full         with 4), re-check A/B, then
 *      barrier pairs with D                poll()/PCB_IOC_WAIT.  Clear it
 *                                          when going back to spinning
 *   5. a publisher that must wait sets  E. after C, smp_mb() (pairs with
 *      PCB_RING_PUB_WAITING in header->    5), then if header->flags has
 *      flags, smp_mb(), re-checks          PCB_RING_PUB_WAITING, call
 *      cons_pos, then sleeps               PCB_IOC_NOTIFY to wake publishers
 *
 * A consumer that skips D and E still works: it can always poll(), and a
 * waiting publisher re-checks the ring every few milliseconds on its own.
 * poll() and PCB_IOC_WAIT set NEED_WAKEUP and leave it set: a consumer that
 * lives in epoll_wait() is woken by every publish, the price of sleeping.
 * One that goes back to spinning clears it, and publishers stop paying.
 *
 * A record takes PCB_REC_SIZE(hdr_len + payload length) bytes of ring
 * (hdr_len: 64 bytes of header, plus 8 per causal dependency): a ring can
 * subscribe to a topic only if one record of the topic's max_msg_size
 * with PCB_MAX_DEPS dependencies fits in it.
 *
 * The kernel never trusts cons_pos.  It keeps its own pending position:
 * the start of the oldest record it has reserved and not yet committed
 * (as the BPF ring buffer does), and it never hands out ring bytes at or
 * beyond pending + data_size, whatever cons_pos says: no consumer can make
 * the kernel write a record over one it is still writing.  Sizes and
 * payloads are never read back from the ring or from the publisher's
 * memory once checked: the kernel copies each payload once into its own
 * memory, runs the filters on that copy and writes every subscriber's
 * record from it.
 *
 * A cons_pos that makes no sense (ahead of prod_pos, more than data_size
 * behind it, or past a record that is still BUSY) breaks only this ring:
 * the kernel sets PCB_RING_BROKEN in header->flags, stops delivering to
 * it, and WAIT, poll (POLLERR) and new subscriptions (EPIPE) report it.
 * The only way out is a new endpoint.  Other rings, publishers and the
 * kernel do not notice.
 */

/*
 * poll(): POLLIN | POLLRDNORM while the record at cons_pos is complete
 * (prod_pos != cons_pos and its len word not BUSY), POLLERR for a broken
 * ring or an endpoint without a ring.  Writability is not reported:
 * whether a publish would wait depends on the topic, not on the endpoint.
 */

#define PCB_RING_MAGIC		0x50434231U	/* "PCB1" */
/* 2: cons->flags moved off cons_pos's cache line */
#define PCB_RING_VERSION	2U

/* header->flags */
#define PCB_RING_PUB_WAITING	0x00000001U	/* a publisher waits for room */
#define PCB_RING_BROKEN		0x00000002U	/* cons_pos made no sense */

/* cons->flags */
#define PCB_CONS_NEED_WAKEUP	0x00000001U	/* consumer is going to sleep */

/*
 * struct pcb_ring_consumer - the consumer page (RW)
 * @cons_pos:	consumer position, on its own cache line: the consumer
 *		stores it after every message it consumes, the kernel reads
 *		it only when a ring looks full by the position it last saw
 * @flags:	PCB_CONS_*, on another cache line: every publish reads it,
 *		the consumer writes it only when it goes to sleep or back to
 *		spinning, so that the publisher's read does not pull the
 *		line the consumer keeps writing
 */
struct pcb_ring_consumer {
	__u64	cons_pos;
	__u64	reserved0[7];
	__u32	flags;
	__u32	reserved1;
};

/*
 * The bus clock: what record->tsc counts and what latency accounting uses.
 *  PCB_CLOCK_TSC    TSC cycles (rdtsc), on a machine whose TSC ticks at a
 *                   constant rate, also in idle (constant_tsc, nonstop_tsc)
 *                   and the same on every CPU; tsc_khz is its frequency
 *  PCB_CLOCK_MONO   CLOCK_MONOTONIC nanoseconds, where the TSC is not
 *                   usable (tsc_khz is then 0), or when the module
 *                   parameter clock=mono asks for it
 * Either way a consumer turns record->tsc into a one-way latency without
 * a system call: rdtsc() - tsc cycles, or clock_gettime(CLOCK_MONOTONIC)
 * - tsc nanoseconds (a vDSO call).  The monotonic reading is the initial
 * time namespace's: a consumer in a time namespace subtracts its
 * monotonic offset (/proc/self/timens_offsets) first.
 */
#define PCB_CLOCK_TSC		1U
#define PCB_CLOCK_MONO		2U

/*
 * struct pcb_ring_header - the read-only header page.
 * @magic, @version: PCB_RING_MAGIC, PCB_RING_VERSION
 * @data_size:	size of the data area (a power of two)
 * @record_align: alignment of records (8)
 * @flags:	PCB_RING_*
 * @tsc_khz:	TSC frequency in kHz when @clock is PCB_CLOCK_TSC, else 0
 * @dropped:	messages lossy subscriptions of this ring missed
 * @clock:	PCB_CLOCK_*: the unit of record->tsc
 * @prod_pos:	producer position, on its own cache line
 */
struct pcb_ring_header {
	__u32	magic;
	__u32	version;
	__u32	data_size;
	__u32	record_align;
	__u32	flags;
	__u32	tsc_khz;
	__u64	dropped;
	__u32	clock;
	__u32	reserved0;
	__u64	reserved[3];
	__u64	prod_pos;
	__u64	reserved2[7];
};

#define PCB_REC_BUSY		0x80000000U
#define PCB_REC_DISCARD		0x40000000U
#define PCB_REC_LEN_MASK	(PCB_REC_DISCARD - 1)
#define PCB_REC_ALIGN		8U
#define PCB_REC_SIZE(len)	\
	((((len) & PCB_REC_LEN_MASK) + PCB_REC_ALIGN - 1) & ~(PCB_REC_ALIGN - 1))

/*
 * struct pcb_record - the header of every record in the ring.
 * @len:	see above
 * @topic_id:	the topic the message was published to
 * @msg_id:	hybrid-logical-clock id: max(CLOCK_REALTIME in ns, previous
 *		id + 1), so strictly increasing and unique on the bus, close
 *		to wall-clock time, and never going back when the clock does
 * @seq:	per-topic sequence number, 1 for the first message
 * @tsc:	the bus clock (see PCB_CLOCK_*) read when the publish
 *		entered the kernel
 * @key:	the publisher's key
 * @payload_len: bytes of payload
 * @pid, @uid:	the publishing process (thread group id) and its effective
 *		uid, taken by the kernel, as the bus sees them (see
 *		"Namespaces" above)
 * @nr_deps:	number of dependencies the publisher declared, 0 ..
 *		PCB_MAX_DEPS; their ids follow this header as __u64s, in
 *		the publisher's order, before the payload
 * @hdr_len:	offset of the payload from the start of the record:
 *		sizeof(struct pcb_record) + 8 * @nr_deps
 */
struct pcb_record {
	__u32	len;
	__u32	topic_id;
	__u64	msg_id;
	__u64	seq;
	__u64	tsc;
	__u64	key;
	__u32	payload_len;
	__u32	pid;
	__u32	uid;
	__u16	nr_deps;
	__u16	hdr_len;
	__u64	reserved;
};

/*
 * Statistics
 * ==========
 *
 * PCB_IOC_STATS fills a struct pcb_stats for the whole bus or one topic.
 * The struct grows at its end in later versions: the caller says how big
 * its struct is (@size of struct pcb_stats_query), the kernel fills that
 * much of what it knows, zeroes the rest, and says how much it filled.
 *
 * Counters count from the module's load (bus) or the topic's creation,
 * and never go back.  Each is a sum over CPUs read without stopping
 * publishers, so two counters read together may be a few messages apart.
 *
 * Latency histograms are in nanoseconds, log2 buckets: bucket 0 counts
 * values of 0, bucket i (1 .. PCB_HIST_BUCKETS - 2) values in
 * [2^(i-1), 2^i), the last bucket everything from 2^(PCB_HIST_BUCKETS - 2)
 * up.  Buckets are not cumulative.  @count is their sum when no publisher
 * runs; while publishers run, @count, @sum_ns and the buckets are read one
 * after the other and may be a few values apart.
 */
#define PCB_STATS_VERSION	1U
#define PCB_HIST_BUCKETS	40

struct pcb_hist {
	__u64	count;
	__u64	sum_ns;
	__u64	max_ns;
	__u64	buckets[PCB_HIST_BUCKETS];
};

/*
 * struct pcb_stats - out: the figures
 * @version:	PCB_STATS_VERSION
 * @topic_id:	the topic, 0 for the whole bus
 * @clock, @tsc_khz: the bus clock (PCB_CLOCK_*) and the TSC frequency
 * @nr_topics:	topics (1 for a topic)
 * @nr_subscriptions: subscriptions (to the topic, or on the bus)
 * @published:	messages accepted (each got an id)
 * @bytes:	payload bytes of those messages
 * @delivered:	records written into rings
 * @dropped_full: records lossy subscriptions missed, their ring full
 * @dropped_broken: records not written because the ring is broken
 * @rejected:	records subscriptions' filters rejected
 * @blocked:	publishes that had to wait for room (once per publish)
 * @timeouts:	publishes that gave up waiting (ETIMEDOUT)
 * @would_block: publishes refused for lack of room (EAGAIN without
 *		waiting: PCB_PUB_NONBLOCK, io_uring's first try excluded)
 * @wakeups:	wake-ups publishers gave consumers that had set
 *		PCB_CONS_NEED_WAKEUP and wait in PCB_IOC_WAIT, poll() or
 *		epoll (an epoll registration counts as waiting)
 * @ring_used, @ring_size: bytes in use and total size of the rings
 *		subscribed to the topic (bus: of every ring), now
 * @ring_fill_max: fill level of the fullest of those rings, in per mille
 * @flags:	PCB_STATS_PARTIAL: bus figures summed over the topics the
 *		caller may see (see struct pcb_stats_query)
 * @publish_ns:	publish-path cost: from entry into the kernel to the
 *		commit of the message into every ring, waits included; one
 *		value per publish call and topic (a PCB_PUB_ATOMIC batch adds
 *		one per topic it names; a plain batch one per run of up to
 *		16 consecutive entries to one topic that went out together,
 *		and one per entry that went out on its own)
 */
struct pcb_stats {
	__u32	version;
	__u32	topic_id;
	__u32	clock;
	__u32	tsc_khz;
	__u32	nr_topics;
	__u32	nr_subscriptions;
	__u64	published;
	__u64	bytes;
	__u64	delivered;
	__u64	dropped_full;
	__u64	dropped_broken;
	__u64	rejected;
	__u64	blocked;
	__u64	timeouts;
	__u64	would_block;
	__u64	wakeups;
	__u64	ring_used;
	__u64	ring_size;
	__u32	ring_fill_max;
	__u32	flags;
	__u64	reserved[7];
	struct pcb_hist publish_ns;
};

/*
 * struct pcb_stats_query - PCB_IOC_STATS
 * @stats:	in: user pointer to a struct pcb_stats
 * @size:	in: its size, PCB_STATS_SIZE_V1 .. PCB_STATS_SIZE_MAX (else
 *		EINVAL); what the kernel does not know is zeroed;
 *		out: bytes filled
 * @topic_id:	in: a topic id, or 0 for the whole bus
 * @flags:	in: none defined, must be 0
 *
 * A topic's figures are its traffic: they need the right to see it (the
 * topic's owner, read permission, or CAP_IPC_OWNER), else EACCES.  The
 * bus's figures (@topic_id 0) are the bus's own counters for a caller with
 * CAP_IPC_OWNER in the user namespace that owns the bus's IPC namespace;
 * for anyone else they are the sums over the live topics the caller may
 * see (rings counted once per subscription to them, @nr_topics counting
 * every topic), with PCB_STATS_PARTIAL in @flags: no one learns the
 * traffic of a topic they may not read from the totals.
 * Errors: ENOENT (no topic @topic_id), EACCES, EINVAL, EFAULT.
 */
#define PCB_STATS_PARTIAL	0x00000001U

#define PCB_STATS_SIZE_V1	528U
#define PCB_STATS_SIZE_MAX	65536U

struct pcb_stats_query {
	__u64	stats;
	__u32	size;
	__u32	topic_id;
	__u32	flags;
	__u32	reserved0;
	__u64	reserved[2];
};

#define PCB_IOC_MAGIC		0xB8

#define PCB_IOC_TOPIC_CREATE	_IOWR(PCB_IOC_MAGIC, 0x01, struct pcb_topic_create)
#define PCB_IOC_TOPIC_DELETE	_IOW(PCB_IOC_MAGIC, 0x02, struct pcb_topic_name)
#define PCB_IOC_TOPIC_INFO	_IOWR(PCB_IOC_MAGIC, 0x03, struct pcb_topic_info)
#define PCB_IOC_TOPIC_LIST	_IOWR(PCB_IOC_MAGIC, 0x04, struct pcb_topic_list)
#define PCB_IOC_TOPIC_OPEN	_IOWR(PCB_IOC_MAGIC, 0x05, struct pcb_topic_open)
#define PCB_IOC_TOPIC_CLOSE	_IOW(PCB_IOC_MAGIC, 0x06, struct pcb_topic_close)
#define PCB_IOC_PUBLISH		_IOWR(PCB_IOC_MAGIC, 0x07, struct pcb_publish)
#define PCB_IOC_RING_SETUP	_IOWR(PCB_IOC_MAGIC, 0x08, struct pcb_ring_setup)
#define PCB_IOC_SUBSCRIBE	_IOWR(PCB_IOC_MAGIC, 0x09, struct pcb_subscribe)
#define PCB_IOC_UNSUBSCRIBE	_IOW(PCB_IOC_MAGIC, 0x0a, struct pcb_subscribe)
#define PCB_IOC_WAIT		_IOW(PCB_IOC_MAGIC, 0x0b, struct pcb_wait)
/*
 * PCB_IOC_NOTIFY: no argument (must be 0, else EINVAL).  Tells the kernel
 * the consumer has released records: clears PCB_RING_PUB_WAITING and wakes
 * publishers waiting for room.  EBADFD without a ring.
 */
#define PCB_IOC_NOTIFY		_IO(PCB_IOC_MAGIC, 0x0c)
#define PCB_IOC_PUBLISH_BATCH	_IOWR(PCB_IOC_MAGIC, 0x0d, struct pcb_publish_batch)
#define PCB_IOC_SET_FILTER	_IOW(PCB_IOC_MAGIC, 0x0e, struct pcb_sub_filter)
#define PCB_IOC_SUB_INFO	_IOWR(PCB_IOC_MAGIC, 0x0f, struct pcb_sub_info)
#define PCB_IOC_STATS		_IOWR(PCB_IOC_MAGIC, 0x10, struct pcb_stats_query)

#endif /* _UAPI_LINUX_PCB_H */
