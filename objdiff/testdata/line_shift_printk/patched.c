extern int printk(const char *fmt, ...);
extern void __might_sleep(const char *file, int line);
extern void *kmalloc(unsigned long size, int flags);
extern int ext_sink(int);


/* two lines added above */
int report(int x)
{
	return printk("%s:%d %d\n", __FILE__, __LINE__, x);
}
