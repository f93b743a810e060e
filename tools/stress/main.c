// SPDX-License-Identifier: GPL-2.0
/*
 * pcb-stress: a seeded stress run of the pcb bus with an exactly-once
 * checker.
 *
 * The orchestrator (this file) creates the checked topics, forks the
 * roles (publishers, checked subscribers, transient and lossy
 * subscribers, topic churn, hostile processes), kills processes of every
 * role but the checked subscribers with SIGKILL at random and respawns
 * them, then stops the publishers, tells the checked subscribers each
 * topic's last seq, lets them drain and check, and prints a summary.  Any violation of the bus's
 * contract makes the exit status 1; 2 means the run itself failed; 4 that
 * it could not run (no /dev/pcb).
 *
 * What the checker proves is written at the top of checked.c.
 */
#include <getopt.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "stress.h"

#define MAX_PROCS	(STRESS_MAX_PUBS + STRESS_MAX_CHECKED + \
			 STRESS_MAX_TRANSIENT + STRESS_MAX_LOSSY + \
			 STRESS_MAX_CHURN + STRESS_MAX_HOSTILE)

struct proc {
	enum stress_role role;
	unsigned int index;
	unsigned int gen;
	pid_t pid;			/* 0: not running */
	bool killed;			/* by us */
	uint64_t respawn_at;		/* 0: not to be respawned */
};

static struct proc procs[MAX_PROCS];
static unsigned int nr_procs;
static struct pcb *bus;
static int clock_handle;
static uint64_t rnd;

static const char *const hostile_names[NR_HOSTILE_KINDS] = {
	[HOSTILE_CONS] = "cons", [HOSTILE_FORGE] = "forge",
	[HOSTILE_FLIP] = "flip", [HOSTILE_BATCH] = "batch",
};

static void usage(int status)
{
	fprintf(status ? stderr : stdout,
"usage: pcb-stress [options]\n"
"  --duration S        seconds of publishing (default 60)\n"
"  --seed N            seed of the run (default: from the clock; printed)\n"
"  --publishers N      publisher processes (default 3, at most %d)\n"
"  --topics N          checked topics (default 3, at most %d)\n"
"  --checked N         checked subscribers (default 4, at most %d): fast,\n"
"                      slow, fixed filters, changing filters, and again\n"
"  --transient N       reliable subscribers that come and go (default 2)\n"
"  --lossy N           lossy subscribers that come and go (default 2)\n"
"  --churn N           topic churn processes (default 1, at most %d)\n"
"  --hostile N         hostile processes in the checked topics (default 2,\n"
"                      at most %d): nonsensical consumer positions, positions\n"
"                      past records still being written, payloads flipped\n"
"                      while published, oversized batches (see hostile.c)\n"
"  --hostile-skip LIST leave out kinds of hostility: cons, forge, flip, batch\n"
"  --kill-interval MS  mean time between SIGKILLs, 0 for none (default 400)\n"
"  --no-uring          do not publish through io_uring\n"
"  --isolated          no other pcb-stress shares this bus (IPC namespace):\n"
"                      seeing another run's topics is a violation\n"
"  --inject FAULT      check the checker: make its own bookkeeping go wrong\n"
"                      once (lose, dup, corrupt, failed, seq, filter,\n"
"                      hostile); the run must then fail\n"
"  --verbose           say more\n"
"Exit status: 0 no violation, 1 violations, 2 the run failed, 4 no bus.\n",
		STRESS_MAX_PUBS, STRESS_MAX_TOPICS, STRESS_MAX_CHECKED,
		STRESS_MAX_CHURN, STRESS_MAX_HOSTILE);
	exit(status);
}

static unsigned int parse_uint(const char *s, unsigned int max)
{
	char *end;
	unsigned long v = strtoul(s, &end, 0);

	if (!*s || *end || v > max) {
		fprintf(stderr, "pcb-stress: bad number '%s' (at most %u)\n", s,
			max);
		exit(2);
	}
	return (unsigned int)v;
}

static enum stress_inject parse_inject(const char *s)
{
	static const char *const names[NR_INJECT] = {
		[INJECT_LOSE] = "lose", [INJECT_DUP] = "dup",
		[INJECT_CORRUPT] = "corrupt", [INJECT_FAILED] = "failed",
		[INJECT_SEQ] = "seq", [INJECT_FILTER] = "filter",
		[INJECT_HOSTILE] = "hostile",
	};
	unsigned int i;

