extern int printk(const char *fmt, ...);
extern void __might_sleep(const char *file, int line);
extern void *kmalloc(unsigned long size, int flags);
extern int ext_sink(int);
__attribute__((noinline)) int leaf(int x) { return ext_sink(x) + 2; }
int mid(int x) { return leaf(x) * 2; }
