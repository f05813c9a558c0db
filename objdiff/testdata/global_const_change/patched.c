extern int printk(const char *fmt, ...);
extern void __might_sleep(const char *file, int line);
extern void *kmalloc(unsigned long size, int flags);
extern int ext_sink(int);
const int limits[3] = {10, 25, 30};
int lim(int i) { return limits[i]; }
