/* SPDX-License-Identifier: MIT */
/* secretfile: one secret from one file (secretfile.h). */
#include "secretfile.h"

#include "err.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int secretfile_read(const char *path, char *out, size_t outlen, bool *world_readable, char *err,
                    size_t errlen)
{
    if (outlen < 2) {
        err_set(err, errlen, "%s: no room for a secret", path);
        return -1;
    }
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0) {
        err_set(err, errlen, "%s: %s", path, strerror(errno));
        return -1;
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        err_set(err, errlen, "%s: not a regular file", path);
        close(fd);
        return -1;
    }
    if (world_readable)
        *world_readable = (st.st_mode & S_IROTH) != 0;
    /* Read up to outlen bytes (the secret, maybe a newline), then one more to tell "too long". */
    size_t n = 0;
    bool more = false;
    for (;;) {
        ssize_t r = read(fd, out + n, outlen - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            err_set(err, errlen, "%s: %s", path, strerror(errno));
            close(fd);
            return -1;
        }
        if (r == 0)
            break;
        n += (size_t)r;
        if (n == outlen) {
            char extra;
            ssize_t x;
            do
                x = read(fd, &extra, 1);
            while (x < 0 && errno == EINTR);
            more = x != 0;
            break;
        }
    }
    close(fd);
    if (n > 0 && out[n - 1] == '\n')
        n--;
    if (n > 0 && out[n - 1] == '\r')
        n--;
    if (more || n >= outlen) {
        memset(out, 0, outlen);
        err_set(err, errlen, "%s: longer than %zu bytes", path, outlen - 1);
        return -1;
    }
    out[n] = '\0';
    if (n == 0 || memchr(out, '\0', n)) {
        memset(out, 0, outlen);
        err_set(err, errlen, "%s: %s", path, n == 0 ? "empty" : "holds a NUL byte");
        return -1;
    }
    return 0;
}
