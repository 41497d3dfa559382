/* SPDX-License-Identifier: MIT */
/* ops_access: the access list's API, reload and metrics (ops_access.h). */
#include "ops_access.h"

#include "accesssync.h"
#include "err.h"
#include "slog.h"

#include <errno.h>
#include <pthread.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#define LIST_PAGE_DEFAULT 100
#define LIST_PAGE_MAX     10000

struct ops_access {
    access_t *access;
    /* list_file and file_digest are read and written by the admin thread (API) and the main
     * thread (SIGHUP): under lock, which is also held across a whole reload so two do not
     * interleave. Never taken on the request path. */
    pthread_mutex_t lock;
    char *list_file;
    accesssync_t *sync; /* NULL without Redis */
    /* What the file held when this process last read it (a digest of its sorted hashes), so a
     * SIGHUP reloads it only if it changed. */
    uint8_t file_digest[crypto_generichash_BYTES];
};

/* The poller's new list: served from now on. */
static void on_set(void *arg, aset_t *set, uint64_t version)
{
    (void)version;
    ops_access_t *self = arg;
    access_replace(self->access, &set);
}

static int cmp_hash(const void *a, const void *b)
{
    return memcmp(a, b, ASET_HASH_LEN);
}

/* The set's hashes as one array, sorted (for the cluster store and the digest); NULL if memory
 * runs out. */
static uint8_t *set_hashes(const aset_t *set, size_t *n)
{
    *n = aset_count(set);
    uint8_t *out = malloc(*n ? *n * ASET_HASH_LEN : 1);
    for (size_t i = 0; out && i < *n; i++)
        aset_get(set, i, out + i * ASET_HASH_LEN);
    if (out)
        qsort(out, *n, ASET_HASH_LEN, cmp_hash);
    return out;
}

static void digest(const uint8_t *hashes, size_t n, uint8_t out[crypto_generichash_BYTES])
{
    crypto_generichash(out, crypto_generichash_BYTES, hashes, n * ASET_HASH_LEN, NULL, 0);
}

/* The hashes access serves now, sorted (at start: the file's, as feopts_access_new() loaded
 * it); NULL if memory runs out. */
static uint8_t *current_hashes(access_t *access, size_t *n)
{
    size_t count = access_count(access);
    uint8_t(*out)[ASET_HASH_LEN] = malloc(count ? count * ASET_HASH_LEN : 1);
    *n = 0;
    while (out && *n < count) {
        size_t got = access_list(access, *n, out + *n, count - *n);
        if (got == 0)
            break;
        *n += got;
    }
    if (out)
        qsort(out, *n, ASET_HASH_LEN, cmp_hash);
    return (uint8_t *)out;
}

ops_access_t *ops_access_new(const ops_access_config_t *cfg, char *err, size_t errlen)
{
    ops_access_t *self = calloc(1, sizeof(*self));
    if (!self || !(self->list_file = strdup(cfg->list_file ? cfg->list_file : ""))) {
        free(self);
        err_set(err, errlen, "out of memory");
        return NULL;
    }
    self->access = cfg->access;
    pthread_mutex_init(&self->lock, NULL);
    /* The file's list, already in force (feopts_access_new read it): its digest, so that a
     * SIGHUP reads the file again only once it changed, and with Redis the cluster's seed. */
    size_t n = 0;
    uint8_t *hashes = current_hashes(self->access, &n);
    if (!hashes) {
        err_set(err, errlen, "out of memory");
        ops_access_destroy(&self);
        return NULL;
    }
    if (*self->list_file)
        digest(hashes, n, self->file_digest);
    if (!cfg->redis_url) {
        free(hashes);
        return self;
    }
    accesssync_config_t sc = {
        .redis_url = cfg->redis_url,
        .redis_password_file = cfg->redis_password_file,
        .prefix = cfg->prefix,
        .hash_seed = access_seed(),
        .on_set = on_set,
        .set_arg = self,
        .log = cfg->log,
    };
    /* The file seeds a cluster that has no list yet. */
    int rc = (self->sync = accesssync_new(&sc, err, errlen)) ? 0 : -1;
    if (rc == 0 && *self->list_file)
        rc = accesssync_seed(self->sync, hashes, n, err, errlen);
    free(hashes);
    if (rc != 0 || accesssync_start(self->sync, err, errlen) != 0) {
        ops_access_destroy(&self);
        return NULL;
    }
    return self;
}

