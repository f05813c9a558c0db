/* Kernel thread starts as an IBT kernel compiles them (-fcf-protection:
 * endbr64 at every function entry; padding before each function, so that a
 * reference to a static function is its section plus an offset). */
struct task;
struct task *kthread_create_on_node(int (*fn)(void *), void *data, int node, const char *fmt, ...);
void register_callback(int (*fn)(void *));

static __attribute__((noinline)) int worker(void *p)
{
	for (;;)
		asm volatile("" ::: "memory");
	return 0;
}

struct task *start(void *p)
{
	return kthread_create_on_node(worker, p, -1, "worker");
}

void not_a_start(void)
{
	register_callback(worker);
}
