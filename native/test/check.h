/* The one assertion of libnffi's C tests: counts, prints what failed, goes on. */
#ifndef NFFI_TEST_CHECK_H
#define NFFI_TEST_CHECK_H

#include <stdio.h>

extern int passed, failed;     /* defined by each test program, printed by its main */

#define CHECK(c)                                                              \
    do {                                                                      \
        if (c)                                                                \
            passed++;                                                         \
        else {                                                                \
            failed++;                                                         \
            fprintf(stderr, "FAIL %s:%d: %s\n", __FILE__, __LINE__, #c);      \
        }                                                                     \
    } while (0)

#endif
