// SPDX-License-Identifier: GPL-2.0
/*
 * pcbctl - manage pcb topics, publish and subscribe from the command line.
 *
 * Exit status: 0 on success, 1 on an error, 2 on a usage error.
 */
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <grp.h>
#include <inttypes.h>
#include <limits.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpcb.h>

#include "pcbctl.h"

const char *prog = "pcbctl";

void error(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "%s: ", prog);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

/* strerror() with the meaning each errno has for a topic operation. */
const char *topic_strerror(int err)
{
	switch (err) {
	case ENOENT:
		return "no such topic";
	case EEXIST:
		return "a topic of that name exists";
	case EPROTOTYPE:
		return "schema id does not match the topic's";
	case EACCES:
		return "permission denied by the topic's mode";
	case EPERM:
		return "not the owner, may not give it away, or another user's ~UID/ name";
	case EIDRM:
		return "the topic has been deleted";
	case EINVAL:
		return "invalid argument (names: 1-63 of A-Za-z0-9._:/-, no leading '.', or ~UID/)";
	case ENAMETOOLONG:
		return "topic name too long (at most 63 characters)";
	case EMSGSIZE:
		return "message larger than the topic's max-size";
	case EALREADY:
		return "already subscribed";
	default:
		return strerror(err);
	}
}

int open_bus(struct pcb **bus)
{
	int ret = pcb_open(bus);

	if (ret == -ENOENT)
		error("cannot open %s: %s (is the pcb module loaded?)",
		      PCB_DEVICE_PATH, strerror(-ret));
	else if (ret)
		error("cannot open %s: %s", PCB_DEVICE_PATH, strerror(-ret));
	return ret;
}

/* Number parsing: false on anything but a whole number in range. */
bool parse_u64(const char *s, int base, uint64_t max, uint64_t *out)
{
	unsigned long long v;
	char *end;

	if (!*s || *s == '-' || isspace((unsigned char)*s))
		return false;
	errno = 0;
	v = strtoull(s, &end, base);
	if (errno || *end || v > max)
		return false;
	*out = v;
	return true;
}

/* A size with an optional binary suffix: 4096, 64k, 1M. */
static bool parse_size(const char *s, uint64_t max, uint64_t *out)
{
	char buf[32];
	size_t n = strlen(s);
	unsigned int shift = 0;
	uint64_t v;

	if (!n || n >= sizeof(buf))
		return false;
	memcpy(buf, s, n + 1);
	switch (buf[n - 1]) {
	case 'k': case 'K':
		shift = 10;
		break;
	case 'm': case 'M':
		shift = 20;
		break;
	case 'g': case 'G':
		shift = 30;
		break;
	}
	if (shift)
		buf[n - 1] = '\0';
	if (!parse_u64(buf, 10, max >> shift, &v))
		return false;
	*out = v << shift;
	return true;
}

static bool parse_owner(const char *s, bool group, uint32_t *out)
{
	struct passwd *pw;
	struct group *gr;
	uint64_t v;

	if (parse_u64(s, 10, UINT32_MAX - 1, &v)) {
		*out = (uint32_t)v;
		return true;
	}
	if (group) {
		gr = getgrnam(s);
		if (gr)
			*out = gr->gr_gid;
		return gr;
	}
	pw = getpwnam(s);
	if (pw)
		*out = pw->pw_uid;
	return pw;
}

int bad_value(const char *opt, const char *val)
{
	error("invalid %s '%s'", opt, val);
	return EXIT_USAGE;
}

int usage_hint(const char *cmd)
{
	fprintf(stderr, "Try '%s %s --help'.\n", prog, cmd);
	return EXIT_USAGE;
}

/* ------------------------------------------------------------------ */
/* pcbctl topic ...                                                   */
/* ------------------------------------------------------------------ */

static const char topic_create_usage[] =
"Usage: pcbctl topic create NAME [OPTION]...\n"
"Create a topic.  NAME is 1 to 63 of A-Za-z0-9._:/-, not starting with\n"
"'.', or a user's name ~UID/NAME (UID in decimal), which only a topic\n"
"owned by UID may have: no one else can take it first.\n"
"\n"
"  --schema ID      schema id of its messages (default 0; 0x.. for hex)\n"
"  --max-size N     largest message in bytes, k/M suffixes (default 4096)\n"
"  --mode MODE      octal permission bits: read = subscribe lossy and see\n"
"                   the traffic, read + execute = subscribe reliably (make\n"
"                   publishers wait), write = publish; default 0744: you\n"
"                   publish and subscribe reliably, others listen lossy\n"
"  --owner USER     owning user, name or uid (default: you)\n"
"  --group GROUP    owning group, name or gid (default: your group)\n"
"  -h, --help       show this help\n";

static int topic_create(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "schema",   required_argument, NULL, 's' },
		{ "max-size", required_argument, NULL, 'm' },
		{ "mode",     required_argument, NULL, 'M' },
		{ "owner",    required_argument, NULL, 'o' },
		{ "group",    required_argument, NULL, 'g' },
		{ "help",     no_argument,       NULL, 'h' },
		{ }
	};
	struct pcb_topic_opts o = PCB_TOPIC_OPTS_DEFAULT;
	struct pcb *bus;
	uint32_t id;
	uint64_t v;
	int c, ret;

	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 's':
			if (!parse_u64(optarg, 0, UINT64_MAX, &o.schema_id))
				return bad_value("schema id", optarg);
			break;
		case 'm':
			if (!parse_size(optarg, UINT32_MAX, &v))
				return bad_value("max-size", optarg);
			o.max_msg_size = (uint32_t)v;
			break;
		case 'M':
			if (!parse_u64(optarg, 8, PCB_MODE_MASK, &v))
				return bad_value("mode", optarg);
			o.mode = (uint32_t)v;
			break;
		case 'o':
			if (!parse_owner(optarg, false, &o.uid))
				return bad_value("owner", optarg);
			break;
		case 'g':
			if (!parse_owner(optarg, true, &o.gid))
				return bad_value("group", optarg);
			break;
		case 'h':
			fputs(topic_create_usage, stdout);
			return 0;
		default:
			return usage_hint("topic create");
		}
	}
	if (argc - optind != 1) {
		error("topic create: expected one topic NAME");
		return usage_hint("topic create");
	}
	if (open_bus(&bus))
		return 1;
	ret = pcb_topic_create(bus, argv[optind], &o, &id);
	pcb_close(bus);
	if (ret) {
		error("topic '%s': %s", argv[optind], topic_strerror(-ret));
		return 1;
	}
	printf("%" PRIu32 "\n", id);
	return 0;
}

