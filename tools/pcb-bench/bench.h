/* SPDX-License-Identifier: GPL-2.0 */
/*
 * pcb-bench: what its engines share.  The clock is the TSC where there is
 * one: in a virtual machine clock_gettime() may be a real system call,
 * which would cost more than some of the calls measured.
 */
#ifndef PCB_BENCH_H
#define PCB_BENCH_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>

#if defined(__x86_64__) || defined(__i386__)
#include <x86intrin.h>

/* Earlier instructions retire before the reading (lfence first). */
static inline uint64_t bench_tsc_begin(void)
{
	_mm_lfence();
	return __rdtsc();
}

/* The timed instructions retire before it, later ones start after. */
static inline uint64_t bench_tsc_end(void)
{
	unsigned int aux;
	uint64_t t = __rdtscp(&aux);

	_mm_lfence();
	return t;
}

/*
 * A bare reading, ordered with nothing: for the stamps taken once per
 * message, where the fences would cost more than the few cycles of
 * reordering they prevent.
 */
static inline uint64_t bench_tsc_now(void)
{
	return __rdtsc();
}

static inline const char *bench_tsc_name(void)
{
	return "TSC";
}
#else
static inline uint64_t bench_tsc_begin(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC_RAW, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static inline uint64_t bench_tsc_end(void)
{
	return bench_tsc_begin();
}

static inline uint64_t bench_tsc_now(void)
{
	return bench_tsc_begin();
}

static inline const char *bench_tsc_name(void)
{
	return "ns (no TSC)";
}
#endif

/*
 * One turn of a spin-wait: a pause for the sibling hyperthread; false
 * once *@stop is set (the other side gave up).
 */
static inline bool bench_relax(const int *stop)
{
#if defined(__x86_64__) || defined(__i386__)
	_mm_pause();
#endif
	return !__atomic_load_n(stop, __ATOMIC_RELAXED);
}

/* For qsort() of cycle counts. */
static inline int bench_cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* bench.c */
double bench_tsc_calibrate(void);
void bench_json_host(FILE *f, time_t when);

int cost_main(int argc, char **argv);
int pingpong_main(int argc, char **argv);

#endif /* PCB_BENCH_H */
