/* SPDX-License-Identifier: MIT */
/* metrics: families and samples, rendered as Prometheus text or JSON (metrics.h).
 *
 * Families live in one array in declaration order, found by name through an open-addressing
 * index (a scrape adds tens of thousands of samples, each naming its family). Each family keeps
 * its own sample array, so rendering is one pass in declaration order. A sample's labels are one
 * allocation, "k\0v\0k\0v\0", checked when added so rendering never fails on content. */
#include "metrics.h"

#include <inttypes.h>
#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    char *labels; /* nlabels pairs of NUL-terminated key, value; NULL when none */
    uint8_t nlabels;
    bool is_u;
    union {
        double d;
        uint64_t u;
    } v;
} sample_t;

typedef struct {
    char *name;
    char *help;
    metrics_type_t type;
    sample_t *samples;
    size_t n, cap;
} family_t;

struct metrics {
    family_t *fam;
    size_t nfam, capfam;
    uint32_t *index; /* family position + 1, 0 = empty slot; size index_cap, a power of 2 */
    size_t index_cap;
    size_t nsamples;
    size_t bytes; /* stored text, against METRICS_MAX_BYTES */
};

metrics_t *metrics_new(void)
{
    return calloc(1, sizeof(metrics_t));
}

static void family_clear(family_t *f)
{
    for (size_t i = 0; i < f->n; i++)
        free(f->samples[i].labels);
    f->n = 0;
}

void metrics_reset(metrics_t *m)
{
    if (!m)
        return;
    for (size_t i = 0; i < m->nfam; i++) {
        family_t *f = &m->fam[i];
        for (size_t j = 0; j < f->n; j++) {
            const sample_t *s = &f->samples[j];
            const char *p = s->labels;
            for (unsigned k = 0; k < 2u * s->nlabels; k++) {
                size_t l = strlen(p) + 1;
                m->bytes -= l;
                p += l;
            }
        }
        family_clear(f);
    }
    m->nsamples = 0;
}

void metrics_destroy(metrics_t **m_p)
{
    if (!m_p || !*m_p)
        return;
    metrics_t *m = *m_p;
    for (size_t i = 0; i < m->nfam; i++) {
        family_clear(&m->fam[i]);
        free(m->fam[i].samples);
        free(m->fam[i].name);
        free(m->fam[i].help);
    }
    free(m->fam);
    free(m->index);
    free(m);
    *m_p = NULL;
}

/* ---- checks ---- */

static bool name_ok(const char *s, bool is_label)
{
    size_t n = strlen(s);
    if (n == 0 || n > METRICS_MAX_NAME)
        return false;
    if (is_label && n >= 2 && s[0] == '_' && s[1] == '_')
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
        bool ok = alpha || (i > 0 && c >= '0' && c <= '9') || (!is_label && c == ':');
        if (!ok)
            return false;
    }
    return true;
}

/* Well-formed UTF-8 (no overlong forms, surrogates or code points above U+10FFFF): jansson
 * refuses anything else, and Prometheus wants UTF-8 too. */
static bool utf8_ok(const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;
    while (i < n) {
        unsigned c = p[i];
        size_t len;
        uint32_t cp;
        if (c < 0x80) {
            i++;
            continue;
        } else if (c >= 0xC2 && c <= 0xDF) {
            len = 2;
            cp = c & 0x1F;
        } else if (c >= 0xE0 && c <= 0xEF) {
            len = 3;
            cp = c & 0x0F;
        } else if (c >= 0xF0 && c <= 0xF4) {
            len = 4;
            cp = c & 0x07;
        } else {
            return false;
        }
        if (n - i < len)
            return false;
        for (size_t k = 1; k < len; k++) {
            if ((p[i + k] & 0xC0) != 0x80)
                return false;
            cp = (cp << 6) | (p[i + k] & 0x3F);
        }
        if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10FFFF)) ||
            (cp >= 0xD800 && cp <= 0xDFFF))
            return false;
        i += len;
    }
    return true;
}

