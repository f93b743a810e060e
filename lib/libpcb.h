/* SPDX-License-Identifier: LGPL-2.1-or-later OR MIT */
/*
 * libpcb - userspace library for the pcb bus (/dev/pcb).
 *
 * Conventions
 * -----------
 * Every function that can fail returns 0 (or a non-negative value where
 * documented) on success and a negative errno on failure, like liburing.
 * Results are never passed back through errno; errno's value after a call
 * is unspecified.  The errors listed for each function are those the
 * library itself produces; every ioctl error documented in <linux/pcb.h>
 * is passed through unchanged as well.
 *
 * Threads
 * -------
 * One endpoint (struct pcb) may be shared by threads for everything except
 * the receive side: topic management, pcb_topic_open()/pcb_topic_close()
 * and publishing are safe to call concurrently from any number of threads.
 * The ring (pcb_peek(), pcb_release(), pcb_wait(), pcb_receive(), and
 * pcb_set_recv_filter(), whose filter runs inside them) has a single
 * consumer: only one thread at a time may use it.  Subscribing, and
 * pcb_set_filter() and pcb_sub_info(), are safe from any thread.
 * pcb_close() must not race with any other call on the same endpoint.  An
 * io_uring publisher (struct pcb_uring_pub) has a single submitter
 * likewise.  Filter specs (struct pcb_filter_spec) and causal checkers
 * (struct pcb_causal_check) are plain memory of the caller's: one thread
 * at a time may change one.
 */
#ifndef LIBPCB_H
#define LIBPCB_H

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <linux/pcb.h>

#ifdef __cplusplus
extern "C" {
#endif

/* An endpoint: one open file description of /dev/pcb and its ring. */
struct pcb;

/**
 * pcb_open() - open a new endpoint on /dev/pcb
 * @out: where to store the endpoint
 *
 * Return: 0, or -ENOMEM, or the error of open(2) (e.g. -ENOENT when the
 * module is not loaded, -EACCES when the device's mode denies it, -EMFILE
 * or -ENFILE past the module's endpoint limits, -EDQUOT when this first
 * open in an IPC namespace would make the caller's user hold more buses
 * than the module's max_buses_per_user).
 */
int pcb_open(struct pcb **out);

/**
 * pcb_close() - close an endpoint
 * @bus: the endpoint, may be NULL
 *
 * Unmaps the ring and closes the file; the kernel then removes every
 * subscription and publish handle of the endpoint.  Messages viewed with
 * pcb_peek() are no longer accessible.
 */
void pcb_close(struct pcb *bus);

/**
 * pcb_fd() - the endpoint's file descriptor
 * @bus: the endpoint
 *
 * For the caller's own poll()/epoll: POLLIN means the record at the
 * consumer position is complete, POLLERR that the ring is broken.  Do not
 * close it; pcb_close() does.
 *
 * Return: the file descriptor (never negative for an open endpoint).
 */
int pcb_fd(const struct pcb *bus);

/**
 * pcb_sleep_prepare() - about to sleep in the caller's own poll()/epoll
 * @bus: the endpoint (with a ring)
 *
 * Sets PCB_CONS_NEED_WAKEUP in the consumer page, with the full barrier of
 * <linux/pcb.h>'s step D, then looks at the ring again.  The kernel sets
 * the flag in poll() too, but leaves it set: a consumer that calls
 * pcb_sleep_done() when it wakes spares publishers a wake-up per message
 * while it is busy.  Use both or neither.
 *
 * Return: 0, go to sleep; 1, records came meanwhile: do not sleep (call
 * pcb_sleep_done()); -EBADFD without a ring; -EPIPE for a broken ring.
 */
int pcb_sleep_prepare(struct pcb *bus);

/**
 * pcb_sleep_done() - awake again: publishers need not wake us any more
 * @bus: the endpoint (with a ring)
 *
 * Clears PCB_CONS_NEED_WAKEUP.  Call it when poll()/epoll_wait() returns
 * (or after pcb_sleep_prepare() returned 1), before consuming.
 */
void pcb_sleep_done(struct pcb *bus);

/* ------------------------------------------------------------------ */
/* Topics                                                             */
/* ------------------------------------------------------------------ */

/**
 * struct pcb_topic_opts - attributes of a new topic
 * @schema_id:	 schema of the messages (publishers and subscribers must
 *		 name the same)
 * @max_msg_size: largest payload in bytes
 * @mode:	 permission bits: read grants a lossy subscription and the
 *		 sight of the topic's traffic, read and execute a reliable
 *		 subscription (the right to make publishers wait), write
 *		 grants publishing (see PCB_MODE_MASK in <linux/pcb.h>)
 * @uid, @gid:	 owner, or PCB_OWNER_CALLER
 * @flags:	 must be 0
 *
 * Start from PCB_TOPIC_OPTS_DEFAULT and change what you need.
 */
struct pcb_topic_opts {
	uint64_t schema_id;
	uint32_t max_msg_size;
	uint32_t mode;
	uint32_t uid;
	uint32_t gid;
	uint32_t flags;
};

#define PCB_TOPIC_DEFAULT_MSG_SIZE	4096U

/*
 * 0744: the owner publishes and subscribes reliably; everyone else may
 * listen, lossy, and so can never make the owner's publishers wait.  A
 * topic whose other users must subscribe reliably needs their execute
 * bits too (0755, 0777).
 */
#define PCB_TOPIC_DEFAULT_MODE		0744U

#define PCB_TOPIC_OPTS_DEFAULT {				\
	.schema_id = 0,						\
	.max_msg_size = PCB_TOPIC_DEFAULT_MSG_SIZE,		\
	.mode = PCB_TOPIC_DEFAULT_MODE,				\
	.uid = PCB_OWNER_CALLER,				\
	.gid = PCB_OWNER_CALLER,				\
	.flags = 0,						\
}

/**
 * pcb_topic_create() - create a topic
 * @bus:	the endpoint
 * @name:	the topic name (see <linux/pcb.h> for the allowed names)
 * @opts:	its attributes, or NULL for PCB_TOPIC_OPTS_DEFAULT (schema 0,
 *		4096-byte messages, mode 0744, owned by the caller)
 * @topic_id:	where to store the new topic's id, may be NULL
 *
 * A user's name, "~UID/rest" (the uid in decimal), can only be a topic
 * owned by that uid: no one else can take it first.
 *
 * Return: 0; -EINVAL for a NULL @bus or @name, -ENAMETOOLONG for a name of
 * PCB_NAME_MAX bytes or more; from the kernel -EEXIST, -EINVAL, -EPERM (an
 * owner the caller may not give, or a user's name "~UID/" of another
 * owner than UID), -ENOSPC, -EDQUOT, -ENOMEM.
 */
int pcb_topic_create(struct pcb *bus, const char *name,
		     const struct pcb_topic_opts *opts, uint32_t *topic_id);

/**
 * pcb_topic_delete() - delete a topic
 * @bus:	the endpoint
 * @name:	the topic name
 *
 * Subscriptions to the topic end (records already in rings stay readable)
 * and its publish handles fail with -EIDRM from then on.
 *
 * Return: 0, -EINVAL, -ENAMETOOLONG; from the kernel -ENOENT, -EPERM (not
 * the owner).
 */
int pcb_topic_delete(struct pcb *bus, const char *name);

/**
 * pcb_topic_info() - look a topic up by name
 * @bus:	the endpoint
 * @name:	the topic name
 * @info:	filled in with the topic's attributes and counters
 *
 * Needs no right on the topic, but its traffic is shown only to its
 * owner, to those with read permission and to CAP_IPC_OWNER: for anyone
 * else @info->nr_subscribers and @info->published are 0 and
 * @info->flags has PCB_TOPIC_INFO_HIDDEN.  pcb_topic_list() alike.
 *
 * Return: 0, -EINVAL, -ENAMETOOLONG; from the kernel -ENOENT.
 */
int pcb_topic_info(struct pcb *bus, const char *name,
		   struct pcb_topic_info *info);

/* Called by pcb_topic_list() for each topic; non-zero stops the walk. */
typedef int (*pcb_topic_cb)(const struct pcb_topic_info *info, void *arg);

/**
 * pcb_topic_list() - call @cb for every topic, in ascending id order
 * @bus:	the endpoint
 * @cb:		the callback
 * @arg:	passed to @cb
 *
 * Topics created or deleted during the walk may or may not be seen.
 *
 * Return: the number of topics @cb was called for, or the non-zero value
 * @cb returned to stop the walk (make it negative to tell it apart), or
 * -EINVAL for a NULL @bus or @cb, or an ioctl error.
 */
