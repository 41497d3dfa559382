/* SPDX-License-Identifier: MIT */
/* test_pidcache: cmd/pidcache.c's getpid() (linked in here as in the cluster daemons) answers the
 * real pid, before and after fork() in both processes, and is the one the dynamic linker hands
 * out (so libzmq calls it). */
#include <dlfcn.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <setjmp.h>

#include <cmocka.h>

static pid_t real_pid(void)
{
    return (pid_t)syscall(SYS_getpid);
}

static void answers_the_real_pid(void **state)
{
    (void)state;
    assert_int_equal(getpid(), real_pid());
    assert_int_equal(getpid(), getpid());
}

static void a_fork_child_gets_its_own_pid(void **state)
{
    (void)state;
    pid_t parent = getpid();
    pid_t child = fork();
    assert_true(child >= 0);
    if (child == 0) /* exit status: 0 if the child sees its own pid, not the parent's */
        _exit(getpid() == real_pid() && getpid() != parent ? 0 : 1);
    int status = 0;
    assert_int_equal(waitpid(child, &status, 0), child);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    assert_int_equal(getpid(), parent); /* the parent's is unchanged */
}

static void the_dynamic_linker_resolves_to_it(void **state)
{
    (void)state;
    /* What a shared library's call to getpid() binds to (the daemons' link exports it). */
    void *sym = dlsym(RTLD_DEFAULT, "getpid");
    assert_ptr_equal(sym, (void *)getpid);
    void *libc = dlsym(RTLD_NEXT, "getpid");
    assert_non_null(libc);
    assert_ptr_not_equal(libc, (void *)getpid);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(answers_the_real_pid),
        cmocka_unit_test(a_fork_child_gets_its_own_pid),
        cmocka_unit_test(the_dynamic_linker_resolves_to_it),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
