/* Shifts checked by UBSAN (Debian's Linux 7 has CONFIG_UBSAN_SHIFT): each
 * check has a record in its own .data..Lubsan_data section, and all records
 * point at the one file name string. */
int shift_a(int x, int n) { return x << n; }
int shift_b(int x, int n) { return x >> n; }
