extern int printk(const char *fmt, ...);
extern void __might_sleep(const char *file, int line);
extern void *kmalloc(unsigned long size, int flags);
extern int ext_sink(int);
static __attribute__((noinline)) int helper(int x) { return ext_sink(x) * 4; }
int api(int x) { return helper(x) + helper(x + 1); }