struct topic_table {
	struct pcb_topic_info *v;
	size_t n, cap;
};

static int collect_topic(const struct pcb_topic_info *info, void *arg)
{
	struct topic_table *t = arg;

	if (t->n == t->cap) {
		size_t cap = t->cap ? 2 * t->cap : 16;
		void *v = realloc(t->v, cap * sizeof(*t->v));

		if (!v)
			return -ENOMEM;
		t->v = v;
		t->cap = cap;
	}
	t->v[t->n++] = *info;
	return 0;
}

static const char topic_list_usage[] =
"Usage: pcbctl topic list\n"
"List every topic: id, name, schema id, max message size, mode,\n"
"owner uid:gid, subscriptions and messages published so far (\"-\" for\n"
"a topic whose traffic you may not see: not yours, no read permission).\n";

static int topic_list(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "help", no_argument, NULL, 'h' },
		{ }
	};
	struct topic_table t = { 0 };
	int width = 4;
	struct pcb *bus;
	size_t i;
	int c, ret;

	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		if (c == 'h') {
			fputs(topic_list_usage, stdout);
			return 0;
		}
		return usage_hint("topic list");
	}
	if (optind != argc) {
		error("topic list: unexpected argument '%s'", argv[optind]);
		return usage_hint("topic list");
	}
	if (open_bus(&bus))
		return 1;
	ret = pcb_topic_list(bus, collect_topic, &t);
	pcb_close(bus);
	if (ret < 0) {
		error("listing topics: %s", strerror(-ret));
		free(t.v);
		return 1;
	}

	for (i = 0; i < t.n; i++) {
		int len = (int)strnlen(t.v[i].name, PCB_NAME_MAX);

		if (len > width)
			width = len;
	}
	printf("%-6s %-*s %-18s %9s %-5s %-13s %11s %12s\n", "ID", width,
	       "NAME", "SCHEMA", "MAX-SIZE", "MODE", "OWNER", "SUBSCRIBERS",
	       "PUBLISHED");
	for (i = 0; i < t.n; i++) {
		const struct pcb_topic_info *ti = &t.v[i];
		char owner[24], subs[16] = "-", published[24] = "-";

		snprintf(owner, sizeof(owner), "%u:%u", ti->uid, ti->gid);
		/* The kernel zeroes hidden counters: 0 would be a lie. */
		if (!(ti->flags & PCB_TOPIC_INFO_HIDDEN)) {
			snprintf(subs, sizeof(subs), "%u", ti->nr_subscribers);
			snprintf(published, sizeof(published), "%" PRIu64,
				 (uint64_t)ti->published);
		}
		printf("%-6u %-*.*s 0x%016" PRIx64 " %9u %04o  %-13s %11s %12s\n",
		       ti->topic_id, width, PCB_NAME_MAX, ti->name,
		       (uint64_t)ti->schema_id, ti->max_msg_size, ti->mode,
		       owner, subs, published);
	}
	free(t.v);
	return 0;
}

static const char topic_info_usage[] =
"Usage: pcbctl topic info NAME\n"
"Show a topic's attributes and counters (the counters only to its owner\n"
"and to those who may read it).\n";

static void print_id_name(const char *label, uint32_t id, bool group)
{
	const char *name = NULL;

	if (group) {
		struct group *gr = getgrgid(id);

		name = gr ? gr->gr_name : NULL;
	} else {
		struct passwd *pw = getpwuid(id);

		name = pw ? pw->pw_name : NULL;
	}
	if (name)
		printf("%-12s %u (%s)\n", label, id, name);
	else
		printf("%-12s %u\n", label, id);
}

static int topic_info(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "help", no_argument, NULL, 'h' },
		{ }
	};
	struct pcb_topic_info ti;
	struct pcb *bus;
	int c, ret;

	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		if (c == 'h') {
			fputs(topic_info_usage, stdout);
			return 0;
		}
		return usage_hint("topic info");
	}
	if (argc - optind != 1) {
		error("topic info: expected one topic NAME");
		return usage_hint("topic info");
	}
	if (open_bus(&bus))
		return 1;
	ret = pcb_topic_info(bus, argv[optind], &ti);
	pcb_close(bus);
	if (ret) {
		error("topic '%s': %s", argv[optind], topic_strerror(-ret));
		return 1;
	}
	printf("%-12s %.*s\n", "name:", PCB_NAME_MAX, ti.name);
	printf("%-12s %u\n", "id:", ti.topic_id);
	printf("%-12s 0x%" PRIx64 " (%" PRIu64 ")\n", "schema:",
	       (uint64_t)ti.schema_id, (uint64_t)ti.schema_id);
	printf("%-12s %u\n", "max-size:", ti.max_msg_size);
	printf("%-12s %04o\n", "mode:", ti.mode);
	print_id_name("owner:", ti.uid, false);
	print_id_name("group:", ti.gid, true);
	printf("%-12s 0x%x\n", "flags:", ti.flags);
	if (ti.flags & PCB_TOPIC_INFO_HIDDEN) {
		printf("%-12s - (hidden: not your topic, no read permission)\n",
		       "subscribers:");
		printf("%-12s - (hidden)\n", "published:");
		return 0;
	}
	printf("%-12s %u\n", "subscribers:", ti.nr_subscribers);
	printf("%-12s %" PRIu64 "\n", "published:", (uint64_t)ti.published);
	return 0;
}

static const char topic_delete_usage[] =
"Usage: pcbctl topic delete NAME\n"
"Delete a topic (its owner or CAP_IPC_OWNER only).  Subscriptions to it\n"
"end; messages already received stay readable.\n";

static int topic_delete(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "help", no_argument, NULL, 'h' },
		{ }
	};
	struct pcb *bus;
	int c, ret;

	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		if (c == 'h') {
			fputs(topic_delete_usage, stdout);
			return 0;
		}
		return usage_hint("topic delete");
	}
	if (argc - optind != 1) {
		error("topic delete: expected one topic NAME");
		return usage_hint("topic delete");
	}
	if (open_bus(&bus))
		return 1;
	ret = pcb_topic_delete(bus, argv[optind]);
	pcb_close(bus);
	if (ret) {
		error("topic '%s': %s", argv[optind], topic_strerror(-ret));
		return 1;
	}
	return 0;
}

struct command {
	const char *name;
	int (*run)(int argc, char **argv);
	const char *usage;
};