int pcb_topic_list(struct pcb *bus, pcb_topic_cb cb, void *arg);

/**
 * pcb_topic_open() - open a topic for publishing
 * @bus:	the endpoint
 * @name:	the topic name
 * @schema_id:	must equal the topic's schema id
 *
 * Return: a publish handle (>= 0) for pcb_publish(), valid on this
 * endpoint only; -EINVAL, -ENAMETOOLONG; from the kernel -ENOENT,
 * -EACCES (no write permission), -EPROTOTYPE (other schema), -EMFILE
 * (PCB_MAX_HANDLES on this endpoint), -EDQUOT (the module's
 * max_handles_per_user for the caller's user).
 */
int pcb_topic_open(struct pcb *bus, const char *name, uint64_t schema_id);

/**
 * pcb_topic_close() - close a publish handle
 * @bus:	the endpoint
 * @handle:	from pcb_topic_open()
 *
 * Return: 0, -EINVAL; from the kernel -EBADF (handle not open).
 */
int pcb_topic_close(struct pcb *bus, int handle);

/* ------------------------------------------------------------------ */
/* Publishing                                                         */
/* ------------------------------------------------------------------ */

/**
 * pcb_publish() - publish one message, waiting for room if needed
 * @bus:	the endpoint
 * @handle:	from pcb_topic_open()
 * @buf:	the payload (may be NULL when @len is 0)
 * @len:	payload length, at most the topic's max_msg_size
 * @key:	a 64-bit key copied into the record
 * @timeout_ns:	how long to wait for room in reliable subscribers' rings;
 *		0 waits without limit
 * @msg_id:	where to store the message id, may be NULL
 *
 * The message goes to every reliable subscriber or to none.
 *
 * Return: 0; -EINVAL for a NULL @bus; -EMSGSIZE; from the kernel -EBADF,
 * -EIDRM (topic deleted), -ETIMEDOUT, -EINTR (nothing is published in
 * these two cases), -EFAULT.
 */
int pcb_publish(struct pcb *bus, int handle, const void *buf, size_t len,
		uint64_t key, uint64_t timeout_ns, uint64_t *msg_id);

/**
 * pcb_try_publish() - publish one message without ever sleeping
 *
 * As pcb_publish(), but a reliable subscriber's full ring makes it fail
 * at once with -EAGAIN (nothing published).
 */
int pcb_try_publish(struct pcb *bus, int handle, const void *buf,
		    size_t len, uint64_t key, uint64_t *msg_id);

/**
 * pcb_publish_deps() - publish one message that depends on others
 * @bus, @handle, @buf, @len, @key, @timeout_ns, @msg_id: as for
 *		pcb_publish()
 * @deps:	ids of up to PCB_MAX_DEPS messages this one depends on, in
 *		any order, each given once; may be NULL when @nr_deps is 0
 * @nr_deps:	number of ids in @deps
 *
 * The kernel checks that each dependency is an id it has handed out, so
 * the new message's id is greater than all of them, and puts them in the
 * record, where pcb_msg_deps() finds them.  An id read from a received
 * record, or returned by a publish, is always a valid dependency.
 *
 * Return: as pcb_publish(); -EINVAL also from the kernel for @nr_deps
 * above PCB_MAX_DEPS, a dependency that is 0 or greater than the last id
 * handed out, or one named twice; -EFAULT for a NULL @deps with @nr_deps.
 */
int pcb_publish_deps(struct pcb *bus, int handle, const void *buf,
		     size_t len, uint64_t key, const uint64_t *deps,
		     unsigned int nr_deps, uint64_t timeout_ns,
		     uint64_t *msg_id);

/**
 * pcb_try_publish_deps() - pcb_publish_deps() without ever sleeping
 *
 * As pcb_publish_deps(), but a reliable subscriber's full ring makes it
 * fail at once with -EAGAIN (nothing published).
 */
int pcb_try_publish_deps(struct pcb *bus, int handle, const void *buf,
			 size_t len, uint64_t key, const uint64_t *deps,
			 unsigned int nr_deps, uint64_t *msg_id);

/**
 * pcb_batch_entry_prep() - fill in one message of a batch
 * @e:		the entry
 * @handle:	from pcb_topic_open(); entries of a batch may name different
 *		topics
 * @buf:	the payload (may be NULL when @len is 0); it must stay valid
 *		until pcb_publish_batch() returns
 * @len:	payload length, at most the topic's max_msg_size
 * @key:	a 64-bit key copied into the record
 *
 * Clears everything else, the entry's results included.
 */
static inline void pcb_batch_entry_prep(struct pcb_batch_entry *e,
					int handle, const void *buf,
					uint32_t len, uint64_t key)
{
	memset(e, 0, sizeof(*e));
	e->handle = (__u32)handle;
	e->payload = (__u64)(uintptr_t)buf;
	e->len = len;
	e->key = key;
}

/**
 * pcb_publish_batch() - publish many messages in one system call
 * @bus:	the endpoint the entries' handles belong to
 * @entries:	@count entries from pcb_batch_entry_prep(); the kernel
 *		writes each entry's @result, and @msg_id and @seq when
 *		@result is 0
 * @count:	1 .. PCB_BATCH_MAX
 * @flags:	0, or PCB_PUB_NONBLOCK and/or PCB_PUB_ATOMIC
 * @timeout_ns:	how long the whole batch may wait for room in reliable
 *		subscribers' rings; 0 waits without limit.  Ignored with
 *		PCB_PUB_NONBLOCK
 *
 * Entries are published in array order, each like pcb_publish() (or like
 * pcb_try_publish() with PCB_PUB_NONBLOCK: a full reliable ring fails it
 * with -EAGAIN at once), so message ids increase in array order.
 *
 * Without PCB_PUB_ATOMIC an entry that fails does not stop the others:
 * its @result is the negative errno it failed with (-EBADF, -EIDRM,
 * -EMSGSIZE, -EINVAL, -EFAULT, -EAGAIN, -ETIMEDOUT).  A signal stops the
 * batch: the entries not tried get -EINTR.  The return value says how
 * many were published; look at each @result to see which.
 *
 * With PCB_PUB_ATOMIC every entry is published or none is, and the
 * return value is @count or a negative errno; on failure every @result is
 * set too.  If one entry is invalid (-EBADF, -EINVAL, -EMSGSIZE, -EFAULT,
 * or -E2BIG for naming a topic beyond the first PCB_BATCH_ATOMIC_TOPICS
 * distinct ones), it gets that error, the others -ECANCELED, and the call
 * returns that error.  If the batch cannot be published as a whole
 * (-EAGAIN, -ETIMEDOUT, -EINTR, -EIDRM, or -E2BIG when the payloads add up
 * to more than PCB_BATCH_ATOMIC_BYTES or the batch's records that a
 * reliable subscriber's filters accept do not fit its ring, however
 * empty), every entry and the call get that error.  A lossy subscriber
 * whose ring is too small or too full for its records of the batch misses
 * all of them (counted as dropped).  A ring subscribed to several topics
 * of an atomic batch receives its records grouped by topic: those of its
 * reliable subscriptions first, then those of its lossy ones, each in
 * ascending topic id; sort by msg_id to see them in the batch's order.
 *
 * Return: the number of entries published (0 .. @count); -EINVAL for a
 * NULL @bus; from the kernel -EINVAL (@flags, @count), -EFAULT (@entries
 * not readable and writable, or the results could not be written back
 * after messages were published), and with PCB_PUB_ATOMIC the errors
 * above.
 */
int pcb_publish_batch(struct pcb *bus, struct pcb_batch_entry *entries,
		      unsigned int count, uint32_t flags,
		      uint64_t timeout_ns);

/**
 * pcb_publish_batch_deps() - a batch whose every message has dependencies
 * @bus, @entries, @count, @flags, @timeout_ns: as for pcb_publish_batch()
 * @deps, @nr_deps: as for pcb_publish_deps(), for each message of the
 *		batch alike
 *
 * Messages of one batch need not depend on each other explicitly: their
 * ids already increase in array order.  Invalid dependencies fail the
 * whole call before anything is published.
 *
 * Return: as pcb_publish_batch(); from the kernel -EINVAL also for the
 * dependencies (see pcb_publish_deps()) and -EFAULT for an unreadable
 * @deps.
 */
int pcb_publish_batch_deps(struct pcb *bus, struct pcb_batch_entry *entries,
			   unsigned int count, uint32_t flags,
			   uint64_t timeout_ns, const uint64_t *deps,
			   unsigned int nr_deps);

/* ------------------------------------------------------------------ */
/* Publishing through io_uring                                        */
/* ------------------------------------------------------------------ */

