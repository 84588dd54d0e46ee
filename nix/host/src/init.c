/*
 * rvbuild initramfs init: mounts the pseudo filesystems, loads every module listed in
 * /etc/modules with finit_module(2), reads /dev/rvhello when the example driver is loaded,
 * prints the boot marker the QEMU test waits for, and powers the machine off.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/reboot.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <unistd.h>

#define MAX_MODULES 256

/* Returns 0 when loaded, else the errno of the failure. */
static int load_module(const char *path, int quiet)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		int err = errno;
		printf("rvbuild-init: cannot open %s: %s\n", path, strerror(err));
		return err;
	}
	long r = syscall(SYS_finit_module, fd, "", 0);
	int err = errno;
	close(fd);
	if (r != 0 && err != EEXIST) {
		if (!quiet)
			printf("rvbuild-init: finit_module %s failed: %s\n", path, strerror(err));
		return err;
	}
	printf("rvbuild-init: loaded %s\n", path);
	return 0;
}

int main(void)
{
	int failures = 0;
	mount("proc", "/proc", "proc", 0, NULL);
	mount("sysfs", "/sys", "sysfs", 0, NULL);
	mount("devtmpfs", "/dev", "devtmpfs", 0, NULL);

	struct utsname u;
	if (uname(&u) == 0)
		printf("rvbuild-init: %s on %s %s (board %s)\n", u.sysname, u.machine, u.release,
		       RVBUILD_BOARD);

	/* Load every listed module. A module whose dependencies are not loaded yet fails with
	 * "unknown symbol": retry in passes until a pass loads nothing new (no modules.dep needed). */
	static char paths[MAX_MODULES][512];
	static int done[MAX_MODULES];
	int n = 0;
	FILE *list = fopen("/etc/modules", "r");
	char line[512];
	while (list && n < MAX_MODULES && fgets(line, sizeof line, list)) {
		line[strcspn(line, "\r\n")] = 0;
		if (line[0])
			snprintf(paths[n++], sizeof paths[0], "%s", line);
	}
	if (list)
		fclose(list);
	int progress = 1, remaining = n;
	while (progress && remaining > 0) {
		progress = 0;
		for (int i = 0; i < n; i++) {
			if (!done[i] && load_module(paths[i], 1) == 0) {
				done[i] = 1;
				remaining--;
				progress = 1;
			}
		}
	}
	for (int i = 0; i < n; i++) {
		if (!done[i]) {
			load_module(paths[i], 0);
			failures++;
		}
	}

	int fd = open("/dev/rvhello", O_RDONLY);
	if (fd >= 0) {
		char buf[128];
		ssize_t n = read(fd, buf, sizeof buf - 1);
		if (n > 0) {
			buf[n] = 0;
			printf("rvbuild-init: /dev/rvhello: %s", buf);
		} else {
			printf("rvbuild-init: /dev/rvhello read failed\n");
			failures++;
		}
		close(fd);
	}

	if (failures == 0)
		printf("%s\n", RVBUILD_MARKER);
	else
		printf("rvbuild-init: %d module(s) failed to load, no marker\n", failures);
	fflush(stdout);
	sync();
	reboot(RB_POWER_OFF);
	for (;;)
		pause();
}