	for (i = 1; i < NR_INJECT; i++)
		if (!strcmp(s, names[i]))
			return (enum stress_inject)i;
	fprintf(stderr, "pcb-stress: unknown fault '%s'\n", s);
	exit(2);
}

static unsigned int parse_hostile_skip(const char *s)
{
	char buf[64], *tok, *save = NULL;
	unsigned int mask = 0, k;

	snprintf(buf, sizeof(buf), "%s", s);
	for (tok = strtok_r(buf, ",", &save); tok;
	     tok = strtok_r(NULL, ",", &save)) {
		for (k = 0; k < NR_HOSTILE_KINDS; k++)
			if (!strcmp(tok, hostile_names[k]))
				break;
		if (k == NR_HOSTILE_KINDS) {
			fprintf(stderr, "pcb-stress: unknown kind of hostility '%s'\n",
				tok);
			exit(2);
		}
		mask |= 1U << k;
	}
	return mask;
}

static void parse_args(int argc, char **argv, struct stress_config *cfg)
{
	static const struct option opts[] = {
		{ "duration", required_argument, NULL, 'd' },
		{ "seed", required_argument, NULL, 's' },
		{ "publishers", required_argument, NULL, 'p' },
		{ "topics", required_argument, NULL, 't' },
		{ "checked", required_argument, NULL, 'c' },
		{ "transient", required_argument, NULL, 'r' },
		{ "lossy", required_argument, NULL, 'l' },
		{ "churn", required_argument, NULL, 'C' },
		{ "hostile", required_argument, NULL, 'H' },
		{ "hostile-skip", required_argument, NULL, 'S' },
		{ "kill-interval", required_argument, NULL, 'k' },
		{ "no-uring", no_argument, NULL, 'U' },
		{ "isolated", no_argument, NULL, 'i' },
		{ "inject", required_argument, NULL, 'I' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 }
	};
	int o;

	cfg->duration_s = 60;
	cfg->seed = mix64(now_ns() ^ (uint64_t)getpid());
	cfg->nr_pubs = 3;
	cfg->nr_topics = 3;
	cfg->nr_checked = 4;
	cfg->nr_transient = 2;
	cfg->nr_lossy = 2;
	cfg->nr_churn = 1;
	cfg->nr_hostile = 2;
	cfg->kill_ms = 400;
	cfg->use_uring = true;
	while ((o = getopt_long(argc, argv, "d:s:vh", opts, NULL)) != -1) {
		switch (o) {
		case 'd':
			cfg->duration_s = parse_uint(optarg, 1000000);
			break;
		case 's':
			cfg->seed = strtoull(optarg, NULL, 0);
			break;
		case 'p':
			cfg->nr_pubs = parse_uint(optarg, STRESS_MAX_PUBS);
			break;
		case 't':
			cfg->nr_topics = parse_uint(optarg, STRESS_MAX_TOPICS);
			break;
		case 'c':
			cfg->nr_checked = parse_uint(optarg, STRESS_MAX_CHECKED);
			break;
		case 'r':
			cfg->nr_transient = parse_uint(optarg, STRESS_MAX_TRANSIENT);
			break;
		case 'l':
			cfg->nr_lossy = parse_uint(optarg, STRESS_MAX_LOSSY);
			break;
		case 'C':
			cfg->nr_churn = parse_uint(optarg, STRESS_MAX_CHURN);
			break;
		case 'H':
			cfg->nr_hostile = parse_uint(optarg, STRESS_MAX_HOSTILE);
			break;
		case 'S':
			cfg->hostile_skip = parse_hostile_skip(optarg);
			break;
		case 'k':
			cfg->kill_ms = parse_uint(optarg, 1000000);
			break;
		case 'U':
			cfg->use_uring = false;
			break;
		case 'i':
			cfg->isolated = true;
			break;
		case 'I':
			cfg->inject = parse_inject(optarg);
			break;
		case 'v':
			cfg->verbose = true;
			break;
		case 'h':
			usage(0);
			break;
		default:
			usage(2);
			break;
		}
	}
	if (optind != argc || !cfg->nr_pubs || !cfg->nr_topics ||
	    (cfg->nr_churn && STRESS_CHURN_POOL % cfg->nr_churn))
		usage(2);
	snprintf(cfg->prefix, sizeof(cfg->prefix), "stress-%d", (int)getpid());
}

