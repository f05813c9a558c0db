extern int printk(const char *fmt, ...);
extern void __might_sleep(const char *file, int line);
extern void *kmalloc(unsigned long size, int flags);
extern int ext_sink(int);
struct big { int a, b, c, d, e, f, g, h; };
static __attribute__((noinline)) int pick(struct big *p, int tag)
{
	int r = 0;
	for (int i = 0; i < p->a; i++)
		r += ext_sink(i * p->h) + ext_sink(i) + ext_sink(tag);
	return r;
}
int use(struct big *p) { return pick(p, 1) + pick(p + 1, 2) + pick(p + 2, 3); }