static bool text_ok(const char *s)
{
    size_t n = strnlen(s, METRICS_MAX_TEXT + 1);
    return n <= METRICS_MAX_TEXT && utf8_ok(s, n);
}

/* ---- family index ---- */

static uint32_t hash_name(const char *s)
{
    uint32_t h = 2166136261u; /* FNV-1a */
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 16777619u;
    return h;
}

static family_t *find_family(const metrics_t *m, const char *name)
{
    if (!m->index_cap)
        return NULL;
    size_t mask = m->index_cap - 1;
    /* The index is at most half full, so the probe ends at an empty slot. */
    for (size_t i = hash_name(name) & mask, step = 0; step < m->index_cap;
         i = (i + 1) & mask, step++) {
        uint32_t slot = m->index[i];
        if (slot == 0)
            return NULL;
        if (strcmp(m->fam[slot - 1].name, name) == 0)
            return &m->fam[slot - 1];
    }
    return NULL;
}

static void index_put(uint32_t *index, size_t cap, const char *name, uint32_t slot)
{
    size_t i = hash_name(name) & (cap - 1);
    while (index[i] != 0)
        i = (i + 1) & (cap - 1);
    index[i] = slot;
}

/* Make room for one more family: the array and an index kept at most half full. */
static int grow_families(metrics_t *m)
{
    if (m->nfam == m->capfam) {
        size_t cap = m->capfam ? m->capfam * 2 : 16;
        family_t *fam = realloc(m->fam, cap * sizeof(*fam));
        if (!fam)
            return -1;
        m->fam = fam;
        m->capfam = cap;
    }
    if ((m->nfam + 1) * 2 > m->index_cap) {
        size_t cap = m->index_cap ? m->index_cap * 2 : 32;
        uint32_t *index = calloc(cap, sizeof(*index));
        if (!index)
            return -1;
        for (size_t i = 0; i < m->nfam; i++)
            index_put(index, cap, m->fam[i].name, (uint32_t)(i + 1));
        free(m->index);
        m->index = index;
        m->index_cap = cap;
    }
    return 0;
}

int metrics_family(metrics_t *m, const char *name, metrics_type_t type, const char *help)
{
    if (!m || !name || (type != METRICS_COUNTER && type != METRICS_GAUGE) || !name_ok(name, false))
        return -1;
    if (!help)
        help = "";
    if (!text_ok(help))
        return -1;
    family_t *old = find_family(m, name);
    if (old)
        return old->type == type ? 0 : -1;
    size_t bytes = strlen(name) + strlen(help) + 2;
    if (m->nfam >= METRICS_MAX_FAMILIES || bytes > METRICS_MAX_BYTES - m->bytes)
        return -1;
    if (grow_families(m) != 0)
        return -1;
    family_t f = {.type = type, .name = strdup(name), .help = strdup(help)};
    if (!f.name || !f.help) {
        free(f.name);
        free(f.help);
        return -1;
    }
    m->fam[m->nfam] = f;
    index_put(m->index, m->index_cap, name, (uint32_t)(m->nfam + 1));
    m->nfam++;
    m->bytes += bytes;
    return 0;
}

/* Check and pack the label list into one allocation. Returns 0 (*out NULL when no labels) or
 * -1. */
static int pack_labels(va_list ap, char **out, uint8_t *nlabels, size_t *bytes_out)
{
    const char *kv[2 * METRICS_MAX_LABELS];
    size_t n = 0, bytes = 0;
    for (;;) {
        const char *k = va_arg(ap, const char *);
        if (!k)
            break;
        const char *v = va_arg(ap, const char *);
        if (!v || n == METRICS_MAX_LABELS || !name_ok(k, true) || !text_ok(v))
            return -1;
        for (size_t i = 0; i < n; i++)
            if (strcmp(kv[2 * i], k) == 0)
                return -1;
        kv[2 * n] = k;
        kv[2 * n + 1] = v;
        bytes += strlen(k) + strlen(v) + 2;
        n++;
    }
    *out = NULL;
    *nlabels = (uint8_t)n;
    *bytes_out = bytes;
    if (n == 0)
        return 0;
    char *p = malloc(bytes);
    if (!p)
        return -1;
    char *w = p;
    for (size_t i = 0; i < 2 * n; i++) {
        size_t l = strlen(kv[i]) + 1;
        memcpy(w, kv[i], l);
        w += l;
    }
    *out = p;
    return 0;
}

