/* status_mem.h — the memory part of `nuwa status` (status_mem.c). */
#ifndef NUWA_CLI_STATUS_MEM_H
#define NUWA_CLI_STATUS_MEM_H

#include <sys/types.h>

/* Print the process report text (from the process pid) with its memory and
 * its children's: lines appended (text), a "memory" member (json). */
void status_mem_print(const char *text, pid_t pid, int json);

#endif
