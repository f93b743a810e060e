// SPDX-License-Identifier: GPL-2.0
/*
 * A short run of tools/stress/pcb-stress: publishers of every kind,
 * subscribers that come and go, filter changes, topic churn and random
 * SIGKILLs, with the checker that every message accepted for a reliable
 * subscriber that stayed subscribed reached it exactly once, in order and
 * intact (see tools/stress/checked.c), while hostile processes in the same
 * topics write nonsensical consumer positions and positions past records
 * still being written, flip payloads while they are published, and send
 * oversized batches (tools/stress/hostile.c).  `make stress` runs the same
 * program for ten minutes per kernel.
 *
 * Then the checker itself is checked: pcb-stress --inject makes its own
 * bookkeeping go wrong once (a record ignored, a success logged as a
 * failure, a record read twice, a filtered record changed until its
 * filter rejects it, a hostile record changed in one ring), and the run
 * must fail saying so.
 *
 * The program is found next to this one, at ../tools/stress/pcb-stress;
 * without it, or without /dev/pcb, the tests skip.  Works as root and as
 * any other user.  PCB_STRESS_SEED picks the seed (default: random, and
 * printed).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* The 6.1 harness declares parameters it does not use. */
#pragma GCC diagnostic ignored "-Wunused-parameter"
#include "kselftest_harness.h"

#include <linux/pcb.h>

#define RUN_TIMEOUT_S	150
#define MAX_WANT	4

/* The 6.1 harness's SKIP() does not end a fixture's setup: exit instead. */
#define SETUP_SKIP(fmt, ...) SKIP(_exit(255), fmt, ##__VA_ARGS__)

struct run {
	int status;			/* as from waitpid(), -1 on timeout */
	bool found[MAX_WANT];		/* which wanted strings were printed */
	unsigned long long delivered;	/* by checked subscriber 0 */
	unsigned long long accepted;
	unsigned long long kills;
};

FIXTURE(stress) {
	char prog[PATH_MAX];
	char seed[32];
};