/*
 * A publisher that queues PCB_URING_CMD_PUBLISH commands on an io_uring
 * of its own (IORING_SETUP_SQE128 | IORING_SETUP_CQE32), so that many
 * messages cost one system call, or none with PCB_URING_SQPOLL:
 *
 *	struct pcb_uring_pub *up;
 *	struct pcb_uring_result res[64];
 *
 *	pcb_uring_pub_create(&up, bus, 64, 0);
 *	for (i = 0; i < n; i++)
 *		pcb_uring_pub_queue(up, handle, msg[i], len[i], 0, 0, i);
 *	pcb_uring_pub_submit(up);
 *	got = pcb_uring_pub_reap(up, res, 64, PCB_URING_WAIT_FOREVER);
 *
 * Every queued message gives exactly one result, in completion order:
 * its user_data, its result (0 or the negative errno of pcb_publish()) and
 * its message id.
 *
 * Order: commands issued at once are published in the order they were
 * queued.  A command that has to wait for room in a reliable subscriber's
 * ring (no PCB_PUB_NONBLOCK) waits in an io_uring worker, and commands
 * queued after it may be published before it, unless the publisher was
 * created with PCB_URING_ORDERED.
 *
 * Threads: a publisher has one submitter.  Its functions must not be
 * called concurrently on the same publisher; other threads may keep using
 * the endpoint itself.  The endpoint must stay open until the publisher
 * is destroyed.
 */
struct pcb_uring_pub;

/*
 * Creation flags.
 *
 * PCB_URING_SQPOLL: a kernel thread (IORING_SETUP_SQPOLL) polls the
 * submission queue, so a publisher that keeps it busy makes no system
 * call at all; it sleeps after PCB_URING_SQPOLL_IDLE_MS without work and
 * pcb_uring_pub_submit() then wakes it.
 *
 * PCB_URING_ORDERED: the commands queued between two submits are linked
 * (IOSQE_IO_LINK): each is issued only once the one before completed, so
 * they are published in queue order even when they have to wait for
 * room.  A command that fails ends the chain: the rest of it completes
 * with -ECANCELED, unpublished.  Costs some speed.
 */
#define PCB_URING_SQPOLL	0x00000001U
#define PCB_URING_ORDERED	0x00000002U
#define PCB_URING_FLAGS_ALL	(PCB_URING_SQPOLL | PCB_URING_ORDERED)

#define PCB_URING_DEFAULT_DEPTH	64U
#define PCB_URING_MAX_DEPTH	4096U
#define PCB_URING_SQPOLL_IDLE_MS 100U

/* pcb_uring_pub_reap(): wait until a result is there, however long. */
#define PCB_URING_WAIT_FOREVER	UINT64_MAX

/**
 * struct pcb_uring_result - the outcome of one queued message
 * @user_data:	as given to pcb_uring_pub_queue()
 * @msg_id:	the message id when @res is 0
 * @res:	0, or the negative errno the publish failed with
 */
struct pcb_uring_result {
	uint64_t user_data;
	uint64_t msg_id;
	int32_t res;
};

/**
 * pcb_uring_pub_create() - create an io_uring publisher on an endpoint
 * @out:	where to store the publisher
 * @bus:	the endpoint whose publish handles it uses
 * @depth:	how many messages may be queued or unreaped at once (rounded
 *		up to a power of two), at most PCB_URING_MAX_DEPTH; 0 for
 *		PCB_URING_DEFAULT_DEPTH
 * @flags:	PCB_URING_SQPOLL, PCB_URING_ORDERED
 *
 * Return: 0; -EINVAL (NULL @out or @bus, unknown @flags, @depth too
 * large), -ENOMEM, -EOPNOTSUPP (the kernel's io_uring lacks a feature the
 * publisher needs); the errors of io_uring_setup(2), among them -ENOSYS
 * (no io_uring in the kernel) and -EPERM (io_uring disabled by sysctl or
 * a security policy).
 */
int pcb_uring_pub_create(struct pcb_uring_pub **out, struct pcb *bus,
			 unsigned int depth, uint32_t flags);

/**
 * pcb_uring_pub_destroy() - tear a publisher down
 * @p:		the publisher, may be NULL
 *
 * Commands that were submitted but have not completed are cancelled if
 * they wait for room (and are not published), else they may still
 * complete; their results are lost either way.  Queued commands that were
 * never submitted are dropped.
 */
void pcb_uring_pub_destroy(struct pcb_uring_pub *p);

/**
 * pcb_uring_pub_register_buffer() - register a buffer to publish from
 * @p:		the publisher
 * @buf:	the buffer: anonymous memory (malloc() or an anonymous
 *		mmap()), not a file mapping
 * @len:	its length
 *
 * Messages whose payload lies wholly inside the buffer are then published
 * from it as a registered buffer (IORING_URING_CMD_FIXED): its pages stay
 * pinned, so the kernel copies the payload without faulting it in or
 * walking the page tables.  Other messages are published as usual.  The
 * buffer stays registered until the publisher is destroyed; its pages
 * count against RLIMIT_MEMLOCK unless the caller has CAP_IPC_LOCK.
 *
 * Return: 0; -EINVAL (NULL @p or @buf, @len 0), -EBUSY (a buffer is
 * registered already); from io_uring_register(2) -ENOMEM (over
 * RLIMIT_MEMLOCK), -EOPNOTSUPP (file-backed memory, refused by some
 * kernels), -EFAULT.
 */
int pcb_uring_pub_register_buffer(struct pcb_uring_pub *p, void *buf,
				  size_t len);

/**
 * pcb_uring_pub_set_timeout() - bound the wait for room of later messages
 * @p:		the publisher
 * @timeout_ns:	how long each message queued from now on may wait for room
 *		in reliable subscribers' rings before it fails with
 *		-ETIMEDOUT; 0 (the default) waits without limit
 */
void pcb_uring_pub_set_timeout(struct pcb_uring_pub *p, uint64_t timeout_ns);

/**
 * pcb_uring_pub_queue() - queue one message, to be sent by the next submit
 * @p:		the publisher
 * @handle:	from pcb_topic_open() on the publisher's endpoint
 * @buf:	the payload (may be NULL when @len is 0); it must stay
 *		unchanged until the message's result has been reaped
 * @len:	payload length, at most the topic's max_msg_size
 * @key:	a 64-bit key copied into the record
 * @pub_flags:	0, or PCB_PUB_NONBLOCK: fail with -EAGAIN rather than wait
 *		when a reliable subscriber's ring is full
 * @user_data:	returned with the result
 *
 * Nothing reaches the kernel before pcb_uring_pub_submit().  Errors of the
 * message itself (a bad handle, flags or size) come back as its result.
 *
 * Return: 0; -EINVAL (NULL @p), -EMSGSIZE (@len beyond 32 bits), -EBUSY
 * (the publisher's depth of messages are queued or unreaped: submit,
 * reap results, then try again).
 */
int pcb_uring_pub_queue(struct pcb_uring_pub *p, int handle, const void *buf,
			size_t len, uint64_t key, uint32_t pub_flags,
			uint64_t user_data);

/**
 * pcb_uring_pub_queue_deps() - queue one message that depends on others
 * @p, @handle, @buf, @len, @key, @pub_flags, @user_data: as for
 *		pcb_uring_pub_queue()
 * @deps, @nr_deps: as for pcb_publish_deps(); like @buf, @deps must stay
 *		unchanged until the message's result has been reaped (the
 *		kernel reads it when it issues the command, which with
 *		PCB_URING_ORDERED may be after pcb_uring_pub_submit()
 *		returns)
 *
 * Invalid dependencies come back as the message's result (-EINVAL,
 * -EFAULT).
 *
 * Return: as pcb_uring_pub_queue().
 */
int pcb_uring_pub_queue_deps(struct pcb_uring_pub *p, int handle,
			     const void *buf, size_t len, uint64_t key,
			     const uint64_t *deps, unsigned int nr_deps,
			     uint32_t pub_flags, uint64_t user_data);

/**
 * pcb_uring_pub_submit() - hand the queued messages to the kernel
 * @p:		the publisher
 *
 * Without PCB_URING_SQPOLL, one io_uring_enter(2) that issues them.  With
 * it, no system call unless the polling thread sleeps and must be woken.
 *
 * Return: the number of messages handed over (0 when none were queued):
 * all those queued, except without PCB_URING_SQPOLL when the kernel ran
 * short of memory (call again for the rest); -EINVAL (NULL @p); the
 * errors of io_uring_enter(2).
 */
int pcb_uring_pub_submit(struct pcb_uring_pub *p);

