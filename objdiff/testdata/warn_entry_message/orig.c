/* Linux 7's WARN on x86 keeps its message in the __bug_table entry that the
 * code passes, not in the code: a changed message changes the function. */
void warn_trap(void *entry);

#define WARN_MSG(msg) asm volatile(						\
	"1:\tlea 2f(%%rip), %%rdi\n\t"						\
	"call warn_trap\n"							\
	".pushsection .rodata.str1.1,\"aMS\",@progbits,1\n"			\
	"3:\t.asciz \"" msg "\"\n"						\
	".popsection\n"								\
	".pushsection __bug_table,\"aw\"\n"					\
	"2:\t.long 1b - .\n\t.long 3b - .\n\t.short %c0\n\t.short 0\n"		\
	".popsection" : : "i" (__LINE__) : "rdi", "memory")

int checked(int v)
{
	if (v < 0)
		WARN_MSG("negative value");
	return v;
}

int also_checked(int v)
{
	if (v > 100)
		WARN_MSG("value too large");
	return v - 1;
}
