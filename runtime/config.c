/* SPDX-License-Identifier: MIT */
/* config: config files through libinih, checked against an opts table (config.h).
 *
 * inih reads the lines through our reader (ini_parse_stream()), which is how we know the line of
 * each key: the installed <ini.h> says INI_HANDLER_LINENO is 0, so a line number in the handler
 * would rest on how Debian happened to build the library. The reader also drops leading space,
 * so inih never takes an indented line as the continuation of the value above it (its
 * multi-line values), and refuses a line longer than the buffer inih gives it instead of letting
 * inih cut it in two. Values are unquoted and checked here, then stored by opts_set().
 *
 * The arena is a list of blocks: parsing a config is rare (start, reload), so an intern lookup
 * walks it. */
#include "config.h"

#include "hex.h"
#include "redact.h"

#include <ctype.h>
#include <errno.h>
#include <ini.h>
#include <stdalign.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* The largest file read, so a mistaken --config /dev/zero ends. */
#define FILE_MAX (1024 * 1024)

typedef struct block {
    struct block *next;
    size_t size;
    bool string; /* interned text: a candidate for config_arena_intern() */
    alignas(max_align_t) unsigned char data[];
} block_t;

struct config_arena {
    block_t *head;
};

config_arena_t *config_arena_new(void)
{
    return calloc(1, sizeof(config_arena_t));
}

void config_arena_destroy(config_arena_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    block_t *b = (*self_p)->head;
    while (b) {
        block_t *next = b->next;
        free(b);
        b = next;
    }
    free(*self_p);
    *self_p = NULL;
}

static block_t *add_block(config_arena_t *self, const void *data, size_t size, bool string)
{
    block_t *b = malloc(sizeof(block_t) + size);
    if (!b)
        return NULL;
    b->size = size;
    b->string = string;
    memcpy(b->data, data, size);
    b->next = self->head;
    self->head = b;
    return b;
}

const char *config_arena_intern(config_arena_t *self, const char *s)
{
    size_t size = strlen(s) + 1;
    for (block_t *b = self->head; b; b = b->next) {
        if (b->string && b->size == size && memcmp(b->data, s, size) == 0)
            return (const char *)b->data;
    }
    block_t *b = add_block(self, s, size, true);
    return b ? (const char *)b->data : NULL;
}

void *config_arena_keep(config_arena_t *self, const void *data, size_t size)
{
    block_t *b = add_block(self, data, size, false);
    return b ? b->data : NULL;
}

/* The keys that choose and print a config file; a file cannot set them. */
static bool is_file_option(const char *name)
{
    return strcmp(name, "config") == 0 || strcmp(name, "print-config") == 0;
}

typedef struct {
    const char *name; /* of the file, for errors */
    const char *rest; /* the text not yet handed to inih */
    int line;         /* of the text last handed to inih */
    const opts_spec_t *spec;
    size_t n;
    void *cfg;
    config_arena_t *arena;
    int *first_line; /* per option: the line that set it, 0 if none yet */
    int failed_line; /* 0 until the first error, which is in err */
    char *err;
    size_t errlen;
} parse_t;