/**
 * pcb_uring_pub_reap() - collect the results of submitted messages
 * @p:		the publisher
 * @res:	room for @max results
 * @max:	how many results to collect at most
 * @wait_ns:	when no result is there yet: 0 returns at once,
 *		PCB_URING_WAIT_FOREVER waits until one is, anything else
 *		waits up to that many nanoseconds
 *
 * Does not submit: messages queued since the last submit give no result.
 * Makes no system call when results are there already.
 *
 * Return: the number of results stored (0 when none came in time); -EINVAL
 * (NULL @p, or NULL @res with @max > 0); -EINTR (a signal came while
 * waiting); the errors of io_uring_enter(2).
 */
int pcb_uring_pub_reap(struct pcb_uring_pub *p, struct pcb_uring_result *res,
		       unsigned int max, uint64_t wait_ns);

/* ------------------------------------------------------------------ */
/* Receiving                                                          */
/* ------------------------------------------------------------------ */

/* Ring size used by pcb_ring_setup() when asked for 0. */
#define PCB_RING_DEFAULT_SIZE	(256U * 1024)

/**
 * pcb_ring_setup() - create and map the endpoint's receive ring
 * @bus:	the endpoint
 * @data_size:	size of the data area: a power of two from
 *		PCB_RING_MIN_SIZE to the module's max_ring_size, or 0 for
 *		PCB_RING_DEFAULT_SIZE
 *
 * Once per endpoint.  If mapping fails after the kernel created the ring,
 * the endpoint cannot receive; open a new one.
 *
 * Return: 0; -EINVAL (size not a power of two or too large), -EPROTO (the
 * kernel's ring layout is not one this library understands), the error of
 * mmap(2); from the kernel -EBUSY (already set up), -EINVAL, -ENOMEM.
 */
int pcb_ring_setup(struct pcb *bus, size_t data_size);

/**
 * pcb_subscribe() - subscribe the endpoint's ring to a topic
 * @bus:	the endpoint
 * @name:	the topic name
 * @schema_id:	must equal the topic's schema id
 * @flags:	0 for a reliable subscription, PCB_SUB_LOSSY for a lossy one
 * @topic_id:	where to store the topic's id, may be NULL
 *
 * A lossy subscription needs read permission on the topic; a reliable one
 * read and execute permission, as it can make publishers wait (the owner
 * of a topic of mode 0644 or 0666, too, may only listen lossy).
 *
 * Return: 0, -EINVAL, -ENAMETOOLONG; from the kernel -EBADFD (no ring),
 * -ENOENT, -EACCES (no read permission, or no execute permission for a
 * reliable subscription), -EPROTOTYPE, -EALREADY, -ENOSPC, -EDQUOT (the
 * user's fair share of the topic's subscriptions, or the module's
 * max_subscriptions_per_user), -EPIPE (the ring is broken).
 */
int pcb_subscribe(struct pcb *bus, const char *name, uint64_t schema_id,
		  uint32_t flags, uint32_t *topic_id);

/**
 * pcb_unsubscribe() - end a subscription
 * @bus:	the endpoint
 * @topic_id:	from pcb_subscribe()
 *
 * Records already in the ring stay readable.
 *
 * Return: 0, -EINVAL; from the kernel -ENOENT (not subscribed), -EBADFD.
 */
int pcb_unsubscribe(struct pcb *bus, uint32_t topic_id);

/**
 * struct pcb_msg - a received message, read in place in the ring
 * @rec:	the record header (topic_id, msg_id, seq, tsc, key, pid, uid;
 *		the publisher's pid and uid as seen from the pid and user
 *		namespaces the ring was set up in: pid 0 for a publisher not
 *		visible there, 65534 for an unmapped uid)
 * @data:	the payload
 * @len:	payload length in bytes
 * @end:	private to the library
 *
 * Valid until it is passed to pcb_release().
 */
struct pcb_msg {
	const struct pcb_record *rec;
	const void *data;
	size_t len;
	uint64_t end;
};

/**
 * pcb_msg_deps() - the dependencies the publisher of @msg declared
 * @msg:	a message from pcb_peek() or pcb_receive()
 * @deps:	where to store a pointer to the ids (into the ring, valid
 *		until pcb_release(), 8-byte aligned), may be NULL
 *
 * The ids are in the publisher's order; each is less than @msg's own id.
 *
 * Return: their number, 0 .. PCB_MAX_DEPS (pcb_peek() refuses records
 * that claim more).
 */
static inline unsigned int pcb_msg_deps(const struct pcb_msg *msg,
					const uint64_t **deps)
{
	/* They follow the header; pcb_peek() checked that hdr_len covers them. */
	if (deps)
		*deps = (const uint64_t *)(msg->rec + 1);
	return msg->rec->nr_deps;
}

/**
 * pcb_peek() - look at the next message in the ring without consuming it
 * @bus:	the endpoint
 * @msg:	filled in when a message is there
 *
 * Never sleeps and makes no system call, except to release the records
 * it skips: discarded ones, and messages the receive filter (see
 * pcb_set_recv_filter()) rejects.  Calling it again before pcb_release()
 * gives the same message.
 *
 * Return: 1 and @msg filled in; 0 when no complete message is there;
 * -EBADFD without a ring; -EPIPE when the ring is broken
 * (PCB_RING_BROKEN); -EBADMSG when a record is malformed.
 */
int pcb_peek(struct pcb *bus, struct pcb_msg *msg);

/**
 * pcb_release() - consume a message, giving its ring space back
 * @bus:	the endpoint
 * @msg:	the message pcb_peek() returned
 *
 * Wakes publishers that wait for room, if there are any (one system call
 * only then).  @msg must not be used afterwards.
 */
void pcb_release(struct pcb *bus, const struct pcb_msg *msg);

/**
 * pcb_wait() - wait until the ring has a record
 * @bus:	the endpoint
 * @timeout_ns:	how long to wait in all; 0 waits without limit
 * @spin_ns:	how much of it to spend polling the ring before sleeping
 *		in the kernel (lowest latency, burns a CPU); 0 to sleep at
 *		once
 *
 * Return: 0 when the record at the consumer position is complete (it may
 * be one the receive filter rejects, or a discarded one: pcb_peek() can
 * then return 0); -ETIMEDOUT, -EINTR (a signal), -EPIPE (the ring is
 * broken), -EBADFD (no ring).
 */
int pcb_wait(struct pcb *bus, uint64_t timeout_ns, unsigned int spin_ns);

/**
 * pcb_receive() - wait for the next message and view it
 * @bus:	the endpoint
 * @msg:	filled in with the message
 * @timeout_ns:	how long to wait; 0 waits without limit
 *
 * pcb_wait() (without spinning) and pcb_peek() in one call, until a
 * message the receive filter accepts is there or @timeout_ns has passed.
 * Release the message with pcb_release().
 *
 * Return: 1 and @msg filled in; -ETIMEDOUT, -EINTR, -EPIPE, -EBADFD,
 * -EBADMSG.
 */
int pcb_receive(struct pcb *bus, struct pcb_msg *msg, uint64_t timeout_ns);

/*
 * The receive filter is called for a message in the ring before
 * pcb_peek() shows it, for what the kernel's filters (see
 * pcb_subscribe_filtered()) cannot express.  Return true to accept the
 * message, false to skip it.
 */
typedef bool (*pcb_recv_filter_fn)(const struct pcb_msg *msg, void *arg);

/**
 * pcb_set_recv_filter() - filter messages on the consumer side
 * @bus:	the endpoint
 * @fn:		the filter, or NULL to accept every message again
 * @arg:	passed to @fn
 *
 * pcb_peek(), and so pcb_receive(), then call @fn once for each message,
 * in ring order, on the consumer thread, the first time they come to it.
 * A message @fn accepts is returned as usual and stays the one pcb_peek()
 * returns, without asking @fn again, until pcb_release().  A message it
 * rejects is released at once: its ring space goes back to the kernel
 * (publishers waiting for room are woken), pcb_peek() goes on to the next
 * one, and pcb_recv_skipped() counts it.  pcb_wait() and poll() still
 * wake up for a message @fn will reject; pcb_receive() then keeps waiting
 * for the rest of its timeout.
 *
 * A message pcb_peek() has already returned stays returned when the
 * filter changes.  @fn sees @msg only during the call: it must not keep
 * it, and must not call pcb_peek(), pcb_release(), pcb_wait() or
 * pcb_receive() on @bus (publishing is fine).  Messages the kernel could
 * reject are cheaper rejected there: they then take no ring space and
 * wake nobody.
 *
 * Return: 0; -EINVAL for a NULL @bus.
 */
int pcb_set_recv_filter(struct pcb *bus, pcb_recv_filter_fn fn, void *arg);

