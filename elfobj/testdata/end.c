/* A loop over a constant table refers to the address just past its end
 * (the compiler's end pointer), where no symbol starts. */
static const short ids[7] = {3, 5, 7, 11, 13, 17, 19};

int known(short v)
{
	for (const short *p = ids; p < ids + sizeof(ids) / sizeof(ids[0]); p++)
		if (*p == v)
			return 1;
	return 0;
}
