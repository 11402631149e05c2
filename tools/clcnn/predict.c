/* clcnn predict: not built yet (see the open issues). */
#include <stdio.h>

#include "commands.h"

int cmd_predict(int argc, char **argv) {
    (void)argc;
    (void)argv;
    fprintf(stderr, "clcnn predict: not built yet\n");
    return 1;
}
