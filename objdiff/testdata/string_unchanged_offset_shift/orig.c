extern int printk(const char *fmt, ...);
extern void __might_sleep(const char *file, int line);
extern void *kmalloc(unsigned long size, int flags);
extern int ext_sink(int);
int aaa(void) { return printk("first string\n"); }
int bbb(void) { return printk("second\n"); }