static long reload_locked(ops_access_t *self, bool force, char *err, size_t errlen)
{
    if (!*self->list_file)
        return 0;
    aset_t *set = NULL;
    if (access_load_file(self->list_file, &set, err, errlen) != 0)
        return -1;
    size_t count;
    uint8_t *hashes = set_hashes(set, &count), d[crypto_generichash_BYTES];
    if (!hashes) {
        aset_free(&set);
        err_set(err, errlen, "out of memory");
        return -1;
    }
    digest(hashes, count, d);
    if (!force && sodium_memcmp(d, self->file_digest, sizeof(d)) == 0) {
        free(hashes);
        aset_free(&set);
        return 0;
    }
    int rc = 0;
    if (self->sync)
        rc = accesssync_replace(self->sync, hashes, count, NULL, err, errlen);
    else
        access_replace(self->access, &set);
    if (rc == 0)
        memcpy(self->file_digest, d, sizeof(d));
    free(hashes);
    aset_free(&set);
    return rc == 0 ? (long)count : -1;
}

ops_access_t *ops_access_open(access_t *access, const char *list_file, const char *redis_url,
                              const char *redis_password_file, const char *prefix, char *err,
                              size_t errlen)
{
    ops_access_config_t ac = {
        .access = access,
        .list_file = list_file,
        .redis_url = redis_url && *redis_url ? redis_url : NULL,
        .redis_password_file = redis_password_file,
        .prefix = prefix,
        .log = slog_sink,
    };
    return ops_access_new(&ac, err, errlen);
}

long ops_access_reload(ops_access_t *self, bool force, char *err, size_t errlen)
{
    pthread_mutex_lock(&self->lock);
    long n = reload_locked(self, force, err, errlen);
    pthread_mutex_unlock(&self->lock);
    return n;
}

void ops_access_reload_logged(ops_access_t *self)
{
    char err[512];
    long n = ops_access_reload(self, false, err, sizeof(err));
    if (n < 0)
        slog_msg(SLOG_WARN, "reload: access list not changed: %s", err);
    else if (n > 0)
        slog_msg(SLOG_INFO, "reload: access list read again: %ld entries%s", n,
                 self->sync ? ", stored in Redis for the cluster" : "");
}

static bool apply_live(void *arg, const opts_spec_t *s, const void *fresh)
{
    ops_reload_t *r = arg;
    return ops_access_apply(r->access, r->d, s, fresh);
}

void ops_access_on_reload(void *arg)
{
    ops_reload_t *r = arg;
    daemon_reload(r->d, apply_live, r);
    ops_access_reload_logged(r->access);
    ops_reload(r->ops);
}

bool ops_access_apply(ops_access_t *self, daemon_t *d, const opts_spec_t *s, const void *fresh)
{
    /* Read as a string only once s is known to be one of these two (s may be any option). */
    const char *value = NULL;
    if (strcmp(s->name, "access-mode") == 0 || strcmp(s->name, "access-list") == 0)
        value = *(const char *const *)(const void *)((const char *)fresh + s->offset);
    if (strcmp(s->name, "access-mode") == 0) {
        access_mode_t mode;
        if (access_mode_parse(value, &mode) != 0)
            return false; /* checked at start; a bad new value waits for a restart's check */
        access_set_mode(self->access, mode);
    } else if (strcmp(s->name, "access-list") == 0) {
        char *copy = strdup(value);
        if (!copy)
            return false;
        pthread_mutex_lock(&self->lock);
        free(self->list_file);
        self->list_file = copy;
        memset(self->file_digest, 0, sizeof(self->file_digest)); /* a new file: read it */
        pthread_mutex_unlock(&self->lock);
    } else {
        return false;
    }
    daemon_config_adopt(d, fresh, s);
    return true;
}

