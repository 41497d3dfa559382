/* SPDX-License-Identifier: MIT */
/* metrics: a collector the roles fill on each scrape (families, then samples with labels), then
 * render as Prometheus text exposition format 0.0.4 or as JSON. A collector is plain memory with
 * no lock: one thread fills and renders it (the admin thread, in a /metrics handler). Everything
 * is bounded (METRICS_MAX_*), so a runaway caller gets -1, not an unbounded scrape.
 *
 * Invariants: family names match [a-zA-Z_:][a-zA-Z0-9_:]*, label names [a-zA-Z_][a-zA-Z0-9_]*
 * (and do not start with "__", which Prometheus reserves), help texts and label values are
 * valid UTF-8 (so both renderings are always well formed). The collector does not check that two
 * samples of a family have distinct label sets: that is the caller's contract. */
#ifndef SHOAL_METRICS_H
#define SHOAL_METRICS_H

#include <stddef.h>
#include <stdint.h>

#define METRICS_MAX_FAMILIES 4096
#define METRICS_MAX_SAMPLES  65536       /* per collector, all families together */
#define METRICS_MAX_LABELS   16          /* label pairs per sample */
#define METRICS_MAX_NAME     256         /* bytes in a family or label name */
#define METRICS_MAX_TEXT     4096        /* bytes in a help text or a label value */
#define METRICS_MAX_BYTES    (16u << 20) /* names, help and labels stored, all together */

typedef enum { METRICS_COUNTER, METRICS_GAUGE } metrics_type_t;
typedef struct metrics metrics_t;

/* Create an empty collector. Returns NULL if memory runs out. */
metrics_t *metrics_new(void);
/* Free the collector and everything in it, then set *m_p to NULL. NULL-safe. */
void metrics_destroy(metrics_t **m_p);
/* Drop every sample but keep the families, so one collector can be refilled on each scrape.
 * NULL-safe. */
void metrics_reset(metrics_t *m);

/* Declare a family once (name must match [a-zA-Z_:][a-zA-Z0-9_:]*; counters' names end in _total
 * by our convention and are written as given). help may be NULL (rendered as ""). Declaring the
 * same name again with the same type is a no-op (the first help stays); returns 0, or -1 on a bad
 * name or help text / type clash / a bound reached / out of memory. */
int metrics_family(metrics_t *m, const char *name, metrics_type_t type, const char *help);

/* Add one sample to family `name` (declared before; else -1). Labels: a NULL-terminated list of
 * key, value C strings: metrics_add(m, "shoal_requests_total", 5, "protocol", "udp", "action",
 * "announce", NULL). Values are escaped (\\, ", \n) on output; label names are checked (a bad or
 * repeated name, a key without a value, a value that is not UTF-8 or a bound reached: -1, and
 * nothing is added). Values print as integers when they are integral and |v| < 2^53, else with
 * %.17g; NaN/+Inf/-Inf as Prometheus spells them. Returns 0 or -1. */
int metrics_add(metrics_t *m, const char *name, double value, ...) __attribute__((sentinel));
/* Same with a uint64_t (exact for any value in the Prometheus text). */
int metrics_addu(metrics_t *m, const char *name, uint64_t value, ...) __attribute__((sentinel));

/* Render: malloc'ed NUL-terminated text, caller frees; *len_out (may be NULL) gets strlen. NULL if
 * out of memory. Families in declaration order, # HELP and # TYPE lines first, families with no
 * samples still get HELP/TYPE; samples in the order they were added. */
char *metrics_prometheus(const metrics_t *m, size_t *len_out);
/* JSON object: {"name": {"type":"counter","help":"...","samples":[{"labels":{"k":"v"},"value":N},
 * ...]}, ...} as malloc'ed compact text (jansson), caller frees; families and labels in the order
 * they were given. N is a JSON integer when the value is integral and fits (|v| < 2^53 for a
 * double, <= INT64_MAX for a uint64_t), else a JSON real (so a uint64_t above INT64_MAX is
 * approximate here); NaN, +Inf and -Inf are the strings "NaN", "+Inf", "-Inf" (JSON has no such
 * numbers). NULL if out of memory. */
char *metrics_json(const metrics_t *m, size_t *len_out);

#endif