/* The id of a fresh message: every message published before has a smaller one. */
static uint64_t marker(void)
{
	uint64_t id = 0;
	int ret = pcb_try_publish(bus, clock_handle, NULL, 0, 0, &id);

	if (ret)
		die("publishing a marker: %s", strerror(-ret));
	return id;
}

/*
 * @mode: checked topics let anyone publish and subscribe reliably (read
 * and execute), hostile processes included.
 */
static void create_topic(const char *name, uint32_t mode, uint32_t *id)
{
	struct pcb_topic_opts opts = PCB_TOPIC_OPTS_DEFAULT;
	int ret;

	opts.max_msg_size = STRESS_MSG_MAX;
	opts.mode = mode;
	ret = pcb_topic_create(bus, name, &opts, id);
	if (ret)
		die("creating topic %s: %s", name, strerror(-ret));
}

/*
 * Records carry the publisher's pid and uid as the ring's owner sees
 * them: here, every process of the run shares our namespaces, so our own.
 * Anything else is a violation; the run then goes on without checking
 * pids.
 */
static void calibrate(void)
{
	char name[PCB_NAME_MAX];
	struct pcb *rx;
	struct pcb_msg msg;
	int handle, ret;

	snprintf(name, sizeof(name), "%s/calibrate", shm->cfg.prefix);
	create_topic(name, 0700, NULL);
	ret = pcb_open(&rx);
	if (!ret)
		ret = pcb_ring_setup(rx, 16 << 10);
	if (!ret)
		ret = pcb_subscribe(rx, name, 0, 0, NULL);
	if (ret)
		die("calibration: %s", strerror(-ret));
	handle = pcb_topic_open(bus, name, 0);
	if (handle < 0)
		die("calibration: %s", strerror(-handle));
	ret = pcb_publish(bus, handle, "x", 1, 0, NSEC, NULL);
	if (!ret)
		ret = pcb_receive(rx, &msg, 10 * NSEC);
	if (ret != 1)
		die("calibration: no record (%s)", strerror(-ret));
	shm->cfg.check_pid = msg.rec->pid == (uint32_t)getpid();
	shm->cfg.uid = msg.rec->uid;
	if (!shm->cfg.check_pid || msg.rec->uid != (uint32_t)geteuid())
		violation("a record of ours carries pid %u uid %u, we are pid %d uid %u",
			  msg.rec->pid, msg.rec->uid, (int)getpid(),
			  (unsigned int)geteuid());
	pcb_release(rx, &msg);
	pcb_close(rx);
	pcb_topic_close(bus, handle);
	pcb_topic_delete(bus, name);
}

static void add_proc(enum stress_role role, unsigned int index)
{
	procs[nr_procs++] = (struct proc){ .role = role, .index = index };
}

static void spawn(struct proc *p)
{
	pid_t pid;

	if (p->role == ROLE_PUB)
		p->gen = ++shm->pubs[p->index].gen;
	else
		p->gen++;
	fflush(NULL);
	pid = fork();
	if (pid < 0)
		die("fork: %s", strerror(errno));
	if (pid == 0) {
		int status = 2;

		/* Nothing of the run may outlive the orchestrator. */
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() == 1)
			_exit(2);
		pcb_close(bus);
		my_role = p->role;
		my_index = p->index;
		my_gen = p->gen;
		if (p->role == ROLE_HOSTILE) {
			pid_t me = getpid();

			/* Before its first record can exist. */
			__atomic_fetch_or(&shm->hostile_pids[me / 64],
					  1ULL << (me % 64), __ATOMIC_RELEASE);
		}
		switch (p->role) {
		case ROLE_PUB:
			status = publisher_main(p->index);
			break;
		case ROLE_CHECKED:
			status = checked_main(p->index);
			break;
		case ROLE_TRANSIENT:
		case ROLE_LOSSY:
			status = transient_main(p->index, p->role == ROLE_LOSSY);
			break;
		case ROLE_CHURN:
			status = churn_main(p->index);
			break;
		case ROLE_HOSTILE:
			status = hostile_main(p->index);
			break;
		default:
			break;
		}
		exit(status);
	}
	p->pid = pid;
	p->killed = false;
	p->respawn_at = 0;
}