/* The version clients' requests are checked against: Redis's with a cluster store, else the
 * number of local replacements. */
static uint64_t list_version(ops_access_t *self)
{
    if (!self->sync)
        return access_version(self->access);
    accesssync_stats_t s;
    accesssync_stats(self->sync, &s);
    return s.version;
}

static json_t *summary(ops_access_t *self)
{
    pthread_mutex_lock(&self->lock);
    json_t *j = json_pack(
        "{s:s,s:I,s:I,s:s,s:s}", "mode", access_mode_name(access_mode(self->access)), "version",
        (json_int_t)list_version(self), "entries", (json_int_t)access_count(self->access), "store",
        self->sync ? "redis" : "process", "file", self->list_file);
    pthread_mutex_unlock(&self->lock);
    return j;
}

static int query_size(const admin_req_t *req, const char *key, size_t dflt, size_t max, size_t *out)
{
    const char *v = admin_req_query(req, key);
    *out = dflt;
    if (!v)
        return 0;
    errno = 0;
    char *end;
    unsigned long long n = strtoull(v, &end, 10);
    if (*v < '0' || *v > '9' || errno || *end || n > max)
        return -1;
    *out = (size_t)n;
    return 0;
}

static void get_access(void *arg, const admin_req_t *req, admin_reply_t *reply)
{
    ops_access_t *self = arg;
    const char *rest = admin_req_rest(req);
    if (!*rest) {
        size_t offset, limit;
        if (query_size(req, "offset", 0, SIZE_MAX / 2, &offset) != 0 ||
            query_size(req, "limit", LIST_PAGE_DEFAULT, LIST_PAGE_MAX, &limit) != 0) {
            admin_reply_error(reply, 400, "offset and limit: numbers, limit at most %d",
                              LIST_PAGE_MAX);
            return;
        }
        uint8_t(*page)[ASET_HASH_LEN] = malloc((limit ? limit : 1) * ASET_HASH_LEN);
        json_t *j = summary(self), *list = json_array();
        if (!page || !j || !list) {
            free(page);
            json_decref(j);
            json_decref(list);
            admin_reply_error(reply, 500, "out of memory");
            return;
        }
        size_t n = access_list(self->access, offset, page, limit);
        for (size_t i = 0; i < n; i++) {
            char hex[41];
            ops_hash_hex(page[i], hex);
            json_array_append_new(list, json_string(hex));
        }
        free(page);
        json_object_set_new(j, "offset", json_integer((json_int_t)offset));
        json_object_set_new(j, "hashes", list);
        ops_reply_json(reply, 200, j);
        return;
    }
    uint8_t h[ASET_HASH_LEN];
    if (ops_parse_hash(rest, h) != 0) {
        admin_reply_error(reply, 400, "access/{info-hash}: want 40 hex digits, got '%.64s'", rest);
        return;
    }
    access_mode_t mode = access_mode(self->access);
    bool listed = access_listed(self->access, h);
    bool allowed = mode == ACCESS_ALLOW ? listed : mode == ACCESS_DENY ? !listed : true;
    char hex[41];
    ops_hash_hex(h, hex);
    ops_reply_json(reply, 200,
                   json_pack("{s:s,s:b,s:b,s:s}", "info_hash", hex, "listed", listed, "allowed",
                             allowed, "mode", access_mode_name(mode)));
}

static void edit(ops_access_t *self, const admin_req_t *req, admin_reply_t *reply, bool present)
{
    uint8_t h[ASET_HASH_LEN];
    const char *rest = admin_req_rest(req);
    if (ops_parse_hash(rest, h) != 0) {
        admin_reply_error(reply, 400, "access/{info-hash}: want 40 hex digits, got '%.64s'", rest);
        return;
    }
    char err[256];
    int changed;
    uint64_t version = 0;
    if (self->sync) {
        changed = present ? accesssync_add(self->sync, h, &version, err, sizeof(err))
                          : accesssync_remove(self->sync, h, &version, err, sizeof(err));
        if (changed < 0) {
            admin_reply_error(reply, 503, "access list store: %s", err);
            return;
        }
    } else {
        size_t before = access_count(self->access);
        if (access_edit(self->access, h, present) != 0) {
            admin_reply_error(reply, 507, "access list full or out of memory");
            return;
        }
        changed = access_count(self->access) != before;
        version = access_version(self->access);
    }
    char hex[41];
    ops_hash_hex(h, hex);
    ops_reply_json(reply, 200,
                   json_pack("{s:s,s:b,s:b,s:I}", "info_hash", hex, "listed", present, "changed",
                             changed > 0, "version", (json_int_t)version));
}

