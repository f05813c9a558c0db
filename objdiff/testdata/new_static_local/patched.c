extern int printk(const char *fmt, ...);
extern void __might_sleep(const char *file, int line);
extern void *kmalloc(unsigned long size, int flags);
extern int ext_sink(int);
int count(void) { static int calls; calls++; return ext_sink(calls); }
int other(int x) { return ext_sink(x); }
