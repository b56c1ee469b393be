/* kb_check.h - the CHECK macro the C unit tests share. Each failure prints its
 * place and a message; the test's main ends with
 *     printf("%d passed, %d failed\n", passed, failed); return failed ? 1 : 0;
 * (the closing line CTest logs). Include once, from the test's .c file. */
#ifndef KB_CHECK_H
#define KB_CHECK_H

#include <stdio.h>

static int passed, failed;

#define CHECK(cond, ...)                                                                                              \
    do {                                                                                                              \
        if (cond) {                                                                                                   \
            passed++;                                                                                                 \
        } else {                                                                                                      \
            failed++;                                                                                                 \
            printf("FAIL %s:%d: ", __FILE__, __LINE__);                                                               \
            printf(__VA_ARGS__);                                                                                      \
            printf("\n");                                                                                             \
        }                                                                                                             \
    } while (0)

#endif
