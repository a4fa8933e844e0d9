/*
 * A fault-injecting LD_PRELOAD shim for the storage-fault tests (crates/cli/tests/faults.rs):
 * it makes the system calls SQLite writes its files with fail, as a full disk, a failing disk
 * or a read-only file system would, while a trigger file exists.
 *
 * LONGRUN_FAULTS names a directory of triggers; LONGRUN_FAULT_FILES a path prefix (the data
 * directory). While `$LONGRUN_FAULTS/<fault>` exists, calls on files under the prefix fail:
 *   enospc  write, pwrite, pwrite64, writev, ftruncate, fallocate fail with ENOSPC (full disk)
 *   eio     fsync and fdatasync fail with EIO (a failing fsync)
 *   erofs   the writes above, the syncs, and every open for writing fail with EROFS
 * Without the variables, or with no trigger, every call goes straight through.
 *
 * Build: cc -shared -fPIC -o libfaults.so shim.c -ldl
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <unistd.h>

enum fault { NONE = 0, ENOSPC_FAULT = 1, EIO_FAULT = 2, EROFS_FAULT = 4 };

/* Which faults are on now: one access() per trigger; cheap next to a disk write. */
static int faults_on(void) {
    const char *dir = getenv("LONGRUN_FAULTS");
    if (dir == NULL || getenv("LONGRUN_FAULT_FILES") == NULL) return NONE;
    char path[PATH_MAX];
    int on = NONE;
    snprintf(path, sizeof path, "%s/enospc", dir);
    if (access(path, F_OK) == 0) on |= ENOSPC_FAULT;
    snprintf(path, sizeof path, "%s/eio", dir);
    if (access(path, F_OK) == 0) on |= EIO_FAULT;
    snprintf(path, sizeof path, "%s/erofs", dir);
    if (access(path, F_OK) == 0) on |= EROFS_FAULT;
    return on;
}

static int under_prefix(const char *path) {
    const char *prefix = getenv("LONGRUN_FAULT_FILES");
    return prefix != NULL && path != NULL && strncmp(path, prefix, strlen(prefix)) == 0;
}

/* Whether `fd` is a file under the prefix (read from /proc, which readlink is not shimmed for). */
static int fd_under_prefix(int fd) {
    char link[64], target[PATH_MAX];
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    ssize_t n = readlink(link, target, sizeof target - 1);
    if (n <= 0) return 0;
    target[n] = '\0';
    return under_prefix(target);
}

/* The errno a write to `fd` fails with now, or 0 to let it through. */
static int write_fault(int fd) {
    int on = faults_on();
    if (!(on & (ENOSPC_FAULT | EROFS_FAULT)) || !fd_under_prefix(fd)) return 0;
    return (on & EROFS_FAULT) ? EROFS : ENOSPC;
}

/* The errno a sync of `fd` fails with now, or 0 to let it through. */
static int sync_fault(int fd) {
    int on = faults_on();
    if (!(on & (EIO_FAULT | EROFS_FAULT)) || !fd_under_prefix(fd)) return 0;
    return (on & EROFS_FAULT) ? EROFS : EIO;
}

static int open_fault(const char *path, int flags) {
    if (!(flags & (O_WRONLY | O_RDWR | O_CREAT | O_TRUNC))) return 0;
    if (!(faults_on() & EROFS_FAULT)) return 0;
    /* A relative path is resolved against the working directory before the check. */
    char resolved[PATH_MAX];
    if (path[0] != '/') {
        if (getcwd(resolved, sizeof resolved) == NULL) return 0;
        strncat(resolved, "/", sizeof resolved - strlen(resolved) - 1);
        strncat(resolved, path, sizeof resolved - strlen(resolved) - 1);
        path = resolved;
    }
    return under_prefix(path) ? EROFS : 0;
}

/* The libc function this one stands in front of, looked up once. */
#define REAL(name) \
    static __typeof__(&name) real_##name; \
    if (real_##name == NULL) real_##name = (__typeof__(&name))dlsym(RTLD_NEXT, #name)

#define FAIL_WITH(error_expr) \
    do { int e_ = (error_expr); if (e_ != 0) { errno = e_; return -1; } } while (0)

ssize_t write(int fd, const void *buf, size_t count) {
    REAL(write);
    FAIL_WITH(write_fault(fd));
    return real_write(fd, buf, count);
}

ssize_t pwrite(int fd, const void *buf, size_t count, off_t offset) {
    REAL(pwrite);
    FAIL_WITH(write_fault(fd));
    return real_pwrite(fd, buf, count, offset);
}

ssize_t pwrite64(int fd, const void *buf, size_t count, off64_t offset) {
    REAL(pwrite64);
    FAIL_WITH(write_fault(fd));
    return real_pwrite64(fd, buf, count, offset);
}

ssize_t writev(int fd, const struct iovec *iov, int iovcnt) {
    REAL(writev);
    FAIL_WITH(write_fault(fd));
    return real_writev(fd, iov, iovcnt);
}

int ftruncate(int fd, off_t length) {
    REAL(ftruncate);
    FAIL_WITH(write_fault(fd));
    return real_ftruncate(fd, length);
}

int ftruncate64(int fd, off64_t length) {
    REAL(ftruncate64);
    FAIL_WITH(write_fault(fd));
    return real_ftruncate64(fd, length);
}

int fallocate(int fd, int mode, off_t offset, off_t len) {
    REAL(fallocate);
    FAIL_WITH(write_fault(fd));
    return real_fallocate(fd, mode, offset, len);
}

int posix_fallocate(int fd, off_t offset, off_t len) {
    REAL(posix_fallocate);
    /* posix_fallocate returns the error instead of setting errno. */
    int e = write_fault(fd);
    if (e != 0) return e;
    return real_posix_fallocate(fd, offset, len);
}

int fsync(int fd) {
    REAL(fsync);
    FAIL_WITH(sync_fault(fd));
    return real_fsync(fd);
}

int fdatasync(int fd) {
    REAL(fdatasync);
    FAIL_WITH(sync_fault(fd));
    return real_fdatasync(fd);
}

static mode_t mode_arg(int flags, va_list args) {
    return (flags & (O_CREAT | O_TMPFILE)) ? (mode_t)va_arg(args, int) : 0;
}

int open(const char *path, int flags, ...) {
    REAL(open);
    va_list args;
    va_start(args, flags);
    mode_t mode = mode_arg(flags, args);
    va_end(args);
    FAIL_WITH(open_fault(path, flags));
    return real_open(path, flags, mode);
}

int open64(const char *path, int flags, ...) {
    REAL(open64);
    va_list args;
    va_start(args, flags);
    mode_t mode = mode_arg(flags, args);
    va_end(args);
    FAIL_WITH(open_fault(path, flags));
    return real_open64(path, flags, mode);
}

int openat(int dirfd, const char *path, int flags, ...) {
    REAL(openat);
    va_list args;
    va_start(args, flags);
    mode_t mode = mode_arg(flags, args);
    va_end(args);
    FAIL_WITH(open_fault(path, flags));
    return real_openat(dirfd, path, flags, mode);
}

int openat64(int dirfd, const char *path, int flags, ...) {
    REAL(openat64);
    va_list args;
    va_start(args, flags);
    mode_t mode = mode_arg(flags, args);
    va_end(args);
    FAIL_WITH(open_fault(path, flags));
    return real_openat64(dirfd, path, flags, mode);
}