static const struct command topic_cmds[] = {
	{ "create", topic_create, topic_create_usage },
	{ "list",   topic_list,   topic_list_usage },
	{ "info",   topic_info,   topic_info_usage },
	{ "delete", topic_delete, topic_delete_usage },
	{ }
};

static const char topic_usage[] =
"Usage: pcbctl topic COMMAND [ARG]...\n"
"\n"
"  create NAME [OPTION]...   create a topic\n"
"  list                      list the topics\n"
"  info NAME                 show a topic\n"
"  delete NAME               delete a topic\n"
"\n"
"'pcbctl topic COMMAND --help' describes each command.\n";

static int run_command(const struct command *cmds, const char *what,
		       const char *usage, int argc, char **argv);

static int topic_main(int argc, char **argv)
{
	return run_command(topic_cmds, "topic", topic_usage, argc - 1, argv + 1);
}

/* ------------------------------------------------------------------ */
/* pcbctl pub                                                         */
/* ------------------------------------------------------------------ */

static const char pub_usage[] =
"Usage: pcbctl pub [OPTION]... TOPIC [MSG]...\n"
"Publish each MSG as one message, or each line of standard input (without\n"
"its newline) when no MSG is given.  Put '--' before messages that start\n"
"with '-'.  Stops after the first message, or batch, with a failure.\n"
"\n"
"  --key K          64-bit key carried in each record (default 0)\n"
"  --timeout MS     give up when a reliable subscriber has had no room\n"
"                   for MS milliseconds (default 0: wait without limit)\n"
"  --nonblock       fail at once when a reliable subscriber has no room\n"
"  --batch N        publish N messages (at most 4096) per system call;\n"
"                   standard input is read N lines at a time.  A message\n"
"                   that fails does not stop the rest of its batch\n"
"  --atomic         with --batch: publish each batch whole or not at all\n"
"                   (its messages add up to 16 MiB at most)\n"
"  --uring[=sqpoll] publish through io_uring, N messages (--batch, else\n"
"                   64) per submission, in order: a message that fails\n"
"                   cancels the rest of its submission.  sqpoll: a kernel\n"
"                   thread takes them, without system calls while busy\n"
"  --dep ID         each message depends on message ID (repeatable, up to\n"
"                   8): the kernel checks that ID was handed out, gives\n"
"                   the new message a greater id and puts ID in its\n"
"                   record for subscribers ('pcbctl sub' prints them)\n"
"  --schema ID      schema id to publish with (default: the topic's)\n"
"  -v, --verbose    print the id of each published message\n"
"  -h, --help       show this help\n";

/* One message to publish: an argument, or a line of standard input. */
struct pub_msg {
	const char *data;
	size_t len;
	char *line;		/* getline() buffer, reused for each group */
	size_t cap;
};

struct pub_ctx {
	struct pcb *bus;
	const char *topic;
	int handle;
	uint64_t key;
	uint64_t timeout_ns;
	bool nonblock;
	bool verbose;
	bool atomic;
	bool uring;
	uint32_t uring_flags;
	unsigned int batch;		/* --batch N, 0 without */
	uint64_t deps[PCB_MAX_DEPS];	/* --dep */
	unsigned int nr_deps;

	char **args;			/* the MSGs, NULL for standard input */
	int nr_args;
	unsigned int group;		/* messages handed over at once */
	uint64_t done;			/* messages of earlier groups */
	struct pub_msg *msgs;		/* the group */
	struct pcb_batch_entry *ents;	/* their results */
	struct pcb_uring_result *res;	/* with --uring */
	struct pcb_uring_pub *up;
};

#define DEP_EINVAL	"invalid --dep: an id not handed out yet, or one given twice"

static int pub_one(const struct pub_ctx *p, const char *msg, size_t len)
{
	uint64_t id;
	int ret;

	if (p->nonblock)
		ret = pcb_try_publish_deps(p->bus, p->handle, msg, len, p->key,
					   p->deps, p->nr_deps, &id);
	else
		ret = pcb_publish_deps(p->bus, p->handle, msg, len, p->key,
				       p->deps, p->nr_deps, p->timeout_ns, &id);
	if (ret == -EAGAIN)
		error("topic '%s': a reliable subscriber's ring is full", p->topic);
	else if (ret == -ETIMEDOUT)
		error("topic '%s': timed out waiting for room in a reliable subscriber's ring",
		      p->topic);
	else if (ret == -EINVAL && p->nr_deps)
		error("topic '%s': publish: %s", p->topic, DEP_EINVAL);
	else if (ret)
		error("topic '%s': publish: %s", p->topic, topic_strerror(-ret));
	else if (p->verbose)
		printf("%" PRIu64 "\n", id);
	return ret;
}

/* Why one message of a batch or of a submission failed. */
static const char *msg_strerror(const struct pub_ctx *p, int err)
{
	switch (err) {
	case EINVAL:
		return p->nr_deps ? DEP_EINVAL : topic_strerror(err);
	case EAGAIN:
		return "a reliable subscriber's ring is full";
	case ETIMEDOUT:
		return "timed out waiting for room in a reliable subscriber's ring";
	case ECANCELED:
		return "not published: another message of its batch failed";
	case E2BIG:
		return "the batch does not fit a reliable subscriber's ring, or is over 16 MiB";
	case EINTR:
		return "interrupted";
	default:
		return topic_strerror(err);
	}
}

/*
 * Report the group's failures, a run of messages that failed alike as one
 * line, and with -v print the ids.  Returns the first failure, else 0.
 */
static int report_group(const struct pub_ctx *p, unsigned int n)
{
	const struct pcb_batch_entry *e = p->ents;
	unsigned int i, j;
	int ret = 0;

	for (i = 0; i < n; i = j) {
		for (j = i + 1; j < n && e[j].result == e[i].result; j++)
			;
		if (!e[i].result) {
			while (p->verbose && i < j)
				printf("%" PRIu64 "\n", (uint64_t)e[i++].msg_id);
			continue;
		}
		ret = ret ?: e[i].result;
		if (j - i == 1)
			error("topic '%s': message %" PRIu64 ": %s", p->topic,
			      p->done + i + 1, msg_strerror(p, -e[i].result));
		else
			error("topic '%s': messages %" PRIu64 "-%" PRIu64 ": %s",
			      p->topic, p->done + i + 1, p->done + j,
			      msg_strerror(p, -e[i].result));
	}
	return ret;
}

/* Not an errno: marks an entry the kernel has not answered. */
#define NO_RESULT	1

