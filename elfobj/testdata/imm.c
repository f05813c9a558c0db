/* A static flag read with an immediate operand after the PC-relative
 * field (cmpb $0, flag(%rip)), as WARN_ONCE's __already_done is. */
static _Bool flag __attribute__((section(".data.once")));
static int counter;

int test_and_set(void)
{
	if (flag)
		return 1;
	flag = 1;
	counter++;
	return 0;
}

int read_counter(void)
{
	return counter;
}
