extern int printk(const char *fmt, ...);
extern void __might_sleep(const char *file, int line);
extern void *kmalloc(unsigned long size, int flags);
extern int ext_sink(int);
static __attribute__((noinline)) int mul(int x, int k) { return ext_sink(x * k) + k; }
int a1(int x) { return mul(x, 5); }
int a2(int x) { return mul(x, 6) + 1; }
