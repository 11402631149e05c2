/* clcnn: convolutional neural networks on any OpenCL device. Includes every public header. */
#ifndef CLCNN_H
#define CLCNN_H

#include "status.h"
#include "device.h"
#include "tensor.h"
#include "ops.h"
#include "nn.h"
#include "data.h"
#include "tune.h"

#endif
