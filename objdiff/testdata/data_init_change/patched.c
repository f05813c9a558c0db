extern int printk(const char *fmt, ...);
extern void __might_sleep(const char *file, int line);
extern void *kmalloc(unsigned long size, int flags);
extern int ext_sink(int);
int table[4] = {1, 2, 3, 5};
int get(int i) { return table[i]; }