static void put_access(void *arg, const admin_req_t *req, admin_reply_t *reply)
{
    edit(arg, req, reply, true);
}

static void delete_access(void *arg, const admin_req_t *req, admin_reply_t *reply)
{
    edit(arg, req, reply, false);
}

static void post_reload(void *arg, const admin_req_t *req, admin_reply_t *reply)
{
    (void)req;
    ops_access_t *self = arg;
    pthread_mutex_lock(&self->lock);
    bool no_file = !*self->list_file;
    pthread_mutex_unlock(&self->lock);
    if (no_file) {
        admin_reply_error(reply, 409, "no --access-list file to read");
        return;
    }
    char err[512];
    long n = ops_access_reload(self, true, err, sizeof(err));
    if (n < 0) {
        admin_reply_error(reply, 422, "%s", err);
        return;
    }
    json_t *j = summary(self);
    if (j)
        json_object_set_new(j, "loaded", json_integer(n));
    ops_reply_json(reply, 200, j);
}

int ops_access_routes(admin_t *admin, ops_access_t *self)
{
    if (admin_route(admin, "GET", "/api/v1/access", ADMIN_PREFIX, get_access, self) != 0 ||
        admin_route(admin, "PUT", "/api/v1/access", ADMIN_PREFIX | ADMIN_WRITE, put_access, self) !=
            0 ||
        admin_route(admin, "DELETE", "/api/v1/access", ADMIN_PREFIX | ADMIN_WRITE, delete_access,
                    self) != 0 ||
        admin_route(admin, "POST", "/api/v1/access/reload", ADMIN_WRITE, post_reload, self) != 0)
        return -1;
    return 0;
}

void ops_access_metrics(metrics_t *m, ops_access_t *self)
{
    access_stats_t st;
    access_stats(self->access, &st);
    metrics_family(m, "shoal_access_mode", METRICS_GAUGE,
                   "1 for the access-list mode in force (off, allow or deny)");
    metrics_add(m, "shoal_access_mode", 1, "mode", access_mode_name(access_mode(self->access)),
                NULL);
    metrics_family(m, "shoal_access_list_entries", METRICS_GAUGE, "info-hashes on the access list");
    metrics_addu(m, "shoal_access_list_entries", access_count(self->access), NULL);
    metrics_family(m, "shoal_access_list_version", METRICS_GAUGE,
                   "version of the list in force (Redis's with a cluster store, else the number of "
                   "local changes)");
    metrics_addu(m, "shoal_access_list_version", list_version(self), NULL);
    metrics_family(m, "shoal_access_checks_total", METRICS_COUNTER,
                   "info-hashes checked against the access list, by result");
    metrics_addu(m, "shoal_access_checks_total", st.allowed, "result", "allowed", NULL);
    metrics_addu(m, "shoal_access_checks_total", st.refused, "result", "refused", NULL);
    if (!self->sync)
        return;
    accesssync_stats_t s;
    accesssync_stats(self->sync, &s);
    metrics_family(m, "shoal_access_list_loads_total", METRICS_COUNTER,
                   "access lists read from Redis and put in force");
    metrics_addu(m, "shoal_access_list_loads_total", s.loads, NULL);
    ops_redis_health(m, "access", s.errors, s.connected);
}

void ops_access_destroy(ops_access_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    accesssync_destroy(&(*self_p)->sync);
    pthread_mutex_destroy(&(*self_p)->lock);
    free((*self_p)->list_file);
    free(*self_p);
    *self_p = NULL;
}
