#ifndef MEDIAGW_VIPS_SHIM_H
#define MEDIAGW_VIPS_SHIM_H
// Fixed-argument wrappers around the few (variadic) libvips calls the gateway makes, so Swift can call them.
// Every function returns 0 on success and -1 on failure; mgw_vips_error() then says why.
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct _VipsImage VipsImage;

/// Starts libvips once per process: no operation cache, `concurrency` worker threads.
int mgw_vips_start(const char *program, int concurrency);
/// The last error message (the process's vips error buffer), then cleared.
const char *mgw_vips_error(void);
void mgw_vips_error_clear(void);
/// Whether an operation (a loader such as "heifload_buffer") exists in this libvips.
int mgw_vips_has_operation(const char *nickname);
const char *mgw_vips_version(void);

/// Reads the header of an encoded image (no pixels are decoded); "n-pages" says how many frames it has.
int mgw_vips_header(const void *data, size_t length, VipsImage **out);
/// Opens an encoded image for a full decode, failing on any decode error or warning (libjpeg and libpng only
/// warn about truncated data). `options` are the loader's, e.g. "shrink=4" (JPEG) or "n=-1" (all frames).
int mgw_vips_load(const void *data, size_t length, const char *options, VipsImage **out);

/// Inflates a zlib stream without keeping the output: 0 when it is complete and its checksum right and it
/// inflates to at most `limit` bytes (its size in `*inflated`), -1 for a corrupt or truncated stream,
/// -2 when it inflates to more than `limit`.
int mgw_inflate_check(const void *data, size_t length, size_t limit, size_t *inflated);
/// CRC-32 (as PNG chunks use it).
unsigned long mgw_crc32(const void *data, size_t length);
int mgw_vips_width(VipsImage *image);
int mgw_vips_height(VipsImage *image);
int mgw_vips_bands(VipsImage *image);
int mgw_vips_pages(VipsImage *image);
int mgw_vips_page_height(VipsImage *image);
int mgw_vips_orientation(VipsImage *image);
/// The loader's name ("jpegload_buffer", ...), or "" when unknown.
const char *mgw_vips_loader(VipsImage *image);

/// Pixels from raw RGB bytes (a video frame), copied.
int mgw_vips_from_rgb(const void *pixels, int width, int height, VipsImage **out);
/// Renders the image into memory once, so that later operations do not decode again.
int mgw_vips_materialize(VipsImage *in, VipsImage **out);
/// Lanczos downscale by `scale` (< 1).
int mgw_vips_resize(VipsImage *in, double scale, VipsImage **out);
/// What mgw_vips_thumbnail does, from an opened image (for formats without shrink-on-load).
int mgw_vips_thumbnail_image(VipsImage *in, int width, VipsImage **out);
/// Light sharpening after a downscale.
int mgw_vips_sharpen(VipsImage *in, VipsImage **out);
/// A copy without any metadata: EXIF, XMP, IPTC, ICC, comments, orientation.
int mgw_vips_strip(VipsImage *in, VipsImage **out);
/// 8-bit sRGB with alpha flattened on white: what JPEG needs.
int mgw_vips_flatten_rgb(VipsImage *in, VipsImage **out);
int mgw_vips_save_jpeg(VipsImage *in, int quality, void **buffer, size_t *length);
int mgw_vips_save_webp(VipsImage *in, int quality, void **buffer, size_t *length);
/// A `width` x `height` 8-bit RGB copy of the image's pixels (for placeholders), malloc'ed.
int mgw_vips_rgb_pixels(VipsImage *in, int width, int height, unsigned char **pixels, size_t *length);

void mgw_vips_unref(VipsImage *image);
void mgw_vips_free(void *buffer);

#ifdef __cplusplus
}
#endif
#endif
