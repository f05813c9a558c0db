extern int printk(const char *fmt, ...);
extern void __might_sleep(const char *file, int line);
extern void *kmalloc(unsigned long size, int flags);
extern int ext_sink(int);
static inline int scale(int x) { return x * 9; }
int first(int x) { return scale(x) + 1; }
int second(int x) { return ext_sink(scale(x)); }
int third(int x) { return ext_sink(x); }
