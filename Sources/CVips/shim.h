#ifndef MEDIAGW_CVIPS_H
#define MEDIAGW_CVIPS_H
#include <vips/vips.h>
#endif
