/* clcnn train: not built yet (see the open issues). */
#include <stdio.h>

#include "commands.h"

int cmd_train(int argc, char **argv) {
    (void)argc;
    (void)argv;
    fprintf(stderr, "clcnn train: not built yet\n");
    return 1;
}
