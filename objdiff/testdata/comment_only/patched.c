extern int printk(const char *fmt, ...);
extern void __might_sleep(const char *file, int line);
extern void *kmalloc(unsigned long size, int flags);
extern int ext_sink(int);
/* a comment */

int same(int x)
{
	/* and another */
	return ext_sink(x);
}
