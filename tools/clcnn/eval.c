/* clcnn eval: not built yet (see the open issues). */
#include <stdio.h>

#include "commands.h"

int cmd_eval(int argc, char **argv) {
    (void)argc;
    (void)argv;
    fprintf(stderr, "clcnn eval: not built yet\n");
    return 1;
}
