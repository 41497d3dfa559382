/* SPDX-License-Identifier: MIT */
/* shoal-keygen: write a new CURVE certificate pair for --curve-cert / --curve-trust, in czmq's
 * format (zcert_save): the public part at PATH, the secret part at PATH_secret (mode 0600). Never
 * overwrites: both files are created exclusively first, and removed again if writing fails.
 *
 *   shoal-keygen PATH        exit 0: written (the public key is printed); 1: I/O error; 2: usage */
#include <czmq.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static void usage(FILE *out)
{
    fprintf(out, "usage: shoal-keygen PATH\n"
                 "Writes a new CURVE certificate for shoal-node and shoal-gateway (--curve-cert, "
                 "--curve-trust):\n"
                 "  PATH         the public part: copy it into the peers' --curve-trust dirs\n"
                 "  PATH_secret  the secret part (mode 0600): this process's --curve-cert\n"
                 "Existing files are never overwritten.\n");
}

/* Create path exclusively with mode; 0, or -1 (said on stderr). */
static int reserve(const char *path, mode_t mode)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
    if (fd < 0) {
        fprintf(stderr, "shoal-keygen: %s: %s%s\n", path, strerror(errno),
                errno == EEXIST ? " (not overwritten)" : "");
        return -1;
    }
    if (fchmod(fd, mode) != 0) { /* the umask may have taken bits a public file needs */
        fprintf(stderr, "shoal-keygen: %s: %s\n", path, strerror(errno));
        close(fd);
        unlink(path);
        return -1;
    }
    close(fd);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc == 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
        usage(stdout);
        return 0;
    }
    if (argc != 2 || argv[1][0] == '\0' || argv[1][0] == '-') {
        usage(stderr);
        return 2;
    }
    const char *path = argv[1];
    char secret[4096];
    if ((size_t)snprintf(secret, sizeof(secret), "%s_secret", path) >= sizeof(secret)) {
        fprintf(stderr, "shoal-keygen: path too long\n");
        return 2;
    }
    if (reserve(path, 0644) != 0)
        return 1;
    if (reserve(secret, 0600) != 0) {
        unlink(path);
        return 1;
    }
    zsys_handler_set(NULL);
    zcert_t *cert = zcert_new();
    /* Into the reserved files: fopen("w") keeps their modes. */
    if (!cert || zcert_save_public(cert, path) != 0 || zcert_save_secret(cert, secret) != 0 ||
        chmod(secret, 0600) != 0) {
        fprintf(stderr, "shoal-keygen: cannot write %s and %s: %s\n", path, secret,
                strerror(errno));
        unlink(path);
        unlink(secret);
        zcert_destroy(&cert);
        return 1;
    }
    printf("%s\n", zcert_public_txt(cert));
    zcert_destroy(&cert);
    return 0;
}
