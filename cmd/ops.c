/* SPDX-License-Identifier: MIT */
/* ops: the admin routes every role shares (ops.h). Each scrape builds a fresh collector on the
 * admin thread: the role's numbers, then build info and process facts; the same collector renders
 * /metrics and /api/v1/stats, so the two never disagree on a name. */
#include "ops.h"

#include "err.h"
#include "hex.h"
#include "rconn.h"
#include "slog.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define OPT(...) OPTS_SPEC(opsopts_t, __VA_ARGS__)

static const opts_spec_t ops_opts[] = {
    OPT("admin", "ADDR:PORT|off", OPTS_STRING, admin, 0, 0,
        "admin listener: /metrics, /healthz, /readyz, /api/v1/ (reads open to whoever reaches it)"),
    OPT("admin-token-file", "FILE", OPTS_STRING, admin_token_file, 0, 0,
        "bearer token for the admin API's write endpoints (none: writes refused)"),
};

opts_table_t opsopts_spec(void)
{
    return OPTS_TABLE(ops_opts);
}

struct ops {
    ops_config_t cfg;
    admin_t *admin;
    double started; /* wall clock, seconds */
};

/* Resident and virtual memory from /proc/self/statm (pages); 0 where it cannot be read. */
static void process_memory(uint64_t *rss, uint64_t *vsz)
{
    *rss = *vsz = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (!f)
        return;
    unsigned long long size = 0, resident = 0;
    if (fscanf(f, "%llu %llu", &size, &resident) == 2) {
        long page = sysconf(_SC_PAGESIZE);
        *vsz = size * (uint64_t)(page > 0 ? page : 4096);
        *rss = resident * (uint64_t)(page > 0 ? page : 4096);
    }
    fclose(f);
}

static void collect_common(ops_t *o, metrics_t *m)
{
    metrics_family(m, "shoal_build_info", METRICS_GAUGE,
                   "always 1; the labels say which build and role this is");
    metrics_add(m, "shoal_build_info", 1, "version", SHOAL_VERSION, "role", o->cfg.role, NULL);
    metrics_family(m, "shoal_start_time_seconds", METRICS_GAUGE,
                   "when the process started, seconds since the Unix epoch");
    metrics_add(m, "shoal_start_time_seconds", o->started, NULL);
    uint64_t rss, vsz;
    process_memory(&rss, &vsz);
    metrics_family(m, "shoal_process_resident_memory_bytes", METRICS_GAUGE,
                   "resident memory of the process");
    metrics_addu(m, "shoal_process_resident_memory_bytes", rss, NULL);
    metrics_family(m, "shoal_process_virtual_memory_bytes", METRICS_GAUGE,
                   "virtual memory of the process");
    metrics_addu(m, "shoal_process_virtual_memory_bytes", vsz, NULL);
}

static metrics_t *collect(ops_t *o)
{
    metrics_t *m = metrics_new();
    if (!m)
        return NULL;
    if (o->cfg.collect)
        o->cfg.collect(o->cfg.arg, m);
    collect_common(o, m);
    return m;
}

/* Collect and render with render (as content type type). */
static void reply_metrics(ops_t *o, admin_reply_t *reply,
                          char *(*render)(const metrics_t *, size_t *), const char *type)
{
    metrics_t *m = collect(o);
    size_t len = 0;
    char *text = m ? render(m, &len) : NULL;
    metrics_destroy(&m);
    if (!text) {
        admin_reply_error(reply, 500, "out of memory");
        return;
    }
    admin_reply_take(reply, 200, type, text, len);
}

static void get_metrics(void *arg, const admin_req_t *req, admin_reply_t *reply)
{
    (void)req;
    reply_metrics(arg, reply, metrics_prometheus, "text/plain; version=0.0.4; charset=utf-8");
}

static void get_stats(void *arg, const admin_req_t *req, admin_reply_t *reply)
{
    (void)req;
    reply_metrics(arg, reply, metrics_json, NULL);
}

static void probe_reply(admin_reply_t *reply, bool ok, const char *ok_word, const char *bad_word,
                        const char *why)
{
    json_t *j = json_pack("{s:s}", "status", ok ? ok_word : bad_word);
    if (j && !ok)
        json_object_set_new(j, "reason", json_string(why));
    ops_reply_json(reply, ok ? 200 : 503, j);
}

static void get_healthz(void *arg, const admin_req_t *req, admin_reply_t *reply)
{
    (void)req;
    ops_t *o = arg;
    char why[256] = "";
    bool ok = !o->cfg.alive || o->cfg.alive(o->cfg.arg, why, sizeof(why));
    probe_reply(reply, ok, "ok", "unhealthy", why);
}

static void get_readyz(void *arg, const admin_req_t *req, admin_reply_t *reply)
{
    (void)req;
    ops_t *o = arg;
    char why[256] = "";
    bool ok = !o->cfg.ready || o->cfg.ready(o->cfg.arg, why, sizeof(why));
    probe_reply(reply, ok, "ready", "not ready", why);
}

