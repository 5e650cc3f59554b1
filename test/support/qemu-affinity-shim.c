/*
 * Preloaded into an arm64 crun run under qemu-user by test/image/arm64.test.ts, and nowhere else.
 *
 * crun resets the container's inherited CPU affinity with sched_setaffinity(pid, 0, NULL), which the kernel
 * always refuses (EINVAL or ENODEV, which crun expects); qemu-user tries to copy the NULL mask from the guest
 * first and answers EFAULT, which crun takes for a real failure. This gives that one call the kernel's answer;
 * every other call goes to the kernel as it is.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <sys/syscall.h>
#include <unistd.h>

int sched_setaffinity(pid_t pid, size_t len, const cpu_set_t *mask)
{
	if (len == 0 && mask == NULL) {
		errno = EINVAL;
		return -1;
	}
	return (int)syscall(SYS_sched_setaffinity, pid, len, mask);
}
