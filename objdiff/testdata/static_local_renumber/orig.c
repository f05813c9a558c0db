extern int printk(const char *fmt, ...);
extern void __might_sleep(const char *file, int line);
extern void *kmalloc(unsigned long size, int flags);
extern int ext_sink(int);
int first(void) { return ext_sink(2); }
int second(void) { static int hits; hits++; return ext_sink(hits); }
