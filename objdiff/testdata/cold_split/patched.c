extern int printk(const char *fmt, ...);
extern void __might_sleep(const char *file, int line);
extern void *kmalloc(unsigned long size, int flags);
extern int ext_sink(int);
extern void report_error(const char *what, int v) __attribute__((cold));
int checked(int x, int y)
{
	int r = 0;
	for (int i = 0; i < x; i++) {
		if (__builtin_expect(y == i, 0)) {
			report_error("bad", i);
			r += ext_sink(i * 3) + ext_sink(i * 5) + ext_sink(y);
			continue;
		}
		r += ext_sink(i + 1);
	}
	return r;
}
int other(int x) { return ext_sink(x); }