/**
 * pcb_recv_skipped() - messages the receive filter has rejected
 * @bus:	the endpoint
 *
 * Return: how many messages pcb_set_recv_filter()'s filters have rejected
 * since the endpoint was opened.
 */
uint64_t pcb_recv_skipped(const struct pcb *bus);

/**
 * pcb_dropped() - messages the ring's lossy subscriptions have missed
 * @bus:	the endpoint
 *
 * Return: the ring header's dropped counter, 0 without a ring.
 */
uint64_t pcb_dropped(const struct pcb *bus);

/**
 * pcb_clock() - the bus clock: what record->tsc counts
 * @bus:	the endpoint
 *
 * PCB_CLOCK_TSC: TSC cycles, at pcb_tsc_khz(); PCB_CLOCK_MONO:
 * CLOCK_MONOTONIC nanoseconds, where the TSC is not usable as a clock (in
 * most virtual machines) or the module was loaded with clock=mono.  Read
 * from the ring header, so it makes no system call; the same for every
 * endpoint while the module stays loaded.  A kernel whose header predates
 * the @clock word and reports a TSC frequency counts in TSC cycles.
 *
 * Return: PCB_CLOCK_TSC or PCB_CLOCK_MONO (or a later PCB_CLOCK_*), 0 when
 * there is no ring or the kernel does not say.
 */
uint32_t pcb_clock(const struct pcb *bus);

/**
 * pcb_tsc_khz() - the TSC frequency the kernel reports in the ring header
 * @bus:	the endpoint
 *
 * Return: the frequency in kHz when pcb_clock() is PCB_CLOCK_TSC; 0 when
 * the bus runs on another clock or there is no ring.
 */
uint32_t pcb_tsc_khz(const struct pcb *bus);

/**
 * pcb_tsc() - read the TSC, ordered after earlier loads
 *
 * Return: the TSC, or 0 on architectures without one.
 */
static inline uint64_t pcb_tsc(void)
{
#if defined(__x86_64__) || defined(__i386__)
	uint32_t lo, hi;

	/* lfence: do not read the clock before the record was read. */
	__asm__ __volatile__("lfence; rdtsc" : "=a"(lo), "=d"(hi) :: "memory");
	return ((uint64_t)hi << 32) | lo;
#else
	return 0;
#endif
}

/**
 * pcb_msg_latency_ns() - time from publish to now
 * @bus:	the endpoint whose ring @msg is in
 * @msg:	a message from pcb_peek()
 * @ns:		where to store the nanoseconds between the publish call
 *		entering the kernel and this call
 *
 * Reads the bus clock (see pcb_clock()) without a system call: rdtsc for
 * PCB_CLOCK_TSC, clock_gettime(CLOCK_MONOTONIC) (a vDSO call) for
 * PCB_CLOCK_MONO.  record->tsc is the CLOCK_MONOTONIC of the initial
 * time namespace; a consumer in a time namespace with a monotonic offset
 * (unshare --time) has it taken off, as read from
 * /proc/self/timens_offsets by pcb_ring_setup() (a process that enters
 * another time namespace later needs a new endpoint).
 *
 * Return: 0; -EINVAL for a NULL @msg or @ns; -EOPNOTSUPP when there is no
 * ring, the kernel names no clock this library knows, or the clock is the
 * TSC and the architecture has none; -ERANGE when the clock reads earlier
 * than the record's (TSCs of different CPUs not in sync).
 */
int pcb_msg_latency_ns(const struct pcb *bus, const struct pcb_msg *msg,
		       uint64_t *ns);

/* ------------------------------------------------------------------ */
/* Latency histograms                                                 */
/* ------------------------------------------------------------------ */

/*
 * An optional consumer-side histogram of one-way latency, for the
 * consumer to feed with every message it reads:
 *
 *	struct pcb_lat_hist *h = calloc(1, sizeof(*h));
 *	struct pcb_lat_summary s;
 *
 *	while (pcb_receive(bus, &msg, 0) == 1) {
 *		pcb_lat_hist_record(bus, h, &msg);
 *		...
 *		pcb_release(bus, &msg);
 *	}
 *	pcb_lat_hist_summary(h, &s);	// s.p50_ns, s.p99_ns, s.max_ns ...
 *
 * Recording costs a clock read and a few arithmetic instructions, no
 * allocation and no system call.
 *
 * Buckets: each value below PCB_LAT_SUB ns has a bucket of its own; every
 * power of two above, [2^e, 2^(e+1)), is split into PCB_LAT_SUB buckets
 * of equal width, 2^(e - PCB_LAT_SUB_BITS).
 *
 * Precision: count, sum (so mean), min and max are exact.  A percentile
 * is the top of the bucket holding the value of that rank, but no more
 * than max: it is never below the true value v (the nearest-rank
 * percentile of the values added) and exceeds it by less than
 * v / PCB_LAT_SUB (6.25 %), and by nothing at all below PCB_LAT_SUB ns.
 *
 * A histogram is caller-owned memory (about 7.8 KiB; zero-filled is
 * empty) and not thread-safe: give each consumer thread its own and
 * merge them with pcb_lat_hist_merge().
 */
#define PCB_LAT_SUB_BITS	4
#define PCB_LAT_SUB		(1U << PCB_LAT_SUB_BITS)
#define PCB_LAT_HIST_BUCKETS	(PCB_LAT_SUB + (64 - PCB_LAT_SUB_BITS) * PCB_LAT_SUB)

/**
 * struct pcb_lat_hist - a latency histogram
 * @count:	values added
 * @sum_ns:	their sum (saturates at UINT64_MAX)
 * @min_ns, @max_ns: the smallest and largest, when @count is not 0
 * @failed:	pcb_lat_hist_record() calls that could not measure the
 *		message (see pcb_msg_latency_ns()); not in @count
 * @buckets:	counts per bucket, see above
 */
struct pcb_lat_hist {
	uint64_t count;
	uint64_t sum_ns;
	uint64_t min_ns;
	uint64_t max_ns;
	uint64_t failed;
	uint64_t buckets[PCB_LAT_HIST_BUCKETS];
};

/**
 * struct pcb_lat_summary - what pcb_lat_hist_summary() reports
 * @count:	values in the histogram
 * @min_ns, @mean_ns, @max_ns: exact (the mean rounded down)
 * @p50_ns, @p90_ns, @p99_ns, @p999_ns: the 50th, 90th, 99th and 99.9th
 *		percentiles, to the histogram's precision
 *
 * All 0 for an empty histogram.
 */
struct pcb_lat_summary {
	uint64_t count;
	uint64_t min_ns;
	uint64_t mean_ns;
	uint64_t p50_ns;
	uint64_t p90_ns;
	uint64_t p99_ns;
	uint64_t p999_ns;
	uint64_t max_ns;
};

/**
 * pcb_lat_hist_init() - empty a histogram
 * @h:		the histogram, may be NULL
 *
 * The same as filling it with zeroes.
 */
void pcb_lat_hist_init(struct pcb_lat_hist *h);

/**
 * pcb_lat_hist_add() - add one value
 * @h:		the histogram, may be NULL (then nothing happens)
 * @ns:		the value, in nanoseconds
 */
void pcb_lat_hist_add(struct pcb_lat_hist *h, uint64_t ns);

/**
 * pcb_lat_hist_record() - add the one-way latency of a received message
 * @bus:	the endpoint whose ring @msg is in
 * @h:		the histogram
 * @msg:	a message from pcb_peek() or pcb_receive(), not yet released
 *
 * pcb_msg_latency_ns() of @msg, added to @h.  Call it as soon as the
 * message is read, before working on it, to measure the bus alone.
 *
 * Return: 0; -EINVAL for a NULL @h, @msg; pcb_msg_latency_ns()'s
 * -EOPNOTSUPP and -ERANGE, which @h->failed counts.
 */
int pcb_lat_hist_record(const struct pcb *bus, struct pcb_lat_hist *h,
			const struct pcb_msg *msg);

/**
 * pcb_lat_hist_merge() - add every value of one histogram to another
 * @dst:	the histogram added to
 * @src:	the histogram added; unchanged
 */
void pcb_lat_hist_merge(struct pcb_lat_hist *dst,
			const struct pcb_lat_hist *src);

/**
 * pcb_lat_hist_percentile() - a percentile of the values added
 * @h:		the histogram
 * @p:		the percentile, 0 to 100 (to 4 decimals; 0 gives the min, 100
 *		the max)
 *
 * Nearest rank: the smallest value with at least @p % of the values at
 * or below it, to the precision described above.
 *
 * Return: the percentile in ns, 0 for an empty (or NULL) histogram.
 */
