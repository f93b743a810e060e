/* SPDX-License-Identifier: GPL-2.0 */
/*
 * What pcbctl's commands share: messages, opening the bus, parsing.
 */
#ifndef PCBCTL_H
#define PCBCTL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct pcb;

#define EXIT_USAGE	2

extern const char *prog;

/* "pcbctl: " and the message on standard error, with a newline. */
void __attribute__((format(printf, 1, 2))) error(const char *fmt, ...);

/* strerror() with the meaning each errno has for a topic operation. */
const char *topic_strerror(int err);

/* pcb_open(), with the error explained. */
int open_bus(struct pcb **bus);

/* A whole number in @base up to @max, nothing else; false otherwise. */
bool parse_u64(const char *s, int base, uint64_t max, uint64_t *out);

/* Error messages that return EXIT_USAGE. */
int bad_value(const char *opt, const char *val);
int usage_hint(const char *cmd);

/* A duration for people: "850ns", "12.3us", "4.56ms", "1.234s". */
void format_ns(char *buf, size_t len, uint64_t ns);

/* The bus clock's name (PCB_CLOCK_*), "unknown" for anything else. */
const char *clock_name(uint32_t clock);

/* pcbctl stats (stats.c). */
extern const char stats_usage[];
int stats_main(int argc, char **argv);

#endif /* PCBCTL_H */