FIXTURE_SETUP(stress)
{
	char exe[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	const char *env = getenv("PCB_STRESS_SEED");
	int fd;

	ASSERT_LT(0, n);
	exe[n] = 0;
	snprintf(self->prog, sizeof(self->prog), "%s/../tools/stress/pcb-stress",
		 dirname(exe));
	if (access(self->prog, X_OK))
		SETUP_SKIP("tools/stress/pcb-stress is not built");
	fd = open(PCB_DEVICE_PATH, O_RDWR | O_CLOEXEC);
	if (fd < 0 && (errno == ENOENT || errno == ENODEV || errno == ENXIO))
		SETUP_SKIP(PCB_DEVICE_PATH " is missing (module not loaded)");
	if (fd < 0 && errno == EACCES)
		SETUP_SKIP(PCB_DEVICE_PATH " is not accessible to uid %d",
			   (int)geteuid());
	ASSERT_LE(0, fd);
	close(fd);
	if (env && *env)
		snprintf(self->seed, sizeof(self->seed), "%s", env);
	else
		snprintf(self->seed, sizeof(self->seed), "%llu",
			 (unsigned long long)(time(NULL) ^ getpid()) & 0xffffffff);
}

FIXTURE_TEARDOWN(stress)
{
}

static void scan_line(const char *line, const char *const *want,
		      struct run *r)
{
	unsigned int i;

	for (i = 0; i < MAX_WANT && want[i]; i++)
		if (strstr(line, want[i]))
			r->found[i] = true;
	if (sscanf(line, "checked 0: %llu delivered", &r->delivered) == 1 ||
	    sscanf(line, "published: %llu accepted", &r->accepted) == 1 ||
	    sscanf(line, "kills: %llu", &r->kills) == 1)
		return;
}

/*
 * Runs pcb-stress with @args (NULL-terminated), its output indented into
 * our TAP stream, noting which of the strings @want it printed.
 */
static void run_stress(const char *prog, const char *const *args,
		       const char *const *want, struct run *r)
{
	const char *argv[24] = { prog };
	char line[1024];
	time_t deadline = time(NULL) + RUN_TIMEOUT_S;
	unsigned int i;
	int pipefd[2];
	FILE *out;
	pid_t pid;

	memset(r, 0, sizeof(*r));
	for (i = 0; args[i] && i + 2 < ARRAY_SIZE(argv); i++)
		argv[i + 1] = args[i];
	if (pipe(pipefd))
		return;
	fflush(NULL);
	pid = fork();
	if (pid == 0) {
		dup2(pipefd[1], STDOUT_FILENO);
		dup2(pipefd[1], STDERR_FILENO);
		close(pipefd[0]);
		close(pipefd[1]);
		execv(prog, (char *const *)argv);
		_exit(127);
	}
	close(pipefd[1]);
	out = fdopen(pipefd[0], "r");
	/* The run stops on its own; a hang is cut short by the alarm. */
	alarm(RUN_TIMEOUT_S);
	while (out && fgets(line, sizeof(line), out)) {
		/* The harness ends a test with _exit(): flush as we go. */
		printf("# %s", line);
		fflush(stdout);
		scan_line(line, want, r);
		if (time(NULL) >= deadline)
			break;
	}
	alarm(0);
	if (out)
		fclose(out);
	if (time(NULL) >= deadline) {
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
		r->status = -1;
		return;
	}
	if (waitpid(pid, &r->status, 0) != pid)
		r->status = -1;
}

static void on_alarm(int sig)
{
	(void)sig;
}

/* Every role, random kills, the checker: nothing may be found wrong. */
TEST_F_TIMEOUT(stress, short_run, RUN_TIMEOUT_S + 30)
{
	const char *args[] = { "--duration", "8", "--seed", self->seed,
			       "--kill-interval", "300", "--hostile", "2",
			       NULL };
	const char *want[] = { "pcb-stress: PASS", NULL };
	struct sigaction sa = { .sa_handler = on_alarm };
	struct run r;

	sigaction(SIGALRM, &sa, NULL);
	TH_LOG("seed %s", self->seed);
	run_stress(self->prog, args, want, &r);
	ASSERT_NE(-1, r.status) TH_LOG("pcb-stress did not finish");
	ASSERT_TRUE(WIFEXITED(r.status));
	ASSERT_EQ(0, WEXITSTATUS(r.status));
	ASSERT_TRUE(r.found[0]);
	/* It did stress something. */
	EXPECT_LT(1000ULL, r.accepted);
	EXPECT_LT(100ULL, r.delivered);
	EXPECT_LT(0ULL, r.kills);
}

/*
 * @fault injected, the run must fail, saying @why.  No kills: the fault is
 * injected by a publisher or checked subscriber, which must live to do it.
 */
static void expect_caught(struct __test_metadata *_metadata,
			  FIXTURE_DATA(stress) *self, const char *fault,
			  const char *why)
{
	const char *args[] = { "--duration", "3", "--seed", self->seed,
			       "--kill-interval", "0", "--inject", fault,
			       NULL };
	const char *want[] = { why, "pcb-stress: FAIL", NULL };
	struct sigaction sa = { .sa_handler = on_alarm };
	struct run r;

	sigaction(SIGALRM, &sa, NULL);
	run_stress(self->prog, args, want, &r);
	ASSERT_NE(-1, r.status) TH_LOG("pcb-stress did not finish");
	ASSERT_TRUE(WIFEXITED(r.status));
	ASSERT_EQ(1, WEXITSTATUS(r.status));
	EXPECT_TRUE(r.found[0]) TH_LOG("no violation \"%s\"", why);
	EXPECT_TRUE(r.found[1]);
}

TEST_F_TIMEOUT(stress, checker_catches_a_lost_message, RUN_TIMEOUT_S + 30)
{
	expect_caught(_metadata, self, "lose", "accepted message lost");
}

TEST_F_TIMEOUT(stress, checker_catches_delivery_of_a_failed_publish,
	       RUN_TIMEOUT_S + 30)
{
	expect_caught(_metadata, self, "failed",
		      "delivered although its publish failed");
}

TEST_F_TIMEOUT(stress, checker_catches_a_duplicate, RUN_TIMEOUT_S + 30)
{
	expect_caught(_metadata, self, "dup", "delivered twice");
}

TEST_F_TIMEOUT(stress, checker_catches_a_filter_bypass, RUN_TIMEOUT_S + 30)
{
	expect_caught(_metadata, self, "filter", "no filter in force takes it");
}

TEST_F_TIMEOUT(stress, checker_catches_subscribers_getting_other_bytes,
	       RUN_TIMEOUT_S + 30)
{
	expect_caught(_metadata, self, "hostile", "got other bytes");
}

TEST_HARNESS_MAIN
