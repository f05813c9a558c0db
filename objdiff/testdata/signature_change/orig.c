extern int printk(const char *fmt, ...);
extern void __might_sleep(const char *file, int line);
extern void *kmalloc(unsigned long size, int flags);
extern int ext_sink(int);
__attribute__((noinline)) int callee(int a) { return ext_sink(a); }
int caller(int x) { return callee(x) + 1; }
