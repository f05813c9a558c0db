/* A debug descriptor (as dev_dbg makes one) names its function with
 * __func__; the function's code moves into a new helper, whose __func__ is
 * longer. The two __func__ arrays belong to different functions: no data
 * object changed size. */
struct desc {
	const char *function;
	const char *format;
};

void emit(const struct desc *d, int v);

int report_failure(int err)
{
	static const struct desc d __attribute__((used)) = { __func__, "error %d" };

	emit(&d, err);
	return err;
}
