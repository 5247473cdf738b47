#include "vips_shim.h"

#include <string.h>
#include <vips/vips.h>
#include <zlib.h>

static char last_error[2048];

int mgw_vips_start(const char *program, int concurrency) {
    if (VIPS_INIT(program)) return -1;
    // ImageMagick and the other loaders libvips marks untrusted never see an upload
    vips_block_untrusted_set(TRUE);
    vips_cache_set_max(0);
    vips_cache_set_max_mem(0);
    vips_concurrency_set(concurrency > 0 ? concurrency : 1);
    return 0;
}

const char *mgw_vips_error(void) {
    const char *text = vips_error_buffer();
    strncpy(last_error, text ? text : "", sizeof(last_error) - 1);
    last_error[sizeof(last_error) - 1] = 0;
    vips_error_clear();
    return last_error;
}

void mgw_vips_error_clear(void) { vips_error_clear(); }

int mgw_vips_has_operation(const char *nickname) {
    return vips_type_find("VipsOperation", nickname) != 0;
}

const char *mgw_vips_version(void) { return vips_version_string(); }

int mgw_vips_header(const void *data, size_t length, VipsImage **out) {
    *out = vips_image_new_from_buffer(data, length, "", "fail_on", VIPS_FAIL_ON_ERROR, NULL);
    return *out ? 0 : -1;
}

int mgw_vips_load(const void *data, size_t length, const char *options, VipsImage **out) {
    *out = vips_image_new_from_buffer(data, length, options, "access", VIPS_ACCESS_RANDOM, "fail_on", VIPS_FAIL_ON_WARNING, NULL);
    return *out ? 0 : -1;
}

int mgw_inflate_check(const void *data, size_t length, size_t limit, size_t *inflated) {
    z_stream stream;
    memset(&stream, 0, sizeof(stream));
    if (inflateInit(&stream) != Z_OK) return -1;
    unsigned char scratch[65536];
    stream.next_in = (Bytef *)data;
    stream.avail_in = (uInt)length;
    size_t total = 0;
    int rc;
    do {
        stream.next_out = scratch;
        stream.avail_out = sizeof(scratch);
        rc = inflate(&stream, Z_NO_FLUSH);
        total += sizeof(scratch) - stream.avail_out;
        if (total > limit) { inflateEnd(&stream); return -2; }
    } while (rc == Z_OK && (stream.avail_in > 0 || stream.avail_out == 0));
    inflateEnd(&stream);
    *inflated = total;
    return rc == Z_STREAM_END ? 0 : -1;
}

int mgw_vips_width(VipsImage *image) { return vips_image_get_width(image); }
int mgw_vips_height(VipsImage *image) { return vips_image_get_height(image); }
int mgw_vips_bands(VipsImage *image) { return vips_image_get_bands(image); }
int mgw_vips_pages(VipsImage *image) { return vips_image_get_n_pages(image); }
int mgw_vips_page_height(VipsImage *image) { return vips_image_get_page_height(image); }
int mgw_vips_orientation(VipsImage *image) { return vips_image_get_orientation(image); }

const char *mgw_vips_loader(VipsImage *image) {
    const char *name = NULL;
    if (vips_image_get_typeof(image, VIPS_META_LOADER) && !vips_image_get_string(image, VIPS_META_LOADER, &name)) return name;
    return "";
}

int mgw_vips_from_rgb(const void *pixels, int width, int height, VipsImage **out) {
    *out = vips_image_new_from_memory_copy(pixels, (size_t)width * height * 3, width, height, 3, VIPS_FORMAT_UCHAR);
    if (!*out) return -1;
    (*out)->Type = VIPS_INTERPRETATION_sRGB;
    return 0;
}

int mgw_vips_materialize(VipsImage *in, VipsImage **out) {
    *out = vips_image_copy_memory(in);
    return *out ? 0 : -1;
}

int mgw_vips_resize(VipsImage *in, double scale, VipsImage **out) {
    return vips_resize(in, out, scale, "kernel", VIPS_KERNEL_LANCZOS3, NULL);
}

int mgw_vips_thumbnail_image(VipsImage *in, int width, VipsImage **out) {
    // a colour-managed transform to sRGB only when there is something to transform: an embedded profile,
    // or CMYK; an untagged RGB image is taken as sRGB already (the transform of every pixel through lcms
    // cost a 640 px photo as much as its decode, for no change)
    gboolean managed = vips_image_get_typeof(in, VIPS_META_ICC_NAME) != 0 || vips_image_get_interpretation(in) == VIPS_INTERPRETATION_CMYK;
    if (managed) {
        return vips_thumbnail_image(in, out, width, "height", VIPS_MAX_COORD, "size", VIPS_SIZE_DOWN, "export_profile", "srgb", NULL);
    }
    return vips_thumbnail_image(in, out, width, "height", VIPS_MAX_COORD, "size", VIPS_SIZE_DOWN, NULL);
}