static int pub_batch(struct pub_ctx *p, unsigned int n)
{
	uint32_t flags = (p->nonblock ? PCB_PUB_NONBLOCK : 0) |
			 (p->atomic ? PCB_PUB_ATOMIC : 0);
	unsigned int i;
	int ret;

	for (i = 0; i < n; i++) {
		pcb_batch_entry_prep(&p->ents[i], p->handle, p->msgs[i].data,
				     (uint32_t)p->msgs[i].len, p->key);
		p->ents[i].result = NO_RESULT;
	}
	ret = pcb_publish_batch_deps(p->bus, p->ents, n, flags, p->timeout_ns,
				     p->deps, p->nr_deps);
	/* The call itself failed, before any message had a result. */
	if (ret < 0 && p->ents[0].result == NO_RESULT) {
		error("topic '%s': publish batch: %s", p->topic,
		      ret == -EINVAL && p->nr_deps ? DEP_EINVAL : strerror(-ret));
		return ret;
	}
	return report_group(p, n);
}

static int uring_submit_all(struct pub_ctx *p, unsigned int n)
{
	unsigned int sent = 0;
	int ret;

	/* The kernel may take fewer than queued when memory is short. */
	while (sent < n) {
		ret = pcb_uring_pub_submit(p->up);
		if (ret <= 0) {
			error("io_uring: submit: %s", strerror(ret ? -ret : EAGAIN));
			return ret ? ret : -EAGAIN;
		}
		sent += (unsigned int)ret;
	}
	return 0;
}

static int uring_reap_all(struct pub_ctx *p, unsigned int n)
{
	unsigned int got = 0, i;
	int ret;

	while (got < n) {
		ret = pcb_uring_pub_reap(p->up, p->res, n - got,
					 PCB_URING_WAIT_FOREVER);
		if (ret == -EINTR)
			continue;
		if (ret < 0) {
			error("io_uring: reap: %s", strerror(-ret));
			return ret;
		}
		for (i = 0; i < (unsigned int)ret; i++) {
			struct pcb_batch_entry *e = &p->ents[p->res[i].user_data];

			e->result = p->res[i].res;
			e->msg_id = p->res[i].msg_id;
		}
		got += (unsigned int)ret;
	}
	return 0;
}

static int pub_uring(struct pub_ctx *p, unsigned int n)
{
	uint32_t flags = p->nonblock ? PCB_PUB_NONBLOCK : 0;
	unsigned int i;
	int ret;

	for (i = 0; i < n; i++) {
		ret = pcb_uring_pub_queue_deps(p->up, p->handle,
					       p->msgs[i].data, p->msgs[i].len,
					       p->key, p->deps, p->nr_deps,
					       flags, i);
		if (ret) {
			error("io_uring: queue: %s", strerror(-ret));
			return ret;
		}
	}
	ret = uring_submit_all(p, n);
	if (!ret)
		ret = uring_reap_all(p, n);
	return ret ? ret : report_group(p, n);
}

/* Up to p->group messages: the next MSGs, else lines of standard input. */
static int next_group(struct pub_ctx *p)
{
	unsigned int n;

	for (n = 0; n < p->group; n++) {
		struct pub_msg *m = &p->msgs[n];
		ssize_t len;

		if (p->args) {
			if (!p->nr_args)
				break;
			m->data = *p->args++;
			m->len = strlen(m->data);
			p->nr_args--;
			continue;
		}
		len = getline(&m->line, &m->cap, stdin);
		if (len < 0)
			break;
		if (len && m->line[len - 1] == '\n')
			m->line[--len] = '\0';
		/* Batch entries have 32-bit lengths; no topic takes more. */
		if ((size_t)len > UINT32_MAX) {
			error("topic '%s': %s", p->topic, topic_strerror(EMSGSIZE));
			return -EMSGSIZE;
		}
		m->data = m->line;
		m->len = (size_t)len;
	}
	return (int)n;
}

static int pub_loop(struct pub_ctx *p)
{
	int n, ret = 0;

	while (!ret && (n = next_group(p)) > 0) {
		if (p->uring)
			ret = pub_uring(p, (unsigned int)n);
		else if (p->batch)
			ret = pub_batch(p, (unsigned int)n);
		else
			ret = pub_one(p, p->msgs[0].data, p->msgs[0].len);
		p->done += (uint64_t)n;
	}
	return n < 0 ? n : ret;
}

static int pub_alloc(struct pub_ctx *p)
{
	p->group = p->batch ? p->batch :
		   p->uring ? PCB_URING_DEFAULT_DEPTH : 1;
	p->msgs = calloc(p->group, sizeof(*p->msgs));
	p->ents = calloc(p->group, sizeof(*p->ents));
	p->res = calloc(p->group, sizeof(*p->res));
	if (!p->msgs || !p->ents || !p->res) {
		error("%s", strerror(ENOMEM));
		return -ENOMEM;
	}
	return 0;
}

static void pub_free(struct pub_ctx *p)
{
	unsigned int i;

	pcb_uring_pub_destroy(p->up);
	for (i = 0; p->msgs && i < p->group; i++)
		free(p->msgs[i].line);
	free(p->msgs);
	free(p->ents);
	free(p->res);
}

static int pub_uring_setup(struct pub_ctx *p)
{
	int ret;

	if (!p->uring)
		return 0;
	ret = pcb_uring_pub_create(&p->up, p->bus, p->group, p->uring_flags);
	if (ret) {
		error("io_uring%s: %s", p->uring_flags & PCB_URING_SQPOLL ?
		      " with SQPOLL" : "", ret == -ENOSYS || ret == -EPERM ?
		      "not available in this system" : strerror(-ret));
		return ret;
	}
	pcb_uring_pub_set_timeout(p->up, p->timeout_ns);
	return 0;
}

/* The schema id a command uses: --schema, else the topic's own. */
static int topic_schema(struct pcb *bus, const char *topic, bool given,
			uint64_t *schema)
{
	struct pcb_topic_info ti;
	int ret;

	if (given)
		return 0;
	ret = pcb_topic_info(bus, topic, &ti);
	if (ret) {
		error("topic '%s': %s", topic, topic_strerror(-ret));
		return ret;
	}
	*schema = ti.schema_id;
	return 0;
}

static bool parse_uring(const char *arg, struct pub_ctx *p)
{
	p->uring = true;
	/* In order: a message that must wait for room holds the rest back. */
	p->uring_flags = PCB_URING_ORDERED;
	if (!arg)
		return true;
	if (strcmp(arg, "sqpoll"))
		return false;
	p->uring_flags |= PCB_URING_SQPOLL;
	return true;
}

