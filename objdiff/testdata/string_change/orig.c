extern int printk(const char *fmt, ...);
extern void __might_sleep(const char *file, int line);
extern void *kmalloc(unsigned long size, int flags);
extern int ext_sink(int);
int hello(void) { return printk("hello %d\n", 1); }
int bye(void) { return printk("bye\n"); }