static int add_sample(metrics_t *m, const char *name, sample_t s, va_list ap)
{
    if (!m || !name)
        return -1;
    family_t *f = find_family(m, name);
    if (!f || m->nsamples >= METRICS_MAX_SAMPLES)
        return -1;
    size_t bytes;
    if (pack_labels(ap, &s.labels, &s.nlabels, &bytes) != 0)
        return -1;
    if (bytes > METRICS_MAX_BYTES - m->bytes)
        goto fail;
    if (f->n == f->cap) {
        size_t cap = f->cap ? f->cap * 2 : 8;
        sample_t *samples = realloc(f->samples, cap * sizeof(*samples));
        if (!samples)
            goto fail;
        f->samples = samples;
        f->cap = cap;
    }
    f->samples[f->n++] = s;
    m->nsamples++;
    m->bytes += bytes;
    return 0;
fail:
    free(s.labels);
    return -1;
}

int metrics_add(metrics_t *m, const char *name, double value, ...)
{
    va_list ap;
    va_start(ap, value);
    int rc = add_sample(m, name, (sample_t){.v.d = value}, ap);
    va_end(ap);
    return rc;
}

int metrics_addu(metrics_t *m, const char *name, uint64_t value, ...)
{
    va_list ap;
    va_start(ap, value);
    int rc = add_sample(m, name, (sample_t){.is_u = true, .v.u = value}, ap);
    va_end(ap);
    return rc;
}

/* ---- Prometheus text ---- */

typedef struct {
    char *p;
    size_t len, cap;
    bool oom;
} buf_t;