static int check_pub_opts(const struct pub_ctx *p)
{
	if (p->atomic && !p->batch) {
		error("pub: --atomic needs --batch");
		return EXIT_USAGE;
	}
	if (p->atomic && p->uring) {
		error("pub: --atomic does not go with --uring");
		return EXIT_USAGE;
	}
	return 0;
}

static int pub_main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "key",      required_argument, NULL, 'k' },
		{ "timeout",  required_argument, NULL, 't' },
		{ "nonblock", no_argument,       NULL, 'n' },
		{ "batch",    required_argument, NULL, 'b' },
		{ "atomic",   no_argument,       NULL, 'a' },
		{ "uring",    optional_argument, NULL, 'u' },
		{ "dep",      required_argument, NULL, 'd' },
		{ "schema",   required_argument, NULL, 's' },
		{ "verbose",  no_argument,       NULL, 'v' },
		{ "help",     no_argument,       NULL, 'h' },
		{ }
	};
	struct pub_ctx p = { 0 };
	bool schema_given = false;
	uint64_t schema = 0, ms, v;
	int c, ret;

	while ((c = getopt_long(argc, argv, "vh", opts, NULL)) != -1) {
		switch (c) {
		case 'k':
			if (!parse_u64(optarg, 0, UINT64_MAX, &p.key))
				return bad_value("key", optarg);
			break;
		case 't':
			if (!parse_u64(optarg, 10, UINT64_MAX / 1000000, &ms))
				return bad_value("timeout", optarg);
			p.timeout_ns = ms * 1000000;
			break;
		case 'n':
			p.nonblock = true;
			break;
		case 'b':
			if (!parse_u64(optarg, 10, PCB_BATCH_MAX, &v) || !v)
				return bad_value("batch size (1-4096)", optarg);
			p.batch = (unsigned int)v;
			break;
		case 'a':
			p.atomic = true;
			break;
		case 'u':
			if (!parse_uring(optarg, &p))
				return bad_value("io_uring mode (only 'sqpoll')", optarg);
			break;
		case 'd':
			if (!parse_u64(optarg, 0, UINT64_MAX, &v) || !v)
				return bad_value("dependency (a message id)", optarg);
			if (p.nr_deps == PCB_MAX_DEPS) {
				error("pub: at most %d --dep", PCB_MAX_DEPS);
				return usage_hint("pub");
			}
			p.deps[p.nr_deps++] = v;
			break;
		case 's':
			if (!parse_u64(optarg, 0, UINT64_MAX, &schema))
				return bad_value("schema id", optarg);
			schema_given = true;
			break;
		case 'v':
			p.verbose = true;
			break;
		case 'h':
			fputs(pub_usage, stdout);
			return 0;
		default:
			return usage_hint("pub");
		}
	}
	ret = check_pub_opts(&p);
	if (ret)
		return usage_hint("pub");
	if (optind >= argc) {
		error("pub: expected a TOPIC");
		return usage_hint("pub");
	}
	p.topic = argv[optind++];
	if (optind < argc) {
		p.args = argv + optind;
		p.nr_args = argc - optind;
	}

	if (pub_alloc(&p) || open_bus(&p.bus)) {
		pub_free(&p);
		return 1;
	}
	ret = topic_schema(p.bus, p.topic, schema_given, &schema);
	if (ret)
		goto out;
	ret = pcb_topic_open(p.bus, p.topic, schema);
	if (ret < 0) {
		error("topic '%s': cannot publish: %s", p.topic,
		      topic_strerror(-ret));
		goto out;
	}
	p.handle = ret;
	ret = pub_uring_setup(&p);
	if (!ret)
		ret = pub_loop(&p);
out:
	/* The publisher first: it uses the endpoint. */
	pub_free(&p);
	pcb_close(p.bus);
	return ret ? 1 : 0;
}

/* ------------------------------------------------------------------ */
/* pcbctl sub                                                         */
/* ------------------------------------------------------------------ */

static const char sub_usage[] =
"Usage: pcbctl sub [OPTION]... TOPIC...\n"
"Subscribe to the TOPICs and print each message as it arrives:\n"
"  TOPIC id=MSG-ID seq=SEQ pid=PID uid=UID key=KEY [deps=ID,...]\n"
"        lat=LATENCY len=N PAYLOAD\n"
"(on one line).  deps= lists the messages the publisher declared this one\n"
"depends on, when there are any.  LATENCY is the time since the publish\n"
"call entered the kernel, on the bus clock (the TSC, or CLOCK_MONOTONIC\n"
"where the TSC is not usable; '-' when it cannot be read); PAYLOAD is\n"
"printed as is when it is printable text, else as 0x and hex digits.\n"
"Lines starting with '#' report drops, sequence gaps (except with\n"
"--filter, whose rejections leave gaps as well) and, with --causal,\n"
"causal-order violations.  Runs until SIGINT/SIGTERM, or --count\n"
"messages; then prints on standard error the p50, p99 and max of those\n"
"latencies (the percentiles from libpcb's histogram, at most 6.25 %\n"
"high) and, for each TOPIC, how many messages the kernel delivered to\n"
"the ring, dropped for want of room (lossy) and rejected by the filter.\n"
"\n"
"  --filter EXPR    deliver only the messages EXPR accepts, filtered in the\n"
"                   kernel (repeatable: all must hold); see FILTERS below\n"
"  --causal         check causal order: report a message that arrives\n"
"                   after a message that depends on it, or whose id is\n"
"                   not above its dependencies (status 1 if any)\n"
"  --lossy          lossy subscriptions: never slow publishers down, miss\n"
"                   messages when the ring is full (default: reliable,\n"
"                   which needs read and execute permission on each\n"
"                   TOPIC; lossy needs read)\n"
"  --ring-size N    ring data size in bytes, a power of two, k/M suffixes\n"
"                   (default 256k)\n"
"  --count N        exit after N messages\n"
"  --timeout MS     exit when no message came for MS milliseconds (status\n"
"                   1 when --count messages did not all come)\n"
"  --schema ID      schema id to subscribe with (default: each topic's)\n"
"  -h, --help       show this help\n"
"\n"
"FILTERS\n"
"  EXPR is groups joined by ',' (every group must hold); a group is\n"
"  predicates joined by '|' (one of them must hold).  A predicate is\n"
"    FIELD OP VALUE          FIELD compared with VALUE\n"
"    FIELD&MASK OP VALUE     FIELD AND MASK compared with VALUE\n"
"    FIELD&BITS:all          every bit of BITS set in FIELD\n"
"    FIELD&BITS:any          at least one bit of BITS set in FIELD\n"
"  where OP is == != < <= > >= and FIELD is\n"
"    key                     the publisher's 64-bit key\n"
"    uid                     the publisher's effective uid\n"
"    pid                     the publisher's process id\n"
"    len                     the payload length in bytes\n"
"    TYPE@OFFSET             payload bytes from byte OFFSET, read as TYPE:\n"
"                            u8 u16 u32 u64 unsigned, s8 s16 s32 s64\n"
"                            signed, both in this machine's byte order;\n"
"                            be16 be32 be64 unsigned, sbe16 sbe32 sbe64\n"
"                            signed, both big-endian (network order)\n"
"  Numbers are decimal, or hexadecimal after 0x; only a signed TYPE takes\n"
"  a negative VALUE.  Every number must fit its field, MASK must not be\n"
"  0, and OFFSET plus the TYPE's size must not exceed the topic's\n"
"  max-size.  A message too short to hold a TYPE@OFFSET field fails that\n"
"  predicate, whatever OP.  Spaces around tokens are allowed; quote EXPR\n"
"  for the shell.  All --filter options together hold at most 16\n"
"  predicates, and apply to every TOPIC.  Examples:\n"
"    --filter 'key==42'               --filter 'uid!=0'\n"
"    --filter 'len>=100'              --filter 'u32@8>1000'\n"
"    --filter 's16@2<-5'              --filter 'be16@12==0x0800'\n"
"    --filter 'u8@3&0x0f==3'          --filter 'key&0x6:all'\n"
"    --filter 'key==1|key==2, len>100'   (key 1 or 2, and len over 100)\n";