ops_t *ops_new(const opsopts_t *opt, const ops_config_t *cfg, char *err, size_t errlen)
{
    ops_t *o = calloc(1, sizeof(*o));
    if (!o) {
        err_set(err, errlen, "out of memory");
        return NULL;
    }
    o->cfg = *cfg;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    o->started = (double)ts.tv_sec + (double)(ts.tv_nsec / 1000000) / 1000.0;
    admin_config_t ac = {
        .listen = opt->admin,
        .token_file = opt->admin_token_file,
        .role = cfg->role,
    };
    if (!(o->admin = admin_new(&ac, err, errlen))) {
        free(o);
        return NULL;
    }
    if (admin_route(o->admin, "GET", "/metrics", 0, get_metrics, o) != 0 ||
        admin_route(o->admin, "GET", "/api/v1/stats", 0, get_stats, o) != 0 ||
        admin_route(o->admin, "GET", "/healthz", 0, get_healthz, o) != 0 ||
        admin_route(o->admin, "GET", "/readyz", 0, get_readyz, o) != 0) {
        err_set(err, errlen, "admin: route table full");
        ops_destroy(&o);
        return NULL;
    }
    return o;
}

admin_t *ops_admin(ops_t *self)
{
    return self->admin;
}

int ops_start(ops_t *self, char *err, size_t errlen)
{
    return admin_start(self->admin, err, errlen);
}

void ops_describe(const ops_t *self, char *out, size_t outlen)
{
    admin_describe(self->admin, out, outlen);
}

void ops_reload(ops_t *self)
{
    char err[256];
    if (admin_reload_token(self->admin, err, sizeof(err)) != 0)
        slog_msg(SLOG_WARN, "reload: admin token kept: %s", err);
}

void ops_destroy(ops_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    admin_destroy(&(*self_p)->admin);
    free(*self_p);
    *self_p = NULL;
}

int ops_parse_hash(const char *text, uint8_t out[20])
{
    return text && strlen(text) == 40 ? hex_decode(text, 20, out) : -1;
}

void ops_hash_hex(const uint8_t h[20], char out[41])
{
    hex_encode(h, 20, out);
}

void ops_loop_age(metrics_t *m, const char *loop, uint32_t age_ms)
{
    metrics_family(m, "shoal_loop_age_seconds", METRICS_GAUGE,
                   "time since the slowest thread of a loop last went round it (front ends turn "
                   "every second, membership every poll, the keeper every snapshot interval)");
    metrics_add(m, "shoal_loop_age_seconds", age_ms / 1000.0, "loop", loop, NULL);
}

int ops_redis_check(const char *url, const char *password_file, uint32_t timeout_ms, char *err,
                    size_t errlen)
{
    int rc = rconn_check(url, password_file, timeout_ms, err, errlen);
    if (rc == RCONN_REFUSED)
        return -1;
    if (rc == RCONN_DOWN) {
        slog_msg(SLOG_WARN, "%s; going on and retrying", err);
        return 1;
    }
    return 0;
}

int ops_redis_setup(const redisopts_t *o, uint32_t timeout_ms, char *err, size_t errlen)
{
    rconn_set_sentinel_password_file(o->sentinel_password_file);
    return ops_redis_check(o->redis, redisopts_password_file(o), timeout_ms, err, errlen);
}

int ops_redis_watch(const redisopts_t *o, sentinelwatch_t **watch, char *err, size_t errlen)
{
    *watch = NULL;
    if (!*o->redis)
        return 0;
    rconn_url_t url;
    if (rconn_parse_auth(o->redis, redisopts_password_file(o), &url, err, errlen) != 0)
        return -1;
    int rc = 0;
    if (url.n_sentinels && !(*watch = sentinelwatch_new(&url, slog_sink, NULL, err, errlen)))
        rc = -1;
    explicit_bzero(url.password, sizeof(url.password));
    return rc;
}

void ops_redis_sentinel(metrics_t *m, const sentinelwatch_t *watch)
{
    if (!watch)
        return;
    metrics_family(m, "shoal_redis_sentinel_switches_total", METRICS_COUNTER,
                   "+switch-master messages for our master seen on the sentinels");
    metrics_addu(m, "shoal_redis_sentinel_switches_total", sentinelwatch_switches(watch), NULL);
}

void ops_redis_master_changes(metrics_t *m, const char *component, uint64_t changes)
{
    metrics_family(m, "shoal_redis_master_changes_total", METRICS_COUNTER,
                   "times a component's Redis connection found another server than before (a "
                   "failover or a restart: membership then keeps its table for a member ttl, the "
                   "keeper re-checks and rewrites every partition it holds)");
    metrics_addu(m, "shoal_redis_master_changes_total", changes, "component", component, NULL);
}

void ops_redis_health(metrics_t *m, const char *component, uint64_t errors, bool connected)
{
    metrics_family(m, "shoal_redis_errors_total", METRICS_COUNTER,
                   "Redis calls that failed, by component");
    metrics_addu(m, "shoal_redis_errors_total", errors, "component", component, NULL);
    metrics_family(m, "shoal_redis_connected", METRICS_GAUGE,
                   "1 if the component's last Redis call got an answer");
    metrics_addu(m, "shoal_redis_connected", connected ? 1 : 0, "component", component, NULL);
}

void ops_reply_json(admin_reply_t *reply, int status, json_t *value)
{
    char *text = value ? json_dumps(value, JSON_COMPACT) : NULL;
    json_decref(value);
    if (!text) {
        admin_reply_error(reply, 500, "out of memory");
        return;
    }
    admin_reply_take(reply, status, NULL, text, strlen(text));
}
