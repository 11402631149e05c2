/* clcnn summary: not built yet (see the open issues). */
#include <stdio.h>

#include "commands.h"

int cmd_summary(int argc, char **argv) {
    (void)argc;
    (void)argv;
    fprintf(stderr, "clcnn summary: not built yet\n");
    return 1;
}