struct sub_topic {
	const char *name;
	uint32_t id;
	uint64_t last_seq;
};

struct sub_ctx {
	struct pcb *bus;
	struct sub_topic *topics;
	int nr_topics;
	uint64_t received;
	uint64_t gaps;
	uint64_t dropped;

	struct pcb_filter_spec filter;	/* --filter, all of them */
	bool filtered;
	struct pcb_causal_check *causal;	/* --causal, else NULL */
	struct pcb_lat_hist *lat;		/* one-way latency */
};

static volatile sig_atomic_t stop_signal;

static void on_signal(int sig)
{
	stop_signal = sig;
}

static int setup_signals(void)
{
	struct sigaction sa = { .sa_handler = on_signal };

	/* No SA_RESTART: a signal must interrupt PCB_IOC_WAIT. */
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGINT, &sa, NULL) || sigaction(SIGTERM, &sa, NULL))
		return -errno;
	return 0;
}

static struct sub_topic *find_topic(struct sub_ctx *s, uint32_t id)
{
	int i;

	for (i = 0; i < s->nr_topics; i++)
		if (s->topics[i].id == id)
			return &s->topics[i];
	return NULL;
}

void format_ns(char *buf, size_t len, uint64_t ns)
{
	if (ns < 1000)
		snprintf(buf, len, "%" PRIu64 "ns", ns);
	else if (ns < 1000000)
		snprintf(buf, len, "%.1fus", ns / 1e3);
	else if (ns < 1000000000)
		snprintf(buf, len, "%.2fms", ns / 1e6);
	else
		snprintf(buf, len, "%.3fs", ns / 1e9);
}

/*
 * The message's one-way latency, into the histogram, measured before
 * anything is printed: -1 when the bus clock cannot be read here.
 */
static int64_t measure_latency(struct sub_ctx *s, const struct pcb_msg *msg)
{
	uint64_t ns;

	if (pcb_msg_latency_ns(s->bus, msg, &ns)) {
		s->lat->failed++;
		return -1;
	}
	pcb_lat_hist_add(s->lat, ns);
	return (int64_t)ns;
}

static void print_latency(int64_t ns)
{
	char buf[32];

	if (ns < 0) {
		fputs("lat=-", stdout);
		return;
	}
	format_ns(buf, sizeof(buf), (uint64_t)ns);
	printf("lat=%s", buf);
}

const char *clock_name(uint32_t clock)
{
	switch (clock) {
	case PCB_CLOCK_TSC:
		return "TSC";
	case PCB_CLOCK_MONO:
		return "CLOCK_MONOTONIC";
	default:
		return "unknown";
	}
}

/* p50, p99 and max of what came, from libpcb's histogram. */
static void print_lat_summary(const struct sub_ctx *s)
{
	struct pcb_lat_summary ls;
	char p50[32], p99[32], max[32];

	pcb_lat_hist_summary(s->lat, &ls);
	if (!ls.count)
		return;
	format_ns(p50, sizeof(p50), ls.p50_ns);
	format_ns(p99, sizeof(p99), ls.p99_ns);
	format_ns(max, sizeof(max), ls.max_ns);
	fprintf(stderr, "%s: one-way latency of %" PRIu64 " message(s), publish call to receipt on the %s clock: p50 %s, p99 %s, max %s\n",
		prog, ls.count, clock_name(pcb_clock(s->bus)), p50, p99, max);
}

#define HEX_MAX	64	/* payload bytes printed in hex before "..." */

static void print_payload(const unsigned char *p, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++)
		if (!isprint(p[i]) && p[i] != '\t')
			break;
	if (i == len) {
		fwrite(p, 1, len, stdout);
		return;
	}
	fputs("0x", stdout);
	for (i = 0; i < len && i < HEX_MAX; i++)
		printf("%02x", p[i]);
	if (len > HEX_MAX)
		fputs("...", stdout);
}

/* Report what went missing before @seq, then remember it. */
static void check_seq(struct sub_ctx *s, struct sub_topic *t, uint64_t seq)
{
	uint64_t last = t->last_seq;

	t->last_seq = seq;
	/* The first message: whatever came before is not ours to miss. */
	if (!last || seq == last + 1)
		return;
	if (seq < last) {
		printf("# %s: out of order: seq %" PRIu64 " after %" PRIu64 "\n",
		       t->name, seq, last);
		return;
	}
	/* The filter's rejections leave gaps too: SUB_INFO counts them. */
	if (s->filtered)
		return;
	printf("# %s: gap: %" PRIu64 " message(s) missed", t->name,
	       seq - last - 1);
	printf(" (seq %" PRIu64 "..%" PRIu64 ")\n", last + 1, seq - 1);
	s->gaps += seq - last - 1;
}

static void check_dropped(struct sub_ctx *s)
{
	uint64_t dropped = pcb_dropped(s->bus);

	if (dropped != s->dropped) {
		printf("# dropped: %" PRIu64 " more, %" PRIu64 " in all\n",
		       dropped - s->dropped, dropped);
		s->dropped = dropped;
	}
}

