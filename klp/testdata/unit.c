/* A translation unit shaped like kernel code, for klp's tests. */
extern int ext_func(const char *s);
extern int ext_data;

int counter;
static int state = 3;

static __attribute__((noinline)) int helper(int x)
{
	return x * state;
}

/* An entry of a table in a special section, pointing at the code it
 * belongs to: 12 bytes, the first field relative to that code. */
#define ENTRY(label) asm volatile("1: nop\n.pushsection __graft_table,\"a\"\n.long 1b - .\n.long " #label "\n.long 0\n.popsection")

int changed(int x)
{
	ENTRY(7);
	counter++;
	return helper(x) + ext_func("changed string") + ext_data;
}

int untouched(int x)
{
	ENTRY(8);
	return helper(x) + ext_func("untouched string");
}

/* A static variable of its function, as pr_warn_once keeps one. */
int once(void)
{
	static int warned;

	if (warned)
		return 0;
	warned = 1;
	return 1;
}
