#ifndef MEDIAGW_CRADOS_SHIM_H
#define MEDIAGW_CRADOS_SHIM_H
// librados-dev ships no pkg-config file: the module map links `rados` by name.
#include <rados/librados.h>
#endif