static void put(buf_t *b, const char *s, size_t n)
{
    if (b->oom)
        return;
    if (n + 1 > b->cap - b->len) {
        size_t cap = b->cap ? b->cap : 4096;
        while (n + 1 > cap - b->len)
            cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p) {
            b->oom = true;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static void puts_(buf_t *b, const char *s)
{
    put(b, s, strlen(s));
}

/* HELP escapes backslash and newline; label values also escape the double quote. */
static void put_escaped(buf_t *b, const char *s, bool quote)
{
    const char *run = s;
    for (; *s; s++) {
        const char *esc = *s == '\\'           ? "\\\\"
                          : *s == '\n'         ? "\\n"
                          : quote && *s == '"' ? "\\\""
                                               : NULL;
        if (!esc)
            continue;
        put(b, run, (size_t)(s - run));
        puts_(b, esc);
        run = s + 1;
    }
    put(b, run, (size_t)(s - run));
}

/* 2^53: beyond it a double no longer holds every integer, so %.17g says what it really is. */
#define EXACT_LIMIT 9007199254740992.0

static void format_value(const sample_t *s, char *out, size_t outlen)
{
    if (s->is_u) {
        snprintf(out, outlen, "%" PRIu64, s->v.u);
        return;
    }
    double v = s->v.d;
    if (isnan(v))
        snprintf(out, outlen, "NaN");
    else if (isinf(v))
        snprintf(out, outlen, "%s", v > 0 ? "+Inf" : "-Inf");
    else if (fabs(v) < EXACT_LIMIT && v == trunc(v))
        snprintf(out, outlen, "%" PRId64, (int64_t)v);
    else
        snprintf(out, outlen, "%.17g", v);
}

char *metrics_prometheus(const metrics_t *m, size_t *len_out)
{
    buf_t b = {0};
    put(&b, "", 0); /* an empty collector still renders "" */
    for (size_t i = 0; m && i < m->nfam; i++) {
        const family_t *f = &m->fam[i];
        puts_(&b, "# HELP ");
        puts_(&b, f->name);
        puts_(&b, " ");
        put_escaped(&b, f->help, false);
        puts_(&b, "\n# TYPE ");
        puts_(&b, f->name);
        puts_(&b, f->type == METRICS_COUNTER ? " counter\n" : " gauge\n");
        for (size_t j = 0; j < f->n; j++) {
            const sample_t *s = &f->samples[j];
            puts_(&b, f->name);
            const char *p = s->labels;
            for (unsigned k = 0; k < s->nlabels; k++) {
                puts_(&b, k == 0 ? "{" : ",");
                puts_(&b, p);
                puts_(&b, "=\"");
                p += strlen(p) + 1;
                put_escaped(&b, p, true);
                puts_(&b, "\"");
                p += strlen(p) + 1;
            }
            char num[40];
            format_value(s, num, sizeof(num));
            puts_(&b, s->nlabels ? "} " : " ");
            puts_(&b, num);
            puts_(&b, "\n");
        }
    }
    if (b.oom) {
        free(b.p);
        return NULL;
    }
    if (len_out)
        *len_out = b.len;
    return b.p;
}

/* ---- JSON ---- */

static json_t *json_value(const sample_t *s)
{
    if (s->is_u)
        return s->v.u <= INT64_MAX ? json_integer((json_int_t)s->v.u) : json_real((double)s->v.u);
    double v = s->v.d;
    if (isnan(v) || isinf(v)) {
        char num[8];
        format_value(s, num, sizeof(num));
        return json_string(num);
    }
    if (fabs(v) < EXACT_LIMIT && v == trunc(v))
        return json_integer((json_int_t)v);
    return json_real(v);
}

static json_t *json_family(const family_t *f)
{
    json_t *fo = json_object();
    json_t *samples = json_array();
    if (!fo || !samples)
        goto fail;
    if (json_object_set_new(fo, "type",
                            json_string(f->type == METRICS_COUNTER ? "counter" : "gauge")) != 0 ||
        json_object_set_new(fo, "help", json_string(f->help)) != 0)
        goto fail;
    for (size_t j = 0; j < f->n; j++) {
        const sample_t *s = &f->samples[j];
        json_t *so = json_object();
        json_t *labels = json_object();
        if (!so || !labels || json_array_append_new(samples, so) != 0) {
            json_decref(so);
            json_decref(labels);
            goto fail;
        }
        if (json_object_set_new(so, "labels", labels) != 0 ||
            json_object_set_new(so, "value", json_value(s)) != 0)
            goto fail;
        const char *p = s->labels;
        for (unsigned k = 0; k < s->nlabels; k++) {
            const char *key = p;
            p += strlen(p) + 1;
            if (json_object_set_new(labels, key, json_string(p)) != 0)
                goto fail;
            p += strlen(p) + 1;
        }
    }
    if (json_object_set_new(fo, "samples", samples) == 0)
        return fo;
    samples = NULL; /* json_object_set_new consumed it even on failure */
fail:
    json_decref(samples);
    json_decref(fo);
    return NULL;
}

char *metrics_json(const metrics_t *m, size_t *len_out)
{
    json_t *root = json_object();
    if (!root)
        return NULL;
    for (size_t i = 0; m && i < m->nfam; i++) {
        if (json_object_set_new(root, m->fam[i].name, json_family(&m->fam[i])) != 0) {
            json_decref(root);
            return NULL;
        }
    }
    /* jansson (>= 2.8) keeps objects in insertion order, so declaration order survives. */
    char *text = json_dumps(root, JSON_COMPACT);
    json_decref(root);
    if (text && len_out)
        *len_out = strlen(text);
    return text;
}