uint64_t pcb_lat_hist_percentile(const struct pcb_lat_hist *h, double p);

/**
 * pcb_lat_hist_summary() - count, min, mean, p50, p90, p99, p99.9, max
 * @h:		the histogram
 * @s:		filled in
 */
void pcb_lat_hist_summary(const struct pcb_lat_hist *h,
			  struct pcb_lat_summary *s);

/* ------------------------------------------------------------------ */
/* Statistics                                                         */
/* ------------------------------------------------------------------ */

/**
 * pcb_stats() - the bus's counters, for one topic or the whole bus
 * @bus:	any endpoint (no ring needed)
 * @topic_id:	a topic id (from pcb_topic_info() or pcb_subscribe()), or 0
 *		for the whole bus
 * @out:	filled in: see struct pcb_stats in <linux/pcb.h> for each
 *		figure
 *
 * A topic's figures are its traffic: they need the right to see it (its
 * owner, read permission, or CAP_IPC_OWNER), else -EACCES.  The bus's
 * figures are the bus's own counters for a caller with CAP_IPC_OWNER;
 * for anyone else they are summed over the live topics the caller may
 * see, and @out->flags has PCB_STATS_PARTIAL.  The bus's own figures
 * count from the bus's creation, so they include topics deleted since; a
 * topic's count from its creation.  Counters are summed over CPUs while publishers go on: two of
 * them read together may be a few messages apart, and so may @out's
 * publish_ns.count and the sum of its buckets (pcb_hist_total()).
 *
 * The ioctl's size protocol is handled here: the library passes the size
 * of the struct it was built with; what an older kernel does not know is
 * left 0.
 *
 * Return: 0; -EINVAL for a NULL @bus or @out; -EPROTO when the kernel's
 * answer makes no sense (a size it claims to have filled outside
 * PCB_STATS_SIZE_V1 .. sizeof(*@out), version 0); from the kernel -ENOENT
 * (no topic @topic_id), -EACCES (a topic whose traffic the caller may not
 * see), -ENOTTY (a module without statistics), -ENOMEM.
 */
int pcb_stats(struct pcb *bus, uint32_t topic_id, struct pcb_stats *out);

/**
 * pcb_hist_bucket_max() - the largest value a struct pcb_hist bucket holds
 * @i:		the bucket, 0 .. PCB_HIST_BUCKETS - 1
 *
 * Bucket 0 holds 0 only, bucket i (1 .. PCB_HIST_BUCKETS - 2) the values
 * 2^(i-1) .. 2^i - 1, the last one everything above.  This is the "le"
 * bound of a Prometheus histogram (a value fits when <= it).
 *
 * Return: 2^i - 1 (0 for bucket 0); UINT64_MAX for the last bucket and
 * beyond.
 */
uint64_t pcb_hist_bucket_max(unsigned int i);

/**
 * pcb_hist_total() - the sum of a struct pcb_hist's buckets
 * @h:		the histogram, may be NULL (0)
 *
 * Return: the number of values in the buckets, which is what the
 * percentiles are taken of.  Equal to @h->count when nobody published
 * while the kernel summed them.
 */
uint64_t pcb_hist_total(const struct pcb_hist *h);

/**
 * pcb_hist_percentile() - a percentile of a struct pcb_hist (log2 buckets)
 * @h:		the histogram, e.g. the publish_ns of pcb_stats()
 * @p:		the percentile, 0 to 100 (to 4 decimals)
 *
 * Nearest rank among the pcb_hist_total() values of the buckets.  The
 * result is the top of the bucket of that rank, but no more than
 * @h->max_ns: for a true value v >= 1 it lies in v .. 2v - 1, so it is
 * within a factor of 2, never below; a value of 0 is exact.  In the last
 * bucket (2^(PCB_HIST_BUCKETS - 2) ns and up) it is @h->max_ns.
 *
 * Return: nanoseconds; 0 for an empty histogram.
 */
uint64_t pcb_hist_percentile(const struct pcb_hist *h, double p);

/* ------------------------------------------------------------------ */
/* Subscription filters                                               */
/* ------------------------------------------------------------------ */

/*
 * A subscription may carry a filter that the kernel evaluates when a
 * message is published: a message it rejects takes no room in the ring,
 * wakes nobody and is only counted (see "Filters" in <linux/pcb.h>).
 * struct pcb_filter_spec builds one without touching the ABI's structs,
 * predicate by predicate or from text:
 *
 *	struct pcb_filter_spec f;
 *
 *	pcb_filter_init(&f);
 *	pcb_filter_key(&f, PCB_OP_EQ, 1);
 *	pcb_filter_or(&f);
 *	pcb_filter_key(&f, PCB_OP_EQ, 2);
 *	pcb_filter_payload(&f, 8, 4, PCB_OP_GT, 1000, 0);
 *	ret = pcb_subscribe_filtered(bus, "t", 0, 0, &f, &id);
 *
 * is (key == 1 || key == 2) && (the u32 at payload offset 8) > 1000, as is
 * pcb_filter_parse(&f, "key==1|key==2, u32@8>1000", NULL).
 *
 * Predicates are ANDed, except that pcb_filter_or() makes the last one
 * and the next one alternatives: a run of predicates joined that way
 * holds when one of them does.  A filter with no predicate accepts every
 * message.  A payload predicate is false for a message too short to have
 * the bytes it reads, whatever its operator.
 *
 * The builder functions check each predicate as the kernel will, except
 * for payload offsets, which only the kernel can check against the
 * topic's max_msg_size.  The first error sticks: it is kept in @error,
 * later builder calls change nothing and return it again, and so do the
 * functions that hand the filter to the kernel.  So a sequence of calls
 * needs checking once, at the end.
 *
 * A spec is plain memory owned by the caller: copy it, reuse it for many
 * subscriptions; nothing needs freeing.  A spec is not thread-safe; one
 * that no thread modifies may be used by any number of threads.
 */

/**
 * struct pcb_filter_spec - a filter being built
 * @nr_preds:	predicates in @preds
 * @error:	0, or the first error of a builder call (negative errno)
 * @preds:	the predicates, as the kernel will get them
 *
 * Read it freely; change it only through the functions below.
 */
struct pcb_filter_spec {
	unsigned int nr_preds;
	int error;
	struct pcb_filter_pred preds[PCB_FILTER_MAX_PREDS];
};

/**
 * pcb_filter_init() - start an empty filter (it accepts every message)
 * @f:		the spec
 */
void pcb_filter_init(struct pcb_filter_spec *f);

/**
 * pcb_filter_add() - append a predicate given as the ABI struct
 * @f:		the spec
 * @pred:	the predicate (any field, operator and flags of <linux/pcb.h>,
 *		PCB_PRED_OR included)
 *
 * Return: 0; -EINVAL (NULL @pred, or a predicate the kernel would refuse,
 * payload offsets aside), -E2BIG (@f has PCB_FILTER_MAX_PREDS already),
 * or @f's earlier error.
 */
int pcb_filter_add(struct pcb_filter_spec *f,
		   const struct pcb_filter_pred *pred);

/**
 * pcb_filter_field() - append a predicate on a field of the record
 * @f:		the spec
 * @field:	PCB_FIELD_KEY (64 bits), PCB_FIELD_UID, PCB_FIELD_PID or
 *		PCB_FIELD_LEN (32 bits)
 * @op:		PCB_OP_EQ, _NE, _LT, _LE, _GT, _GE: compare the field with
 *		@value; PCB_OP_ALL, _ANY: every, or some, bit of @value set
 *		in the field
 * @value:	fits the field's width: unsigned, or with PCB_PRED_SIGNED a
 *		negative number cast to uint64_t ((uint64_t)-5) or a
 *		non-negative one, both in the signed range of the width
 * @flags:	0, or PCB_PRED_SIGNED to compare as two's complement numbers
 *
 * The uid and pid are those the publisher has in its own namespaces.
 *
 * Return: as pcb_filter_add().
 */
int pcb_filter_field(struct pcb_filter_spec *f, unsigned int field,
		     unsigned int op, uint64_t value, uint32_t flags);

/* The publisher's key @op @value. */
static inline int pcb_filter_key(struct pcb_filter_spec *f, unsigned int op,
				 uint64_t value)
{
	return pcb_filter_field(f, PCB_FIELD_KEY, op, value, 0);
}

/* The publisher's effective uid @op @value. */
static inline int pcb_filter_uid(struct pcb_filter_spec *f, unsigned int op,
				 uint32_t value)
{
	return pcb_filter_field(f, PCB_FIELD_UID, op, value, 0);
}

