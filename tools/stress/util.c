// SPDX-License-Identifier: GPL-2.0
/*
 * pcb-stress: clocks, the seeded generator, messages to the user.
 */
#define _GNU_SOURCE		/* strerrorname_np() */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "stress.h"

struct stress_shared *shm;
enum stress_role my_role;
unsigned int my_index;
unsigned int my_gen;

uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * NSEC + (uint64_t)ts.tv_nsec;
}

void sleep_ns(uint64_t ns)
{
	struct timespec ts = {
		.tv_sec = (time_t)(ns / NSEC),
		.tv_nsec = (long)(ns % NSEC),
	};

	while (nanosleep(&ts, &ts) && errno == EINTR)
		;
}

/* splitmix64's finalizer: a bijection that scatters every input bit. */
uint64_t mix64(uint64_t x)
{
	x ^= x >> 30;
	x *= 0xbf58476d1ce4e5b9ULL;
	x ^= x >> 27;
	x *= 0x94d049bb133111ebULL;
	x ^= x >> 31;
	return x;
}

uint64_t rnd_next(uint64_t *state)
{
	*state += 0x9e3779b97f4a7c15ULL;
	return mix64(*state);
}

uint64_t rnd_below(uint64_t *state, uint64_t n)
{
	return n ? rnd_next(state) % n : 0;
}

bool rnd_chance(uint64_t *state, unsigned int percent)
{
	return rnd_below(state, 100) < percent;
}

/*
 * Each process draws from its own stream: the run's seed, its role and
 * index, and its generation, so that a run is reproducible as far as the
 * scheduler lets it be.
 */
void rnd_seed(uint64_t *state, uint64_t a, uint64_t b)
{
	*state = mix64(shm->cfg.seed ^ mix64(a * 0x100000001b3ULL + b));
}

/* "EAGAIN" for EAGAIN, "ok" for 0: what the uapi names. */
const char *errname(int err)
{
	static __thread char buf[16];
	const char *s = err ? strerrorname_np(err) : "ok";

	if (s)
		return s;
	snprintf(buf, sizeof(buf), "errno %d", err);
	return buf;
}

const char *role_name(enum stress_role role)
{
	static const char *const names[NR_ROLES] = {
		[ROLE_PUB] = "publisher",
		[ROLE_CHECKED] = "checked",
		[ROLE_TRANSIENT] = "transient",
		[ROLE_LOSSY] = "lossy",
		[ROLE_CHURN] = "churn",
		[ROLE_HOSTILE] = "hostile",
	};

	return role < NR_ROLES ? names[role] : "orchestrator";
}

/* One line, one write(2), so that lines of several processes never mix. */
static void vsay(const char *what, const char *fmt, va_list ap)
{
	char line[512];
	int n;

	uint64_t t = shm->start_ns ? (now_ns() - shm->start_ns) / MSEC : 0;

	n = snprintf(line, sizeof(line), "pcb-stress: %s%s%s %u/%u (pid %d) at %llu.%03llu s: ",
		     what, *what ? " " : "", role_name(my_role), my_index,
		     my_gen, (int)getpid(), (unsigned long long)(t / 1000),
		     (unsigned long long)(t % 1000));
	if (n < 0 || (size_t)n >= sizeof(line))
		n = 0;
	n += vsnprintf(line + n, sizeof(line) - (size_t)n, fmt, ap);
	if ((size_t)n >= sizeof(line) - 1)
		n = sizeof(line) - 2;
	line[n++] = '\n';
	if (write(STDERR_FILENO, line, (size_t)n) < 0)
		return;
}

/* The checker found the bus breaking its contract. */
void violation(const char *fmt, ...)
{
	uint64_t nr = count_inc(&shm->n.violations);
	va_list ap;

	if (nr >= 100)
		return;
	va_start(ap, fmt);
	vsay("VIOLATION", fmt, ap);
	va_end(ap);
}

void note(const char *fmt, ...)
{
	va_list ap;

	if (!shm->cfg.verbose)
		return;
	va_start(ap, fmt);
	vsay("", fmt, ap);
	va_end(ap);
}

/* The run itself cannot go on (not a finding about the bus). */
void die(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsay("error:", fmt, ap);
	va_end(ap);
	exit(2);
}

bool stopping(void)
{
	return load_acquire(&shm->stop);
}

void topic_name(char *buf, size_t size, unsigned int topic)
{
	snprintf(buf, size, "%s/checked%u", shm->cfg.prefix, topic);
}

void churn_name(char *buf, size_t size, unsigned int k)
{
	snprintf(buf, size, "%s/churn%u", shm->cfg.prefix, k);
}

void clock_topic_name(char *buf, size_t size)
{
	snprintf(buf, size, "%s/clock", shm->cfg.prefix);
}

/* The topic's last sequence number. */
int topic_published(struct pcb *bus, const char *name, uint64_t *seq)
{
	struct pcb_topic_info info;
	int ret = pcb_topic_info(bus, name, &info);

	if (!ret)
		*seq = info.published;
	return ret;
}
