extern int printk(const char *fmt, ...);
extern void __might_sleep(const char *file, int line);
extern void *kmalloc(unsigned long size, int flags);
extern int ext_sink(int);
/*
 * a comment that moves everything down
 */
int sleepy(int x)
{
	__might_sleep(__FILE__, __LINE__);
	return ext_sink(x);
}