/* The publisher's process id @op @value. */
static inline int pcb_filter_pid(struct pcb_filter_spec *f, unsigned int op,
				 uint32_t value)
{
	return pcb_filter_field(f, PCB_FIELD_PID, op, value, 0);
}

/* The payload length @op @value. */
static inline int pcb_filter_len(struct pcb_filter_spec *f, unsigned int op,
				 uint32_t value)
{
	return pcb_filter_field(f, PCB_FIELD_LEN, op, value, 0);
}

/**
 * pcb_filter_payload() - append a predicate on bytes of the payload
 * @f:		the spec
 * @offset:	where the bytes start in the payload; the kernel refuses an
 *		@offset + @width beyond the topic's max_msg_size
 * @width:	1, 2, 4 or 8 bytes
 * @op:		as for pcb_filter_field()
 * @value:	as for pcb_filter_field(), in @width bytes
 * @flags:	PCB_PRED_SIGNED (two's complement), PCB_PRED_BE (the bytes
 *		are big-endian; else host byte order), both, or 0
 *
 * Return: as pcb_filter_add().
 */
int pcb_filter_payload(struct pcb_filter_spec *f, uint32_t offset,
		       unsigned int width, unsigned int op, uint64_t value,
		       uint32_t flags);

/**
 * pcb_filter_mask() - AND the field of the last predicate with @mask
 * @f:		the spec
 * @mask:	fits the field's width; 0 means all ones (no mask)
 *
 * For example u8@3 & 0x0f == 3: pcb_filter_payload(f, 3, 1, PCB_OP_EQ,
 * 3, 0) then pcb_filter_mask(f, 0x0f).
 *
 * Return: 0; -EINVAL (no predicate yet, or @mask too wide), or @f's
 * earlier error.
 */
int pcb_filter_mask(struct pcb_filter_spec *f, uint64_t mask);

/**
 * pcb_filter_or() - make the last predicate and the next alternatives
 * @f:		the spec
 *
 * A filter whose last predicate waits for its alternative is incomplete:
 * pcb_filter_check() and the functions that take it to the kernel refuse
 * it.
 *
 * Return: 0; -EINVAL (no predicate yet), or @f's earlier error.
 */
int pcb_filter_or(struct pcb_filter_spec *f);

/**
 * pcb_filter_check() - whether @f is a complete, valid filter
 * @f:		the spec
 *
 * Return: 0; @f's first builder error; -EINVAL when its last predicate
 * waits for an alternative (pcb_filter_or()).
 */
int pcb_filter_check(const struct pcb_filter_spec *f);

/**
 * pcb_filter_parse() - append the predicates of a text expression
 * @f:		the spec
 * @expr:	the expression, syntax below
 * @errp:	when not NULL, set on -EINVAL to where in @expr the error is
 *		(to its end when something is missing there)
 *
 * The expression is ANDed with what @f holds already, so parsing several
 * expressions into one spec requires all of them to hold.
 *
 *	filter := group { ',' group }		every group holds
 *	group  := pred { '|' pred }		some pred of the group holds
 *	pred   := field cmp VALUE
 *	        | field '&' MASK cmp VALUE	(field & MASK) cmp VALUE
 *	        | field '&' BITS ':all'		every bit of BITS set
 *	        | field '&' BITS ':any'		some bit of BITS set
 *	cmp    := '==' | '!=' | '<' | '<=' | '>' | '>='
 *	field  := 'key'				the publisher's key, u64
 *	        | 'uid' | 'pid'			the publisher's, u32
 *	        | 'len'				payload length, u32
 *	        | type '@' OFFSET		payload bytes at OFFSET
 *	type   := 'u8' | 'u16' | 'u32' | 'u64'	unsigned, host byte order
 *	        | 's8' | 's16' | 's32' | 's64'	signed, host byte order
 *	        | 'be16' | 'be32' | 'be64'	unsigned, big-endian
 *	        | 'sbe16' | 'sbe32' | 'sbe64'	signed, big-endian
 *
 * Numbers are decimal, or hexadecimal after 0x.  VALUE may be negative
 * (a leading '-') for the signed types only; it, MASK and BITS must fit
 * the field's width (VALUE in its signed range for signed types).  MASK
 * must not be 0.  Spaces and tabs may surround every token.  For example:
 * "key==42", "uid!=0", "len>=100", "u32@8>1000", "s16@2<-5",
 * "be16@12==0x0800", "u8@3&0x0f==3", "key&0x6:all", "key==1|key==2,
 * len>100".
 *
 * Return: 0 and the predicates appended; -EINVAL for a syntax error, a
 * number out of range or an empty expression; -E2BIG when @f has no room
 * for them all; or @f's earlier error.  Nothing is appended on error, and
 * a parse error does not become @f's sticky error.
 */
int pcb_filter_parse(struct pcb_filter_spec *f, const char *expr,
		     const char **errp);

/**
 * pcb_subscribe_filtered() - pcb_subscribe() with a kernel-side filter
 * @bus, @name, @schema_id, @flags, @topic_id: as for pcb_subscribe()
 * @filter:	the filter, or NULL for none
 *
 * Only messages @filter accepts reach the ring; pcb_sub_info() counts the
 * others.
 *
 * Return: as pcb_subscribe(); @filter's error (pcb_filter_check()); from
 * the kernel -EINVAL also for a payload predicate reading beyond the
 * topic's max_msg_size.
 */
int pcb_subscribe_filtered(struct pcb *bus, const char *name,
			   uint64_t schema_id, uint32_t flags,
			   const struct pcb_filter_spec *filter,
			   uint32_t *topic_id);

/**
 * pcb_set_filter() - replace the filter of a subscription, at any time
 * @bus:	the endpoint
 * @topic_id:	the subscription's topic
 * @filter:	the new filter, or NULL to remove it
 *
 * Atomic: each message is checked against the old filter or the new one,
 * never a mix, and those published after the call returns see the new
 * one.  The subscription's counters carry on.
 *
 * Return: 0; -EINVAL (NULL @bus), @filter's error (pcb_filter_check());
 * from the kernel -ENOENT (not subscribed), -EBADFD (no ring), -EINVAL (a
 * payload predicate beyond the topic's max_msg_size), -ENOMEM.
 */
int pcb_set_filter(struct pcb *bus, uint32_t topic_id,
		   const struct pcb_filter_spec *filter);

/**
 * pcb_sub_info() - a subscription's filter size and counters
 * @bus:	the endpoint
 * @topic_id:	the subscription's topic
 * @info:	filled in: @flags, @nr_preds, and since the subscription was
 *		made, @delivered (records written to the ring), @dropped
 *		(missed for want of room, lossy) and @rejected (by its filter)
 *
 * Return: 0; -EINVAL (NULL @bus or @info); from the kernel -ENOENT,
 * -EBADFD.
 */
int pcb_sub_info(struct pcb *bus, uint32_t topic_id,
		 struct pcb_sub_info *info);

/* ------------------------------------------------------------------ */
/* Causal order                                                       */
/* ------------------------------------------------------------------ */

/*
 * A checker for the causal order of a stream of messages, such as those
 * one ring delivers: fed every message in the order it was read, it finds
 *  - PCB_CAUSAL_NOT_AFTER: a message whose id is not greater than one of
 *    its dependencies (the kernel promises it always is);
 *  - PCB_CAUSAL_LATE_DEP: a message that arrives after a message that
 *    declared it as a dependency (the dependent came first).
 * Dependencies on messages the stream never carries (other topics,
 * messages read before the checker started) are no violation.
 *
 * Memory is bounded: the checker remembers the ids of the last
 * PCB_CAUSAL_WINDOW messages fed and up to PCB_CAUSAL_WINDOW declared
 * dependencies that have not arrived (a dependency on one of those
 * remembered messages is not kept).  When that is full, the oldest
 * declaration is forgotten and counted in @forgotten: a dependency that
 * arrives later than PCB_CAUSAL_WINDOW newer declarations may then go
 * unnoticed.  Nothing is ever reported wrongly.  Each message costs
 * O(PCB_CAUSAL_WINDOW * (1 + its dependencies)) comparisons.
 *
 * A checker is caller-owned memory (about 6 KiB) with no resources; it is
 * not thread-safe.
 */
#define PCB_CAUSAL_WINDOW	256

#define PCB_CAUSAL_NOT_AFTER	1
#define PCB_CAUSAL_LATE_DEP	2

/**
 * struct pcb_causal_violation - what a checker found wrong
 * @kind:	PCB_CAUSAL_NOT_AFTER or PCB_CAUSAL_LATE_DEP
 * @dependent:	the id of the message that declared the dependency
 * @dependency:	the id it declared
 *
 * NOT_AFTER: @dependent is the message just fed and @dependency >=
 * @dependent.  LATE_DEP: @dependency is the message just fed and
 * @dependent the one that came before it.
 */
