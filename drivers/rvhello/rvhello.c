// SPDX-License-Identifier: GPL-2.0
/*
 * rvhello: rvbuild's example out-of-tree driver. A misc character device, /dev/rvhello,
 * whose read returns a greeting naming the running kernel's machine; the boot test checks
 * both the load message and the read.
 */
#include <linux/fs.h>
#include <linux/init.h>
#include <linux/miscdevice.h>
#include <linux/module.h>
#include <linux/utsname.h>

static char greeting[96];
static size_t greeting_len;

static ssize_t rvhello_read(struct file *file, char __user *buf, size_t count, loff_t *ppos)
{
	return simple_read_from_buffer(buf, count, ppos, greeting, greeting_len);
}

static const struct file_operations rvhello_fops = {
	.owner = THIS_MODULE,
	.read = rvhello_read,
	.llseek = default_llseek,
};

static struct miscdevice rvhello_dev = {
	.minor = MISC_DYNAMIC_MINOR,
	.name = "rvhello",
	.fops = &rvhello_fops,
	.mode = 0444,
};

static int __init rvhello_init(void)
{
	int ret;

	greeting_len = scnprintf(greeting, sizeof(greeting), "rvhello says hi from %s %s\n",
				 utsname()->machine, utsname()->release);
	ret = misc_register(&rvhello_dev);
	if (ret) {
		pr_err("rvhello: misc_register failed: %d\n", ret);
		return ret;
	}
	pr_info("rvhello: loaded, /dev/rvhello ready (minor %d)\n", rvhello_dev.minor);
	return 0;
}

static void __exit rvhello_exit(void)
{
	misc_deregister(&rvhello_dev);
	pr_info("rvhello: unloaded\n");
}

module_init(rvhello_init);
module_exit(rvhello_exit);

MODULE_LICENSE("GPL");
MODULE_AUTHOR("rvbuild");
MODULE_DESCRIPTION("rvbuild example out-of-tree misc driver");
