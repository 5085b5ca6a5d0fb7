/* The module mx_proc dlopens: a function and a TLS variable. */
__thread int mx_dl_tls = 1234;
int mx_dl_value(int x) { return x * 3 + mx_dl_tls; }
