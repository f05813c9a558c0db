extern int printk(const char *fmt, ...);
extern void __might_sleep(const char *file, int line);
extern void *kmalloc(unsigned long size, int flags);
extern int ext_sink(int);
__attribute__((noinline)) int callee(int a, int b) { return ext_sink(a + b); }
int caller(int x) { return callee(x, 2) + 1; }