static struct proc *find_proc(pid_t pid)
{
	unsigned int i;

	for (i = 0; i < nr_procs; i++)
		if (procs[i].pid == pid)
			return &procs[i];
	return NULL;
}

/* A process is gone: account for it and plan its respawn. */
static void reaped(struct proc *p, int status)
{
	p->pid = 0;
	if (p->role == ROLE_PUB) {
		struct pub_slot *ps = &shm->pubs[p->index];

		/* Whatever it published has an id below this marker. */
		store_release(&ps->done_marker, marker());
		store_release(&ps->done_gen, p->gen);
	}
	if (p->killed && WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) {
		/* ours */
	} else if (WIFSIGNALED(status)) {
		violation("%s %u/%u died of signal %d", role_name(p->role),
			  p->index, p->gen, WTERMSIG(status));
	} else if (WEXITSTATUS(status)) {
		violation("%s %u/%u exited with status %d", role_name(p->role),
			  p->index, p->gen, WEXITSTATUS(status));
	} else if (p->role == ROLE_CHECKED && !load_acquire(&shm->drain)) {
		violation("checked subscriber %u left early", p->index);
	}
	if (!stopping() && p->role != ROLE_CHECKED && p->gen < 0xffff)
		p->respawn_at = now_ns() + rnd_below(&rnd, 50 * MSEC);
}

/* Reaps what has exited; with @block, waits up to @timeout_ns for one. */
static bool reap(bool block, uint64_t timeout_ns)
{
	uint64_t end = now_ns() + timeout_ns;
	bool any = false;
	int status;
	pid_t pid;

	for (;;) {
		pid = waitpid(-1, &status, WNOHANG);
		if (pid > 0) {
			struct proc *p = find_proc(pid);

			if (p)
				reaped(p, status);
			any = true;
			continue;
		}
		if (any || !block || now_ns() >= end || (pid < 0 && errno == ECHILD))
			return any;
		sleep_ns(2 * MSEC);
	}
}

static void respawn_due(void)
{
	uint64_t now = now_ns();
	unsigned int i;

	for (i = 0; i < nr_procs; i++)
		if (!procs[i].pid && procs[i].respawn_at &&
		    procs[i].respawn_at <= now) {
			spawn(&procs[i]);
			count_inc(&shm->n.respawns);
		}
}

static void kill_one(void)
{
	struct proc *alive[MAX_PROCS];
	unsigned int i, n = 0;
	struct proc *p;

	for (i = 0; i < nr_procs; i++)
		if (procs[i].pid && procs[i].role != ROLE_CHECKED)
			alive[n++] = &procs[i];
	if (!n)
		return;
	p = alive[rnd_below(&rnd, n)];
	if (kill(p->pid, SIGKILL))
		return;
	p->killed = true;
	count_inc(&shm->n.kills[p->role]);
}

static uint64_t total_kills(void)
{
	uint64_t n = 0;
	unsigned int r;

	for (r = 0; r < NR_ROLES; r++)
		n += load_once(&shm->n.kills[r]);
	return n;
}

static void progress(uint64_t start)
{
	fprintf(stderr, "pcb-stress: %3llus: %llu accepted, %llu kills, %llu sessions, %llu churned, %llu violations\n",
		(unsigned long long)((now_ns() - start) / NSEC),
		(unsigned long long)load_once(&shm->n.accepted),
		(unsigned long long)total_kills(),
		(unsigned long long)load_once(&shm->n.sessions),
		(unsigned long long)load_once(&shm->n.churn_created),
		(unsigned long long)load_once(&shm->n.violations));
}

static bool role_running(enum stress_role role)
{
	unsigned int i;

	for (i = 0; i < nr_procs; i++)
		if (procs[i].role == role && procs[i].pid)
			return true;
	return false;
}

static bool others_running(void)
{
	unsigned int i;

	for (i = 0; i < nr_procs; i++)
		if (procs[i].role != ROLE_CHECKED && procs[i].pid)
			return true;
	return false;
}

