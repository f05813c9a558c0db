/* A runtime constant as Linux 6.11+ writes it (asm/runtime-const.h): an
 * immediate that the kernel patches at boot from runtime_ptr_LIMIT. */
unsigned long LIMIT;

#define runtime_const_ptr(sym) ({                               \
	unsigned long __ret;                                    \
	asm("mov %1,%0\n1:\n"                                   \
	    ".pushsection runtime_ptr_" #sym ",\"a\"\n\t"       \
	    ".long 1b - %c2 - .\n"                              \
	    ".popsection"                                       \
	    : "=r" (__ret)                                      \
	    : "i" ((unsigned long)0x0123456789abcdefull),       \
	      "i" (sizeof(long)));                              \
	__ret; })

int below_limit(unsigned long x)
{
	return x < runtime_const_ptr(LIMIT);
}
