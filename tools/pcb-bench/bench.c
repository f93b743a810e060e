// SPDX-License-Identifier: GPL-2.0
/*
 * pcb-bench: what its engines share that is too big for bench.h: the
 * TSC's rate, and what every JSON result says about where it was made.
 */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <time.h>

#include "bench.h"

/* The Makefile names the commit built; a build outside git has none. */
#ifndef PCB_COMMIT
#define PCB_COMMIT "unknown"
#endif

#define CALIBRATE_NS	150000000ULL	/* 150 ms */

#if defined(__x86_64__) || defined(__i386__)
static uint64_t raw_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC_RAW, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

/*
 * A clock reading and the TSC at that moment: the TSC read on both sides
 * of clock_gettime(), the midpoint of the tightest of a few tries.  In a
 * VM where clock_gettime() is a system call the two sides are some
 * microseconds apart: over 150 ms, an error of a few parts in 100,000.
 */
static void clock_pair(uint64_t *ns, uint64_t *tsc)
{
	uint64_t best = UINT64_MAX, a, b, t;
	unsigned int i;

	for (i = 0; i < 5; i++) {
		a = bench_tsc_begin();
		t = raw_ns();
		b = bench_tsc_end();
		if (b - a < best) {
			best = b - a;
			*ns = t;
			*tsc = a + (b - a) / 2;
		}
	}
}
#endif

/*
 * TSC ticks per ns: the TSC and CLOCK_MONOTONIC_RAW read together twice,
 * 150 ms apart.  The CPU stays busy meanwhile, as the benchmark's threads
 * will be: where the TSC is not invariant, its rate is then the one they
 * see.  The clock is read only every 2^20 ticks: in a VM each reading is
 * a system call.  Without a TSC the "TSC" is the clock in ns already.
 */
double bench_tsc_calibrate(void)
{
#if defined(__x86_64__) || defined(__i386__)
	uint64_t ns0 = 0, tsc0 = 0, ns1 = 0, tsc1 = 0, mark;

	clock_pair(&ns0, &tsc0);
	do {
		mark = bench_tsc_now();
		while (bench_tsc_now() - mark < (1U << 20))
			_mm_pause();
	} while (raw_ns() - ns0 < CALIBRATE_NS);
	clock_pair(&ns1, &tsc1);
	return (double)(tsc1 - tsc0) / (double)(ns1 - ns0);
#else
	return 1.0;
#endif
}

static void json_str(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '"' || c == '\\')
			fprintf(f, "\\%c", c);
		else if (c < 0x20)
			fprintf(f, "\\u%04x", c);
		else
			fputc(c, f);
	}
	fputc('"', f);
}

/* The first "model name" of /proc/cpuinfo; not every architecture has one. */
static void cpu_model(char *buf, size_t len)
{
	char line[256], *v;
	FILE *f = fopen("/proc/cpuinfo", "r");

	snprintf(buf, len, "unknown");
	if (!f)
		return;
	while (fgets(line, sizeof(line), f)) {
		v = strchr(line, ':');
		if (strncmp(line, "model name", 10) || !v)
			continue;
		v += strspn(v + 1, " \t") + 1;
		v[strcspn(v, "\n")] = 0;
		snprintf(buf, len, "%s", v);
		break;
	}
	fclose(f);
}

/*
 * What a result needs to be compared with another one later: the commit
 * built (PCB_COMMIT from the environment, else the one the Makefile saw),
 * the kernel, the CPU and the date (ISO 8601, UTC) of @when.  The members
 * of a JSON object, without its braces, so that each engine puts them
 * where its output has them.
 */
void bench_json_host(FILE *f, time_t when)
{
	const char *commit = getenv("PCB_COMMIT");
	char model[192], date[32] = "unknown";
	struct utsname u;
	struct tm tm;

	if (!commit || !*commit)
		commit = PCB_COMMIT;
	if (uname(&u))
		snprintf(u.release, sizeof(u.release), "unknown");
	cpu_model(model, sizeof(model));
	if (gmtime_r(&when, &tm))
		strftime(date, sizeof(date), "%Y-%m-%dT%H:%M:%SZ", &tm);
	fputs("\"commit\":", f);
	json_str(f, commit);
	fputs(",\"kernel\":", f);
	json_str(f, u.release);
	fputs(",\"cpu_model\":", f);
	json_str(f, model);
	fprintf(f, ",\"date\":\"%s\"", date);
}
