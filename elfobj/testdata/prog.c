/* A small program with functions, data, strings, statics and a jump table,
 * compiled at test time with kernel-like flags. */
int printf(const char *fmt, ...);

static int counter;
int table[8] = {1, 2, 3, 4, 5, 6, 7, 8};
const char *names[] = {"zero", "one", "two"};

static __attribute__((noinline)) int helper(int x)
{
	static int calls;
	calls++;
	return x * 3 + calls;
}

int classify(int x)
{
	switch (x) {
	case 0: return helper(10);
	case 1: return table[2] + 7;
	case 2: return table[3] * 11;
	case 3: return printf("three %d\n", x);
	case 4: return helper(x) - 1;
	case 5: return 99;
	case 6: return table[x];
	default: return -1;
	}
}

int main(void)
{
	int sum = 0;
	for (int i = 0; i < 8; i++)
		sum += classify(i);
	counter += sum;
	printf("%s %d\n", names[counter % 3], sum);
	return 0;
}
