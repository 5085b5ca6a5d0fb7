/* robust_mod — a shared module that robust_scn dlopen()s and dlclose()s in
 * a loop, so that a freeze finds a thread inside the loader. */
int robust_mod_value(void);
int robust_mod_value(void)
{
	return 42;
}
