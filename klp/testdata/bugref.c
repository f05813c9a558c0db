/* A warning as Linux 7 writes it on x86 (asm/bug.h): the code passes the
 * address of its own __bug_table entry to the trap handler. */
void warn_trap(void *entry);

#define WARN_HERE() asm volatile(					\
	"1:\tlea 2f(%%rip), %%rdi\n\t"					\
	"call warn_trap\n"						\
	".pushsection __bug_table,\"aw\"\n"				\
	"2:\t.long 1b - .\n\t.long %c0\n"				\
	".popsection" : : "i" (__LINE__) : "rdi", "memory")

void first(void) { WARN_HERE(); }
void second(void) { WARN_HERE(); }
