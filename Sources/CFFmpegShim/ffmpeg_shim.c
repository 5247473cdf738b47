#include "ffmpeg_shim.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <libavformat/avformat.h>
#include <libavutil/display.h>
#include <libavutil/time.h>

int mgw_averror_eof(void) { return AVERROR_EOF; }
int mgw_averror_eagain(void) { return AVERROR(EAGAIN); }
int mgw_averror_invaliddata(void) { return AVERROR_INVALIDDATA; }
int64_t mgw_av_nopts_value(void) { return AV_NOPTS_VALUE; }

void mgw_av_error_string(int code, char *buffer, size_t size) {
    if (av_strerror(code, buffer, size) < 0) snprintf(buffer, size, "error %d", code);
}

typedef struct {
    const uint8_t *data;
    size_t size;
    size_t position;
    int64_t deadline_us;
} MemoryInput;

static int read_memory(void *opaque, uint8_t *buffer, int wanted) {
    MemoryInput *input = opaque;
    if (input->position >= input->size) return AVERROR_EOF;
    size_t count = input->size - input->position;
    if (count > (size_t)wanted) count = (size_t)wanted;
    memcpy(buffer, input->data + input->position, count);
    input->position += count;
    return (int)count;
}

static int64_t seek_memory(void *opaque, int64_t offset, int whence) {
    MemoryInput *input = opaque;
    int64_t target;
    switch (whence & ~AVSEEK_FORCE) {
    case AVSEEK_SIZE: return (int64_t)input->size;
    case SEEK_SET: target = offset; break;
    case SEEK_CUR: target = (int64_t)input->position + offset; break;
    case SEEK_END: target = (int64_t)input->size + offset; break;
    default: return AVERROR(EINVAL);
    }
    if (target < 0 || target > (int64_t)input->size) return AVERROR(EINVAL);
    input->position = (size_t)target;
    return target;
}

static int past_deadline(void *opaque) {
    const int64_t *deadline = opaque;
    return *deadline > 0 && av_gettime_relative() > *deadline;
}

int mgw_open_memory_input(const uint8_t *data, size_t size, const char *allowed_formats, int64_t probe_bytes,
                          int64_t deadline_us, AVFormatContext **out) {
    *out = NULL;
    MemoryInput *input = calloc(1, sizeof(MemoryInput));
    if (!input) return AVERROR(ENOMEM);
    input->data = data;
    input->size = size;
    input->deadline_us = deadline_us;
    const int buffer_size = 64 * 1024;
    uint8_t *buffer = av_malloc(buffer_size);
    AVIOContext *io = buffer ? avio_alloc_context(buffer, buffer_size, 0, input, read_memory, NULL, seek_memory) : NULL;
    AVFormatContext *context = io ? avformat_alloc_context() : NULL;
    if (!context) {
        if (io) avio_context_free(&io); else av_free(buffer);
        free(input);
        return AVERROR(ENOMEM);
    }
    context->pb = io;
    context->flags |= AVFMT_FLAG_CUSTOM_IO;
    context->probesize = probe_bytes;
    context->format_probesize = (int)(probe_bytes < 1048576 ? probe_bytes : 1048576);
    context->max_analyze_duration = 5 * AV_TIME_BASE;
    context->interrupt_callback.callback = past_deadline;
    context->interrupt_callback.opaque = &input->deadline_us;
    AVDictionary *options = NULL;
    av_dict_set(&options, "format_whitelist", allowed_formats, 0);
    av_dict_set(&options, "protocol_whitelist", "none", 0);
    // nothing an input names is ever opened: no external references (mov), no playlists or chained inputs
    av_dict_set(&options, "enable_drefs", "0", 0);
    av_dict_set(&options, "use_absolute_path", "0", 0);
    int rc = avformat_open_input(&context, NULL, NULL, &options);
    av_dict_free(&options);
    if (rc < 0) {
        // avformat_open_input frees the context on failure, not our custom I/O
        avio_context_free(&io);
        free(input);
        return rc;
    }
    *out = context;
    return 0;
}

void mgw_close_input(AVFormatContext **context) {
    if (!context || !*context) return;
    AVIOContext *io = (*context)->pb;
    MemoryInput *input = io ? io->opaque : NULL;
    avformat_close_input(context);
    if (io) {
        av_freep(&io->buffer);
        avio_context_free(&io);
    }
    free(input);
}

void mgw_set_input_deadline(AVFormatContext *context, int64_t deadline_us) {
    MemoryInput *input = context->pb ? context->pb->opaque : NULL;
    if (input) input->deadline_us = deadline_us;
}

void mgw_set_output_deadline(AVFormatContext *context, int64_t *deadline_us) {
    context->interrupt_callback.callback = past_deadline;
    context->interrupt_callback.opaque = deadline_us;
}

double mgw_stream_rotation(const AVStream *stream) {
    size_t size = 0;
    const uint8_t *matrix = av_stream_get_side_data(stream, AV_PKT_DATA_DISPLAYMATRIX, &size);
    if (!matrix || size < 9 * sizeof(int32_t)) return 0;
    double rotation = av_display_rotation_get((const int32_t *)matrix);
    return rotation != rotation ? 0 : rotation;  // NaN: no rotation
}

const char *mgw_format_name(const AVFormatContext *context) {
    return context && context->iformat ? context->iformat->name : "";
}
