extern int printk(const char *fmt, ...);
extern void __might_sleep(const char *file, int line);
extern void *kmalloc(unsigned long size, int flags);
extern int ext_sink(int);
int answer(int x) { return x * 3 + 1; }
int other(int x) { return ext_sink(x); }