static void fail(parse_t *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void fail(parse_t *p, const char *fmt, ...)
{
    char why[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof(why), fmt, ap);
    va_end(ap);
    snprintf(p->err, p->errlen, "%s:%d: %s", p->name, p->line, why);
    p->failed_line = p->line;
}

/* inih's fgets: one line of the text per call, without its leading space. */
static char *read_line(char *buf, int size, void *stream)
{
    parse_t *p = stream;
    if (p->failed_line || *p->rest == '\0')
        return NULL;
    const char *s = p->rest;
    const char *nl = strchr(s, '\n');
    size_t len = nl ? (size_t)(nl - s) + 1 : strlen(s);
    p->rest = s + len;
    p->line++;
    size_t skip = 0;
    while (skip < len && s[skip] != '\n' && isspace((unsigned char)s[skip]))
        skip++;
    /* on_pair() copies a value into a CONFIG_LINE_MAX buffer, whatever inih's size is. */
    size_t cap = size > 0 && size < CONFIG_LINE_MAX ? (size_t)size : CONFIG_LINE_MAX;
    if (len - skip + 1 > cap) {
        fail(p, "line too long (longer than %zu bytes)", cap - 2);
        return NULL;
    }
    memcpy(buf, s + skip, len - skip);
    buf[len - skip] = '\0';
    return buf;
}

/* Copy value into out (at least strlen(value) + 1 bytes), without its quotes if it has them.
 * Returns NULL, or the reason it is malformed. */
static const char *unquote(const char *value, char *out)
{
    if (value[0] != '"') {
        strcpy(out, value);
        return NULL;
    }
    size_t j = 0;
    for (const char *q = value + 1;; q++) {
        if (*q == '\0')
            return "the quoted value has no closing '\"' (inside quotes, write ';' as \\;)";
        if (*q == '"') {
            if (q[1] != '\0')
                return "text after the closing '\"' (quote the whole value)";
            break;
        }
        char c = *q;
        if (c == '\\') {
            switch (*++q) {
            case '"':
            case '\\':
            case ';':
                c = *q;
                break;
            case 'n':
                c = '\n';
                break;
            case 'r':
                c = '\r';
                break;
            case 't':
                c = '\t';
                break;
            case 'x': {
                int hi = hex_digit(q[1]), lo = hi < 0 ? -1 : hex_digit(q[2]);
                if (lo < 0 || (hi == 0 && lo == 0))
                    return "\\x takes two hex digits, not 00";
                c = (char)(hi << 4 | lo);
                q += 2;
                break;
            }
            default:
                return "unknown escape (inside quotes: \\\" \\\\ \\; \\n \\r \\t \\xHH)";
            }
        }
        out[j++] = c;
    }
    out[j] = '\0';
    return NULL;
}

static int on_pair(void *user, const char *section, const char *name, const char *value)
{
    parse_t *p = user;
    if (p->failed_line)
        return 0;
    if (*section) {
        fail(p, "'%s' is under [%s]: keys belong at the top level (no sections)", name, section);
        return 0;
    }
    if (is_file_option(name)) {
        fail(p, "'%s' cannot be set in a config file", name);
        return 0;
    }
    size_t i = 0;
    while (i < p->n && strcmp(p->spec[i].name, name) != 0)
        i++;
    if (i == p->n) {
        fail(p, "unknown key '%s'", name);
        return 0;
    }
    if (p->first_line[i]) {
        fail(p, "duplicate key '%s' (first on line %d)", name, p->first_line[i]);
        return 0;
    }
    p->first_line[i] = p->line;
    char text[CONFIG_LINE_MAX];
    const char *why = unquote(value, text);
    if (why) {
        fail(p, "%s: %s", name, why);
        return 0;
    }
    const char *v = text;
    if (p->spec[i].type == OPTS_STRING && !(v = config_arena_intern(p->arena, text))) {
        fail(p, "out of memory");
        return 0;
    }
    char reason[256];
    if (opts_set(&p->spec[i], p->cfg, v, reason, sizeof(reason)) != 0) {
        fail(p, "%s: %s", name, reason);
        return 0;
    }
    return 1;
}

int config_parse_string(const char *name, const char *text, const opts_spec_t *spec, size_t n,
                        void *cfg, config_arena_t *arena, char *err, size_t errlen)
{
    parse_t p = {.name = name,
                 .rest = text,
                 .spec = spec,
                 .n = n,
                 .cfg = cfg,
                 .arena = arena,
                 .first_line = calloc(n ? n : 1, sizeof(int)),
                 .err = err,
                 .errlen = errlen};
    if (!p.first_line) {
        snprintf(err, errlen, "%s: out of memory", name);
        return -1;
    }
    /* Debian's libinih takes its line buffer's size from this global (200 bytes unless set);
     * shoal parses one config at a time, on one thread. */
    ini_max_line = CONFIG_LINE_MAX;
    int r = ini_parse_stream(read_line, &p, on_pair, &p);
    free(p.first_line);
    if (r == -2) {
        snprintf(err, errlen, "%s: out of memory", name);
        return -1;
    }
    /* inih reports the first line it found wrong, ours included; one before ours is its own. */
    if (r > 0 && (!p.failed_line || r < p.failed_line)) {
        snprintf(err, errlen, "%s:%d: expected 'name = value'", name, r);
        return -1;
    }
    return p.failed_line ? -1 : 0;
}

int config_parse_file(const char *path, const opts_spec_t *spec, size_t n, void *cfg,
                      config_arena_t *arena, char *err, size_t errlen)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        snprintf(err, errlen, "%s: cannot read: %s", path, strerror(errno));
        return -1;
    }
    char *text = malloc(FILE_MAX + 1);
    if (!text) {
        fclose(f);
        snprintf(err, errlen, "%s: out of memory", path);
        return -1;
    }
    size_t len = fread(text, 1, FILE_MAX + 1, f);
    int read_errno = ferror(f) ? errno : 0;
    fclose(f);
    int rc = -1;
    if (read_errno) {
        snprintf(err, errlen, "%s: cannot read: %s", path, strerror(read_errno));
    } else if (len > FILE_MAX) {
        snprintf(err, errlen, "%s: cannot read: larger than %d bytes", path, FILE_MAX);
    } else if (memchr(text, '\0', len)) {
        const char *nul = memchr(text, '\0', len);
        int line = 1;
        for (const char *c = text; c < nul; c++)
            line += *c == '\n';
        snprintf(err, errlen, "%s:%d: a NUL byte (is this a text file?)", path, line);
    } else {
        text[len] = '\0';
        rc = config_parse_string(path, text, spec, n, cfg, arena, err, errlen);
    }
    free(text);
    return rc;
}

