#ifndef MEDIAGW_FFMPEG_SHIM_H
#define MEDIAGW_FFMPEG_SHIM_H
// What Swift cannot reach in FFmpeg (function-like macros) and what must be C (I/O and interrupt callbacks).
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct AVFormatContext AVFormatContext;
typedef struct AVStream AVStream;

int mgw_averror_eof(void);
int mgw_averror_eagain(void);
int mgw_averror_invaliddata(void);
int64_t mgw_av_nopts_value(void);
/// A readable message for an FFmpeg error code, into `buffer`.
void mgw_av_error_string(int code, char *buffer, size_t size);

/// Opens `data` (which must outlive the context) for demuxing through a read/seek AVIOContext over memory:
/// FFmpeg never sees a path or a URL, so no protocol (file, http, concat, hls, data) can be reached.
/// Only the demuxers named in `allowed_formats` (comma-separated) are probed, with at most
/// `probe_bytes` read to guess, and the open is abandoned after `deadline_us` (av_gettime_relative()).
/// Returns 0 or a negative AVERROR; on success, mgw_close_input frees everything.
int mgw_open_memory_input(const uint8_t *data, size_t size, const char *allowed_formats, int64_t probe_bytes,
                          int64_t deadline_us, AVFormatContext **out);
void mgw_close_input(AVFormatContext **context);
/// Moves the deadline of an input opened above (for the decoding that follows the open).
void mgw_set_input_deadline(AVFormatContext *context, int64_t deadline_us);
/// Installs the same deadline on an output context.
void mgw_set_output_deadline(AVFormatContext *context, int64_t *deadline_us);

/// Rotation of a video stream in degrees, counter-clockwise, from its display matrix (0 when none).
double mgw_stream_rotation(const AVStream *stream);

/// The name of an AVFormatContext's input format ("mov,mp4,m4a,3gp,3g2,mj2", ...).
const char *mgw_format_name(const AVFormatContext *context);

#ifdef __cplusplus
}
#endif
#endif