/* Waits for @pred to turn false, killing the laggards after @timeout_s. */
static void wait_exit(bool (*running)(void), unsigned int timeout_s,
		      const char *what)
{
	uint64_t end = now_ns() + timeout_s * NSEC;
	unsigned int i;

	while (running() && now_ns() < end)
		reap(true, 100 * MSEC);
	if (!running())
		return;
	for (i = 0; i < nr_procs; i++) {
		if (!procs[i].pid)
			continue;
		violation("%s %u/%u did not finish within %u s (%s)",
			  role_name(procs[i].role), procs[i].index,
			  procs[i].gen, timeout_s, what);
		kill(procs[i].pid, SIGKILL);
		procs[i].killed = true;
	}
	while (running())
		reap(true, 100 * MSEC);
}

static bool any_running(void)
{
	unsigned int i;

	for (i = 0; i < nr_procs; i++)
		if (procs[i].pid)
			return true;
	return false;
}

static void run(void)
{
	const struct stress_config *cfg = &shm->cfg;
	uint64_t start, end, next_kill, next_progress, step;
	unsigned int i;

	for (i = 0; i < nr_procs; i++)
		if (procs[i].role == ROLE_PUB || procs[i].role == ROLE_HOSTILE)
			spawn(&procs[i]);
	/*
	 * The checked subscribers join a stream already flowing, after the
	 * hostile forgers' rings: a kernel that copied a message from one
	 * ring into the others would copy from a hostile one.
	 */
	sleep_ns(200 * MSEC);
	end = now_ns() + 10 * NSEC;
	while (!(cfg->hostile_skip & (1U << HOSTILE_FORGE)) &&
	       load_acquire(&shm->hostile_ready) < cfg->nr_hostile &&
	       now_ns() < end)
		reap(true, 10 * MSEC);
	for (i = 0; i < nr_procs; i++)
		if (procs[i].role == ROLE_CHECKED)
			spawn(&procs[i]);
	end = now_ns() + 60 * NSEC;
	while (load_acquire(&shm->checked_ready) < cfg->nr_checked) {
		if (now_ns() > end)
			die("checked subscribers not ready after 60 s");
		reap(true, 10 * MSEC);
		if (!role_running(ROLE_CHECKED))
			die("checked subscribers failed to start");
	}
	for (i = 0; i < nr_procs; i++)
		if (procs[i].role != ROLE_PUB && procs[i].role != ROLE_CHECKED &&
		    procs[i].role != ROLE_HOSTILE)
			spawn(&procs[i]);

	start = now_ns();
	end = start + cfg->duration_s * NSEC;
	step = cfg->duration_s >= 100 ? cfg->duration_s / 10 * NSEC : 10 * NSEC;
	next_progress = start + step;
	next_kill = start + (cfg->kill_ms ? rnd_below(&rnd, 2 * cfg->kill_ms * MSEC) : 0);
	while (now_ns() < end) {
		reap(true, 5 * MSEC);
		respawn_due();
		if (cfg->kill_ms && now_ns() >= next_kill) {
			kill_one();
			next_kill = now_ns() + cfg->kill_ms * MSEC / 2 +
				    rnd_below(&rnd, cfg->kill_ms * MSEC);
		}
		if (now_ns() >= next_progress) {
			progress(start);
			next_progress += step;
		}
	}

	store_release(&shm->stop, 1);
	wait_exit(others_running, 60, "stopping");
	for (i = 0; i < cfg->nr_topics; i++) {
		char name[PCB_NAME_MAX];
		uint64_t seq;

		topic_name(name, sizeof(name), i);
		if (topic_published(bus, name, &seq))
			die("topic info %s", name);
		store_release(&shm->final_seq[i], seq);
	}
	store_release(&shm->drain, 1);
	wait_exit(any_running, 300, "draining");
}

static void check_final_seqs(void)
{
	unsigned int t;

	for (t = 0; t < shm->cfg.nr_topics; t++) {
		char name[PCB_NAME_MAX];
		uint64_t seq = 0;

		topic_name(name, sizeof(name), t);
		if (topic_published(bus, name, &seq) || seq != shm->final_seq[t])
			violation("%s grew from %llu to %llu after every publisher had exited",
				  name, (unsigned long long)shm->final_seq[t],
				  (unsigned long long)seq);
	}
}

static int delete_ours(const struct pcb_topic_info *info, void *arg)
{
	size_t n = strlen(shm->cfg.prefix);

	(void)arg;
	if (!strncmp(info->name, shm->cfg.prefix, n) && info->name[n] == '/')
		pcb_topic_delete(bus, info->name);
	return 0;
}

