#ifndef MEDIAGW_COPENSSL_H
#define MEDIAGW_COPENSSL_H
// SHA256_Init/Update/Final: deprecated in OpenSSL 3 for the EVP interface, which keeps its state opaque.
// Their context is a plain struct whose state can be saved and resumed, which is what they are used for.
#define OPENSSL_SUPPRESS_DEPRECATED 1
#include <openssl/sha.h>
#endif
