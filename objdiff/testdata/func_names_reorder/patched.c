/* Inlined helpers name themselves with __func__ in debug descriptors (as
 * dev_dbg does); the patch swaps the order of their calls, so the compiler
 * numbers and orders the __func__ arrays differently. Each
 * existing __func__ holds the same text as before: none of them changed. */
struct desc {
	const char *function;
	const char *format;
};

void emit(const struct desc *d, int v);

#define dbg(v) do {								\
	static const struct desc d __attribute__((used)) = { __func__, "v=%d" };	\
	emit(&d, v);								\
} while (0)

static inline void first_helper(int v) { dbg(v); }
static inline void second_helper_with_a_long_name(int v) { dbg(v); }

int dispatch(int v)
{
	if (!(v & 1))
		second_helper_with_a_long_name(v);
	else
		first_helper(v);
	return v;
}