/* Whether s must be quoted to read back as itself. */
static bool needs_quotes(const char *s)
{
    size_t len = strlen(s);
    if (len == 0 || isspace((unsigned char)s[0]) || isspace((unsigned char)s[len - 1]))
        return true;
    for (const unsigned char *c = (const unsigned char *)s; *c; c++) {
        if (*c < 0x20 || *c == 0x7f || strchr("#;\"\\", *c))
            return true;
    }
    return false;
}

static void print_string(FILE *out, const char *s)
{
    if (!needs_quotes(s)) {
        fputs(s, out);
        return;
    }
    fputc('"', out);
    for (const unsigned char *c = (const unsigned char *)s; *c; c++) {
        switch (*c) {
        case '"':
        case '\\':
        case ';':
            fprintf(out, "\\%c", *c);
            break;
        case '\n':
            fputs("\\n", out);
            break;
        case '\r':
            fputs("\\r", out);
            break;
        case '\t':
            fputs("\\t", out);
            break;
        default:
            if (*c < 0x20 || *c == 0x7f)
                fprintf(out, "\\x%02x", *c);
            else
                fputc(*c, out);
        }
    }
    fputc('"', out);
}

void config_print(FILE *out, const opts_spec_t *spec, size_t n, const void *cfg, const char *prog)
{
    fprintf(out,
            "# %s configuration, as printed by --print-config. Read it with --config FILE (or\n"
            "# SHOAL_CONFIG=FILE). Keys are the long option names; a flag or a SHOAL_* variable\n"
            "# overrides a key. Comments start with # or ;. Quoted values take the escapes\n"
            "# \\\" \\\\ \\; \\n \\r \\t \\xHH.\n",
            prog);
    char envname[96];
    for (size_t i = 0; i < n; i++) {
        const opts_spec_t *s = &spec[i];
        if (is_file_option(s->name))
            continue;
        const char *field = (const char *)cfg + s->offset;
        fputs("\n# ", out);
        for (const char *h = s->help; h && *h; h++) {
            fputc(*h, out);
            if (*h == '\n')
                fputs("# ", out);
        }
        opts_env_name(s->name, envname, sizeof(envname));
        fprintf(out, "\n# (--%s%s%s, %s", s->name, s->metavar ? " " : "",
                s->metavar ? s->metavar : "", envname);
        if (s->type == OPTS_UINT)
            fprintf(out, "; %u..%u", s->min, s->max);
        fputs(")\n", out);
        switch (s->type) {
        case OPTS_STRING: {
            const char *v = *(const char *const *)(const void *)field;
            if (!v) {
                fprintf(out, "# %s = (not set)\n", s->name);
                break;
            }
            char shown[1024];
            if (s->min & OPTS_SECRET_URL && strcmp(redact_url(v, shown, sizeof(shown)), v) != 0) {
                /* Not a round trip, on purpose: the file would be a copy of the password. */
                fputs("# the URL's password is not printed: give it with a password file option\n",
                      out);
                v = shown;
            }
            fprintf(out, "%s = ", s->name);
            print_string(out, v);
            fputc('\n', out);
            break;
        }
        case OPTS_UINT:
            fprintf(out, "%s = %u\n", s->name, *(const uint32_t *)(const void *)field);
            break;
        case OPTS_FLAG:
            fprintf(out, "%s = %s\n", s->name,
                    *(const bool *)(const void *)field ? "true" : "false");
            break;
        }
    }
}