static void print_deps(const struct pcb_msg *msg)
{
	const uint64_t *deps;
	unsigned int i, n = pcb_msg_deps(msg, &deps);

	for (i = 0; i < n; i++)
		printf("%s%" PRIu64, i ? "," : "deps=", deps[i]);
	if (n)
		putchar(' ');
}

static void check_causal(struct sub_ctx *s, const struct pcb_msg *msg)
{
	const struct pcb_causal_violation *v = &s->causal->first;

	if (pcb_causal_feed_msg(s->causal, msg) != -EPROTO)
		return;
	if (v->kind == PCB_CAUSAL_LATE_DEP)
		printf("# causal: message %" PRIu64 " arrived after message %"
		       PRIu64 ", which depends on it\n", v->dependency,
		       v->dependent);
	else
		printf("# causal: message %" PRIu64 " depends on %" PRIu64
		       ", which is not older\n", v->dependent, v->dependency);
}

static void print_msg(struct sub_ctx *s, const struct pcb_msg *msg)
{
	const struct pcb_record *r = msg->rec;
	struct sub_topic *t = find_topic(s, r->topic_id);
	int64_t lat = measure_latency(s, msg);

	check_dropped(s);
	if (t) {
		check_seq(s, t, r->seq);
		printf("%s ", t->name);
	} else {
		printf("topic#%u ", r->topic_id);
	}
	printf("id=%" PRIu64 " seq=%" PRIu64 " pid=%u uid=%u key=%" PRIu64 " ",
	       (uint64_t)r->msg_id, (uint64_t)r->seq, r->pid, r->uid,
	       (uint64_t)r->key);
	print_deps(msg);
	print_latency(lat);
	printf(" len=%zu ", msg->len);
	print_payload(msg->data, msg->len);
	putchar('\n');
	if (s->causal)
		check_causal(s, msg);
}

/* Why subscribing to @t failed. */
static void subscribe_error(struct sub_ctx *s, const struct sub_topic *t,
			    uint32_t flags, int err)
{
	struct pcb_topic_info ti;

	if (err == -EACCES && !(flags & PCB_SUB_LOSSY)) {
		/* The common surprise: a topic the user may read, lossy only. */
		error("topic '%s': cannot subscribe: permission denied (reliable needs read and execute permission; --lossy, read)",
		      t->name);
	} else if (err == -ENOSPC) {
		error("topic '%s': cannot subscribe: %s", t->name,
		      "ring too small for its max-size, or too many subscribers");
	} else if (err == -EINVAL && s->filtered &&
		   !pcb_topic_info(s->bus, t->name, &ti)) {
		error("topic '%s': cannot subscribe: the filter reads beyond the topic's max-size (%u bytes)",
		      t->name, ti.max_msg_size);
	} else {
		error("topic '%s': cannot subscribe: %s", t->name,
		      topic_strerror(-err));
	}
}

static int subscribe_all(struct sub_ctx *s, char **names, uint32_t flags,
			 bool schema_given, uint64_t schema)
{
	int i, ret;

	for (i = 0; i < s->nr_topics; i++) {
		struct sub_topic *t = &s->topics[i];
		uint64_t sid = schema;

		t->name = names[i];
		ret = topic_schema(s->bus, t->name, schema_given, &sid);
		if (ret)
			return ret;
		ret = pcb_subscribe_filtered(s->bus, t->name, sid, flags,
					     s->filtered ? &s->filter : NULL,
					     &t->id);
		if (ret) {
			subscribe_error(s, t, flags, ret);
			return ret;
		}
		fprintf(stderr, "%s: subscribed to '%s' (topic id %u, %s%s)\n",
			prog, t->name, t->id,
			flags & PCB_SUB_LOSSY ? "lossy" : "reliable",
			s->filtered ? ", filtered" : "");
	}
	return 0;
}

/* What the kernel counted for each subscription. */
static void print_sub_counters(struct sub_ctx *s)
{
	struct pcb_sub_info si;
	int i, ret;

	for (i = 0; i < s->nr_topics; i++) {
		const struct sub_topic *t = &s->topics[i];

		if (!t->id)
			continue;
		ret = pcb_sub_info(s->bus, t->id, &si);
		if (ret) {
			/* ENOENT: the topic was deleted meanwhile. */
			fprintf(stderr, "%s: '%s': no counters: %s\n", prog,
				t->name, ret == -ENOENT ?
				"no longer subscribed" : strerror(-ret));
			continue;
		}
		fprintf(stderr, "%s: '%s': %" PRIu64 " delivered, %" PRIu64
			" dropped, %" PRIu64 " rejected by the filter\n", prog,
			t->name, (uint64_t)si.delivered, (uint64_t)si.dropped,
			(uint64_t)si.rejected);
	}
}

/* Adds --filter @expr to @s's filter; false on an error, reported. */
static bool add_filter(struct sub_ctx *s, const char *expr)
{
	const char *at = NULL;
	int ret = pcb_filter_parse(&s->filter, expr, &at);

	if (ret == -E2BIG) {
		error("--filter '%s': more than %d predicates in all", expr,
		      PCB_FILTER_MAX_PREDS);
		return false;
	}
	if (ret && *at)
		error("--filter '%s': invalid from '%s'", expr, at);
	else if (ret)
		error("--filter '%s': incomplete: something is missing at its end",
		      expr);
	if (ret)
		return false;
	s->filtered = true;
	return true;
}

/* How long one wait may block: short enough to notice a signal soon. */
#define SUB_POLL_NS	(200 * 1000000ULL)

/* Receive until a signal, @count messages or @idle_ns without one. */
static int sub_loop(struct sub_ctx *s, uint64_t count, uint64_t idle_ns)
{
	uint64_t idle = 0;
	struct pcb_msg msg;
	int ret;

	while (!stop_signal && (!count || s->received < count)) {
		ret = pcb_receive(s->bus, &msg, SUB_POLL_NS);
		if (ret == -ETIMEDOUT || ret == -EINTR) {
			idle += SUB_POLL_NS;
			if (idle_ns && idle >= idle_ns) {
				if (!count)
					return 0;
				error("timed out after %" PRIu64 " of %" PRIu64 " messages",
				      s->received, count);
				return -ETIMEDOUT;
			}
			continue;
		}
		if (ret < 0) {
			error("receiving: %s", ret == -EPIPE ?
			      "the ring is broken" : strerror(-ret));
			return ret;
		}
		idle = 0;
		print_msg(s, &msg);
		pcb_release(s->bus, &msg);
		s->received++;
	}
	return 0;
}