static void summary(void)
{
	const struct stress_config *cfg = &shm->cfg;
	const struct stress_counters *n = &shm->n;
	unsigned int i, t;

	printf("pcb-stress: seed %#llx, %u s, %u publishers, %u checked topics, %u checked subscribers, %u transient, %u lossy, %u churn, %u hostile, kill every ~%u ms\n",
	       (unsigned long long)cfg->seed, cfg->duration_s, cfg->nr_pubs,
	       cfg->nr_topics, cfg->nr_checked, cfg->nr_transient,
	       cfg->nr_lossy, cfg->nr_churn, cfg->nr_hostile, cfg->kill_ms);
	printf("published: %llu accepted (%llu to checked topics); failed: %llu timed out, %llu EAGAIN, %llu EINTR, %llu cancelled, %llu E2BIG, %llu churn topic gone\n",
	       (unsigned long long)n->accepted,
	       (unsigned long long)n->accepted_checked,
	       (unsigned long long)n->failed_timeout,
	       (unsigned long long)n->failed_again,
	       (unsigned long long)n->failed_intr,
	       (unsigned long long)n->failed_canceled,
	       (unsigned long long)n->failed_big,
	       (unsigned long long)n->failed_churn);
	printf("calls: %llu publish, %llu try-publish, %llu batch, %llu atomic batch, %llu io_uring bursts; %llu waits for the checkers\n",
	       (unsigned long long)n->calls[0], (unsigned long long)n->calls[1],
	       (unsigned long long)n->calls[2], (unsigned long long)n->calls[3],
	       (unsigned long long)n->calls[4],
	       (unsigned long long)n->guard_waits);
	printf("topics:");
	for (t = 0; t < cfg->nr_topics; t++)
		printf(" checked%u ended at seq %llu%s", t,
		       (unsigned long long)shm->final_seq[t],
		       t + 1 < cfg->nr_topics ? "," : "\n");
	for (i = 0; i < cfg->nr_checked; i++) {
		const struct checked_result *r = &shm->checked[i];

		printf("checked %u: %s%llu delivered, %llu accepted verified, %llu rejected by filter, %llu judged during %llu filter changes, %llu before it subscribed, %llu failed not delivered, in doubt %llu delivered / %llu not\n",
		       i, r->done ? "" : "DID NOT FINISH, ",
		       (unsigned long long)r->delivered,
		       (unsigned long long)r->verified,
		       (unsigned long long)r->filtered_out,
		       (unsigned long long)r->filter_window,
		       (unsigned long long)r->filter_changes,
		       (unsigned long long)r->before_start,
		       (unsigned long long)r->failed_unseen,
		       (unsigned long long)r->doubt_seen,
		       (unsigned long long)r->doubt_unseen);
		for (t = 0; t < cfg->nr_topics; t++)
			printf("  checked%u: seq %llu..%llu, filter %s\n", t,
			       (unsigned long long)r->first_seq[t],
			       (unsigned long long)r->last_seq[t],
			       r->filter[t][0] ? r->filter[t] : "none");
	}
	printf("kills: %llu (publisher %llu, transient %llu, lossy %llu, churn %llu, hostile %llu), respawns %llu\n",
	       (unsigned long long)total_kills(),
	       (unsigned long long)n->kills[ROLE_PUB],
	       (unsigned long long)n->kills[ROLE_TRANSIENT],
	       (unsigned long long)n->kills[ROLE_LOSSY],
	       (unsigned long long)n->kills[ROLE_CHURN],
	       (unsigned long long)n->kills[ROLE_HOSTILE],
	       (unsigned long long)n->respawns);
	printf("subscribers: %llu sessions, %llu subscribes, %llu unsubscribes, %llu filter changes, %llu + %llu records (reliable + lossy), %llu ring set-ups refused for memory\n",
	       (unsigned long long)n->sessions,
	       (unsigned long long)n->subscribes,
	       (unsigned long long)n->unsubscribes,
	       (unsigned long long)n->filter_changes,
	       (unsigned long long)n->transient_records,
	       (unsigned long long)n->lossy_records,
	       (unsigned long long)n->enomem);
	printf("lossy: %llu dropped in %llu sessions whose drops were accounted exactly\n",
	       (unsigned long long)n->lossy_dropped,
	       (unsigned long long)n->lossy_accounted);
	printf("topic churn: %llu created, %llu deleted, %llu own rings checked, %llu listings\n",
	       (unsigned long long)n->churn_created,
	       (unsigned long long)n->churn_deleted,
	       (unsigned long long)n->churn_checked,
	       (unsigned long long)n->churn_lists);
	printf("hostile: %u processes as uid %u: %llu rings, %llu broken, %llu nonsensical positions, %llu positions past a BUSY record, %llu flooding ones, %llu refused for memory; %llu flipping publish calls, %llu messages accepted; %llu oversized batches refused as the uapi says, %llu atomic batches missed by a lossy ring too small; %llu hostile records checked by honest subscribers\n",
	       cfg->nr_hostile, cfg->hostile_uid,
	       (unsigned long long)n->hostile_sessions,
	       (unsigned long long)n->hostile_broken,
	       (unsigned long long)n->hostile_cons_writes,
	       (unsigned long long)n->forge_busy,
	       (unsigned long long)n->forge_flood,
	       (unsigned long long)n->hostile_enomem,
	       (unsigned long long)n->flip_calls,
	       (unsigned long long)n->flip_accepted,
	       (unsigned long long)n->big_batches,
	       (unsigned long long)n->big_accepted,
	       (unsigned long long)n->hostile_records);
	printf("violations: %llu\n", (unsigned long long)n->violations);
}

