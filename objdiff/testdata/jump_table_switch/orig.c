extern int printk(const char *fmt, ...);
extern void __might_sleep(const char *file, int line);
extern void *kmalloc(unsigned long size, int flags);
extern int ext_sink(int);
int dispatch(int op, int v)
{
	switch (op) {
	case 0: return ext_sink(v + 1);
	case 1: return ext_sink(v * 3);
	case 2: return ext_sink(v - 7);
	case 3: return ext_sink(v << 2);
	case 4: return ext_sink(v ^ 5);
	case 5: return ext_sink(v | 9);
	case 6: return ext_sink(v & 3);
	case 7: return ext_sink(v % 11);
	}
	return -1;
}
int other(int x) { return ext_sink(x); }