int mgw_vips_sharpen(VipsImage *in, VipsImage **out) {
    // mild: enough to restore edges softened by the downscale, never halos
    return vips_sharpen(in, out, "sigma", 0.5, "x1", 2.0, "m2", 1.0, NULL);
}

static int is_metadata(const char *name) {
    static const char *prefixes[] = {"exif-", "xmp-", "iptc-", "icc-profile", "png-comment", "gif-comment", "jpeg-comment",
                                     "photoshop", "orientation", "heif-", "resolution-unit", "ipct-", NULL};
    for (int i = 0; prefixes[i]; i++) {
        if (strncmp(name, prefixes[i], strlen(prefixes[i])) == 0) return 1;
    }
    return 0;
}

int mgw_vips_strip(VipsImage *in, VipsImage **out) {
    // libvips 8.14 ignores "strip" when saving WebP: remove the fields themselves
    if (vips_copy(in, out, NULL)) return -1;
    gchar **fields = vips_image_get_fields(*out);
    for (int i = 0; fields[i]; i++) {
        if (is_metadata(fields[i])) vips_image_remove(*out, fields[i]);
    }
    g_strfreev(fields);
    return 0;
}

int mgw_vips_flatten_rgb(VipsImage *in, VipsImage **out) {
    VipsImage *step = in;
    VipsImage *flat = NULL, *srgb = NULL;
    g_object_ref(step);
    if (vips_image_hasalpha(step)) {
        double white[] = {255, 255, 255};
        if (vips_flatten(step, &flat, "background", vips_array_double_new(white, 3), NULL)) { g_object_unref(step); return -1; }
        g_object_unref(step);
        step = flat;
    }
    if (vips_colourspace(step, &srgb, VIPS_INTERPRETATION_sRGB, NULL)) { g_object_unref(step); return -1; }
    g_object_unref(step);
    if (vips_cast_uchar(srgb, out, NULL)) { g_object_unref(srgb); return -1; }
    g_object_unref(srgb);
    return 0;
}

int mgw_vips_save_jpeg(VipsImage *in, int quality, void **buffer, size_t *length) {
    return vips_jpegsave_buffer(in, buffer, length, "Q", quality, "strip", TRUE, "optimize_coding", TRUE,
                                "interlace", TRUE, "subsample_mode", VIPS_FOREIGN_SUBSAMPLE_AUTO, NULL);
}

int mgw_vips_save_webp(VipsImage *in, int quality, void **buffer, size_t *length) {
    return vips_webpsave_buffer(in, buffer, length, "Q", quality, "strip", TRUE, "effort", 4, NULL);
}

int mgw_vips_rgb_pixels(VipsImage *in, int width, int height, unsigned char **pixels, size_t *length) {
    VipsImage *small = NULL, *rgb = NULL;
    if (vips_thumbnail_image(in, &small, width, "height", height, "size", VIPS_SIZE_FORCE, NULL)) return -1;
    if (mgw_vips_flatten_rgb(small, &rgb)) { g_object_unref(small); return -1; }
    g_object_unref(small);
    VipsImage *three = NULL;
    if (vips_image_get_bands(rgb) > 3) {
        if (vips_extract_band(rgb, &three, 0, "n", 3, NULL)) { g_object_unref(rgb); return -1; }
        g_object_unref(rgb);
    } else if (vips_image_get_bands(rgb) < 3) {
        if (vips_colourspace(rgb, &three, VIPS_INTERPRETATION_sRGB, NULL)) { g_object_unref(rgb); return -1; }
        g_object_unref(rgb);
    } else {
        three = rgb;
    }
    *pixels = vips_image_write_to_memory(three, length);
    g_object_unref(three);
    return *pixels ? 0 : -1;
}

void mgw_vips_unref(VipsImage *image) {
    if (image) g_object_unref(image);
}

void mgw_vips_free(void *buffer) { g_free(buffer); }

unsigned long mgw_crc32(const void *data, size_t length) {
    return crc32(crc32(0L, Z_NULL, 0), (const Bytef *)data, (uInt)length);
}