int main(int argc, char **argv)
{
	struct stress_config cfg = { 0 };
	char name[PCB_NAME_MAX];
	unsigned int i, t;
	int ret;

	my_role = NR_ROLES;
	parse_args(argc, argv, &cfg);
	shm = mmap(NULL, sizeof(*shm), PROT_READ | PROT_WRITE,
		   MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (shm == MAP_FAILED) {
		perror("pcb-stress: mmap");
		return 2;
	}
	shm->cfg = cfg;
	shm->start_ns = now_ns();
	rnd_seed(&rnd, NR_ROLES * 1000, 0);
	memset(shm->cursor, 0xff, sizeof(shm->cursor));

	ret = pcb_open(&bus);
	if (ret == -ENOENT || ret == -ENODEV || ret == -ENXIO) {
		printf("pcb-stress: skipped: %s is missing (module not loaded)\n",
		       PCB_DEVICE_PATH);
		return 4;
	}
	if (ret)
		die("pcb_open: %s", strerror(-ret));
	clock_topic_name(name, sizeof(name));
	create_topic(name, 0700, NULL);
	clock_handle = pcb_topic_open(bus, name, 0);
	if (clock_handle < 0)
		die("opening %s: %s", name, strerror(-clock_handle));
	for (t = 0; t < cfg.nr_topics; t++) {
		topic_name(name, sizeof(name), t);
		create_topic(name, 0777, &shm->topic_id[t]);
	}
	shm->cfg.hostile_uid = geteuid() ? (uint32_t)geteuid() : 65534;
	calibrate();

	for (i = 0; i < cfg.nr_pubs; i++)
		add_proc(ROLE_PUB, i);
	for (i = 0; i < cfg.nr_checked; i++)
		add_proc(ROLE_CHECKED, i);
	for (i = 0; i < cfg.nr_transient; i++)
		add_proc(ROLE_TRANSIENT, i);
	for (i = 0; i < cfg.nr_lossy; i++)
		add_proc(ROLE_LOSSY, i);
	for (i = 0; i < cfg.nr_churn; i++)
		add_proc(ROLE_CHURN, i);
	for (i = 0; i < cfg.nr_hostile; i++)
		add_proc(ROLE_HOSTILE, i);

	fprintf(stderr, "pcb-stress: seed %#llx, %u s, topics %s/*\n",
		(unsigned long long)cfg.seed, cfg.duration_s, cfg.prefix);
	if (cfg.inject)
		fprintf(stderr, "pcb-stress: --inject: a fault of our own follows; the checker must report it\n");
	run();
	check_final_seqs();

	pcb_topic_list(bus, delete_ours, NULL);
	pcb_close(bus);
	summary();
	if (shm->n.violations) {
		printf("pcb-stress: FAIL (%llu violations)\n",
		       (unsigned long long)shm->n.violations);
		return 1;
	}
	printf("pcb-stress: PASS\n");
	return 0;
}
