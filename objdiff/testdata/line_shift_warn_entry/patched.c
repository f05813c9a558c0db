/* Linux 7's WARN on x86: the code passes the address of its own
 * __bug_table entry, which holds the file name and the line. A line added
 * above moves the line in every entry: the functions did not change. */
void warn_trap(void *entry);
/* A new line. */

#define WARN_HERE() asm volatile(						\
	"1:\tlea 2f(%%rip), %%rdi\n\t"						\
	"call warn_trap\n"							\
	".pushsection .rodata.str1.1,\"aMS\",@progbits,1\n"			\
	"3:\t.asciz \"" __FILE__ "\"\n"						\
	".popsection\n"								\
	".pushsection __bug_table,\"aw\"\n"					\
	"2:\t.long 1b - .\n\t.long 3b - .\n\t.short %c0\n\t.short 0\n"		\
	".popsection" : : "i" (__LINE__) : "rdi", "memory")

int checked(int v)
{
	if (v < 0)
		WARN_HERE();
	return v;
}

int also_checked(int v)
{
	if (v > 100)
		WARN_HERE();
	return v - 1;
}