struct pcb_causal_violation {
	unsigned int kind;
	uint64_t dependent;
	uint64_t dependency;
};

/**
 * struct pcb_causal_check - a causal-order checker
 * @messages:	messages fed
 * @violations:	violations found (a message may have several)
 * @forgotten:	declared dependencies given up for room
 * @first:	the first violation the last failing pcb_causal_feed()
 *		found
 *
 * The other members are private.
 */
struct pcb_causal_check {
	uint64_t messages;
	uint64_t violations;
	uint64_t forgotten;
	struct pcb_causal_violation first;

	struct {
		uint64_t id;		/* a dependency not arrived, or 0 */
		uint64_t by;		/* the message that declared it */
	} __pcb_pending[PCB_CAUSAL_WINDOW];
	uint64_t __pcb_seen[PCB_CAUSAL_WINDOW];	/* ids fed, or 0 */
	unsigned int __pcb_pending_next;
	unsigned int __pcb_seen_next;
};

/**
 * pcb_causal_init() - start checking a new stream
 * @c:		the checker
 */
void pcb_causal_init(struct pcb_causal_check *c);

/**
 * pcb_causal_feed() - the next message of the stream
 * @c:		the checker
 * @msg_id:	its id
 * @deps:	its dependencies (may be NULL when @nr_deps is 0)
 * @nr_deps:	how many, at most PCB_MAX_DEPS
 *
 * Return: 0; -EPROTO when the message violates causal order (@c->first
 * says how; @c->violations counts every violation); -EINVAL (NULL @c, a
 * @msg_id of 0, NULL @deps with @nr_deps, @nr_deps above PCB_MAX_DEPS),
 * and then the message is not taken into account.
 */
int pcb_causal_feed(struct pcb_causal_check *c, uint64_t msg_id,
		    const uint64_t *deps, unsigned int nr_deps);

/* pcb_causal_feed() of a received message. */
static inline int pcb_causal_feed_msg(struct pcb_causal_check *c,
				      const struct pcb_msg *msg)
{
	const uint64_t *deps;
	unsigned int n = pcb_msg_deps(msg, &deps);

	return pcb_causal_feed(c, msg->rec->msg_id, deps, n);
}

/* ------------------------------------------------------------------ */
/* Typed topics                                                       */
/* ------------------------------------------------------------------ */

/*
 * PCB_DEFINE_TOPIC(tag, type, schema_id) binds a C type and a schema id (a
 * constant expression) to a topic handle type, so that publishing or reading another C type is a
 * compile error:
 *
 *	struct imu { float ax, ay, az; };
 *	PCB_DEFINE_TOPIC(imu, struct imu, 0x696d7501);
 *
 *	struct pcb_topic_imu t;
 *	pcb_topic_imu_create(bus, "sensors/imu", NULL);
 *	pcb_topic_imu_open(&t, bus, "sensors/imu");
 *	pcb_publish_typed(&t, &sample, 0, 0, NULL);	// sample: struct imu
 *
 *	pcb_topic_imu_subscribe(&r, rx, "sensors/imu", 0);
 *	pcb_receive(rx, &msg, 0);
 *	const struct imu *p = pcb_msg_typed(&r, &msg);	// NULL: not an imu
 *
 * It defines struct pcb_topic_<tag> and, as static inline functions
 * (marked unused, so that clang does not warn about those a file leaves
 * out):
 *  pcb_topic_<tag>_create(bus, name, opts): pcb_topic_create() with
 *	@schema_id and sizeof(type) as max_msg_size (the rest from @opts,
 *	or the defaults when NULL);
 *  pcb_topic_<tag>_open(t, bus, name): open @t for publishing;
 *  pcb_topic_<tag>_subscribe(t, bus, name, flags): subscribe @bus's ring
 *	and remember the topic id in @t for pcb_msg_typed();
 *  pcb_topic_<tag>_close(t): close @t's publish handle, if open.
 * Each returns what the function it wraps returns.
 */
#define PCB_DEFINE_TOPIC(tag, type, schema)				\
struct pcb_topic_##tag {						\
	struct pcb *bus;						\
	int handle;							\
	uint32_t topic_id;						\
	type *__pcb_type[0];						\
};									\
									\
static inline __attribute__((__unused__)) int pcb_topic_##tag##_create(struct pcb *bus,		\
		const char *name, const struct pcb_topic_opts *opts)	\
{									\
	struct pcb_topic_opts o = PCB_TOPIC_OPTS_DEFAULT;		\
									\
	if (opts)							\
		o = *opts;						\
	o.schema_id = (schema);						\
	o.max_msg_size = sizeof(type);					\
	return pcb_topic_create(bus, name, &o, NULL);			\
}									\
									\
static inline __attribute__((__unused__)) int pcb_topic_##tag##_open(struct pcb_topic_##tag *t,	\
		struct pcb *bus, const char *name)			\
{									\
	int h = pcb_topic_open(bus, name, (schema));			\
									\
	t->bus = bus;							\
	t->handle = h < 0 ? -1 : h;					\
	return h;							\
}									\
									\
static inline __attribute__((__unused__)) int pcb_topic_##tag##_subscribe(struct pcb_topic_##tag *t, \
		struct pcb *bus, const char *name, uint32_t flags)	\
{									\
	t->bus = bus;							\
	t->handle = -1;							\
	return pcb_subscribe(bus, name, (schema), flags, &t->topic_id);	\
}									\
									\
static inline __attribute__((__unused__)) int pcb_topic_##tag##_close(struct pcb_topic_##tag *t)	\
{									\
	int h = t->handle;						\
									\
	t->handle = -1;							\
	return h < 0 ? 0 : pcb_topic_close(t->bus, h);			\
}

/* The C type bound to typed topic handle @t. */
#define pcb_topic_type(t)	__typeof__(*(t)->__pcb_type[0])

#define __pcb_assert_type(t, p)						\
	_Static_assert(__builtin_types_compatible_p(__typeof__(*(p)),	\
						    pcb_topic_type(t)),	\
		       "pcb: message type does not match the type of the topic")

/**
 * pcb_publish_typed() - pcb_publish() of *@msgp on typed topic @t
 *
 * A compile error unless *@msgp has the type bound to @t (qualifiers
 * aside).  Returns what pcb_publish() returns.
 */
#define pcb_publish_typed(t, msgp, key, timeout_ns, idp) __extension__ ({ \
	__typeof__(t) __pcb_t = (t);					\
									\
	__pcb_assert_type(__pcb_t, msgp);				\
	pcb_publish(__pcb_t->bus, __pcb_t->handle, (msgp),		\
		    sizeof(*(msgp)), (key), (timeout_ns), (idp));	\
})

/* pcb_try_publish() of *@msgp on typed topic @t; type checked likewise. */
#define pcb_try_publish_typed(t, msgp, key, idp) __extension__ ({	\
	__typeof__(t) __pcb_t = (t);					\
									\
	__pcb_assert_type(__pcb_t, msgp);				\
	pcb_try_publish(__pcb_t->bus, __pcb_t->handle, (msgp),		\
			sizeof(*(msgp)), (key), (idp));			\
})

static inline const void *__pcb_msg_typed(const struct pcb_msg *msg,
					  uint32_t topic_id, size_t size)
{
	if (msg->rec->topic_id != topic_id || msg->len != size)
		return NULL;
	return msg->data;
}

/**
 * pcb_msg_typed() - the payload of @msg as a pointer to @t's type
 *
 * Return: a const pointer into the ring (valid until pcb_release()), or
 * NULL when @msg is not from @t's topic or does not have the type's size.
 * The payload is 8-byte aligned.
 */
#define pcb_msg_typed(t, msg)						\
	((const pcb_topic_type(t) *)					\
	 __pcb_msg_typed((msg), (t)->topic_id, sizeof(pcb_topic_type(t))))

/**
 * pcb_msg_read_typed() - copy the payload of @msg into *@dstp
 *
 * A compile error unless *@dstp has the type bound to @t.
 *
 * Return: 0; -EPROTOTYPE when @msg is not from @t's topic or does not have
 * the type's size.
 */
#define pcb_msg_read_typed(t, msg, dstp) __extension__ ({		\
	const void *__pcb_p = pcb_msg_typed(t, msg);			\
									\
	__pcb_assert_type(t, dstp);					\
	__pcb_p ? (memcpy((dstp), __pcb_p, sizeof(*(dstp))), 0) : -EPROTOTYPE; \
})

#ifdef __cplusplus
}
#endif

#endif /* LIBPCB_H */