static int sub_main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "filter",    required_argument, NULL, 'f' },
		{ "causal",    no_argument,       NULL, 'C' },
		{ "lossy",     no_argument,       NULL, 'l' },
		{ "ring-size", required_argument, NULL, 'r' },
		{ "count",     required_argument, NULL, 'c' },
		{ "timeout",   required_argument, NULL, 't' },
		{ "schema",    required_argument, NULL, 's' },
		{ "help",      no_argument,       NULL, 'h' },
		{ }
	};
	struct sub_ctx s = { 0 };
	uint64_t ring_size = PCB_RING_DEFAULT_SIZE, count = 0, idle_ns = 0;
	uint64_t schema = 0, ms;
	bool schema_given = false, causal = false;
	uint32_t flags = 0;
	int c, ret;

	pcb_filter_init(&s.filter);
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'f':
			if (!add_filter(&s, optarg))
				return usage_hint("sub");
			break;
		case 'C':
			causal = true;
			break;
		case 'l':
			flags |= PCB_SUB_LOSSY;
			break;
		case 'r':
			if (!parse_size(optarg, UINT32_MAX, &ring_size) ||
			    ring_size & (ring_size - 1) || !ring_size)
				return bad_value("ring size (a power of two)", optarg);
			break;
		case 'c':
			if (!parse_u64(optarg, 10, UINT64_MAX, &count) || !count)
				return bad_value("count", optarg);
			break;
		case 't':
			if (!parse_u64(optarg, 10, UINT64_MAX / 1000000, &ms) || !ms)
				return bad_value("timeout", optarg);
			idle_ns = ms * 1000000;
			break;
		case 's':
			if (!parse_u64(optarg, 0, UINT64_MAX, &schema))
				return bad_value("schema id", optarg);
			schema_given = true;
			break;
		case 'h':
			fputs(sub_usage, stdout);
			return 0;
		default:
			return usage_hint("sub");
		}
	}
	if (optind >= argc) {
		error("sub: expected at least one TOPIC");
		return usage_hint("sub");
	}
	s.nr_topics = argc - optind;
	s.topics = calloc((size_t)s.nr_topics, sizeof(*s.topics));
	s.lat = calloc(1, sizeof(*s.lat));
	if (causal) {
		s.causal = malloc(sizeof(*s.causal));
		pcb_causal_init(s.causal);
	}
	if (!s.topics || !s.lat || (causal && !s.causal)) {
		error("%s", strerror(ENOMEM));
		return 1;
	}
	/* Lines as they come, also into a pipe or a file. */
	setvbuf(stdout, NULL, _IOLBF, 0);

	ret = setup_signals();
	if (ret) {
		error("sigaction: %s", strerror(-ret));
		goto out_free;
	}
	ret = open_bus(&s.bus);
	if (ret)
		goto out_free;
	ret = pcb_ring_setup(s.bus, ring_size);
	if (ret) {
		error("cannot set up a %" PRIu64 "-byte ring: %s", ring_size,
		      strerror(-ret));
		goto out;
	}
	ret = subscribe_all(&s, argv + optind, flags, schema_given, schema);
	if (ret)
		goto out;
	ret = sub_loop(&s, count, idle_ns);
	check_dropped(&s);
	if (s.filtered)
		fprintf(stderr, "%s: %" PRIu64 " message(s) received, %" PRIu64
			" dropped\n", prog, s.received, s.dropped);
	else
		fprintf(stderr, "%s: %" PRIu64 " message(s) received, %" PRIu64
			" dropped, %" PRIu64 " missing in sequence gaps\n",
			prog, s.received, s.dropped, s.gaps);
	print_lat_summary(&s);
	if (s.causal) {
		fprintf(stderr, "%s: %" PRIu64 " causal-order violation(s)\n",
			prog, s.causal->violations);
		if (s.causal->violations && !ret)
			ret = -EPROTO;
	}
out:
	/* Also after a failed subscription: those made before it. */
	print_sub_counters(&s);
	pcb_close(s.bus);
out_free:
	free(s.lat);
	free(s.causal);
	free(s.topics);
	return ret ? 1 : 0;
}

/* ------------------------------------------------------------------ */
/* main                                                               */
/* ------------------------------------------------------------------ */

static const char main_usage[] =
"Usage: pcbctl COMMAND [ARG]...\n"
"Manage topics of the pcb bus (" PCB_DEVICE_PATH "), publish and subscribe.\n"
"\n"
"  topic create NAME [OPTION]...   create a topic\n"
"  topic list                      list the topics\n"
"  topic info NAME                 show a topic\n"
"  topic delete NAME               delete a topic\n"
"  pub [OPTION]... TOPIC [MSG]...  publish messages\n"
"  sub [OPTION]... TOPIC...        print messages as they arrive\n"
"  stats [OPTION]... [TOPIC]...    counters and publish latency: a table,\n"
"                                  --watch, --json or --prometheus\n"
"\n"
"'pcbctl COMMAND --help' describes each command.  Exit status: 0 on\n"
"success, 1 on an error, 2 on a usage error.\n";

static const struct command main_cmds[] = {
	{ "topic", topic_main, topic_usage },
	{ "pub",   pub_main,   pub_usage },
	{ "sub",   sub_main,   sub_usage },
	{ "stats", stats_main, stats_usage },
	{ }
};

static bool is_help(const char *arg)
{
	return !strcmp(arg, "-h") || !strcmp(arg, "--help") ||
	       !strcmp(arg, "help");
}

/*
 * Dispatch argv[0] (a command name) among @cmds.  The command sees argv
 * with its own name first, as getopt expects.
 */
static int run_command(const struct command *cmds, const char *what,
		       const char *usage, int argc, char **argv)
{
	const struct command *c;

	if (argc < 1) {
		fputs(usage, stderr);
		return EXIT_USAGE;
	}
	if (is_help(argv[0])) {
		fputs(usage, stdout);
		return 0;
	}
	for (c = cmds; c->name; c++) {
		if (!strcmp(argv[0], c->name)) {
			optind = 1;
			return c->run(argc, argv);
		}
	}
	if (what)
		error("unknown %s command '%s'", what, argv[0]);
	else
		error("unknown command '%s'", argv[0]);
	fputs(usage, stderr);
	return EXIT_USAGE;
}

int main(int argc, char **argv)
{
	return run_command(main_cmds, NULL, main_usage, argc - 1, argv + 1);
}
