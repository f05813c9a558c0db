/* A constant table grows (a new quirk, a new limit): a new constant, which
 * the module can carry with the code that reads it; not a change of data
 * layout. */
static const int limits[3] = {10, 20, 30};

int limit(unsigned int i)
{
	return i < sizeof(limits) / sizeof(limits[0]) ? limits[i] : -1;
}
