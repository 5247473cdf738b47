import CFFmpeg
import CFFmpegShim
import Foundation
import MediaCore

/// An FFmpeg error code as text.
func ffmpegError(_ code: Int32) -> String {
    var buffer = [CChar](repeating: 0, count: 256)
    mgw_av_error_string(code, &buffer, buffer.count)
    return String(cString: buffer)
}

/// Throws `code` with `what` and FFmpeg's reason when `rc` is negative; returns it otherwise.
@discardableResult
func check(_ rc: Int32, _ what: String, _ code: ProcessingError.Code = .invalidMedia) throws(ProcessingError) -> Int32 {
    guard rc >= 0 else { throw ProcessingError(code, "\(what): \(ffmpegError(rc))") }
    return rc
}

let eagain = mgw_averror_eagain()
let eof = mgw_averror_eof()

/// Microseconds on FFmpeg's monotonic clock at which `deadline` falls.
func monotonicMicroseconds(of deadline: Date) -> Int64 {
    av_gettime_relative() + Int64(max(0, deadline.timeIntervalSinceNow) * 1_000_000)
}

/// An owned AVPacket.
final class Packet {
    var pointer: UnsafeMutablePointer<AVPacket>?
    init() throws(ProcessingError) {
        pointer = av_packet_alloc()
        guard pointer != nil else { throw ProcessingError(.internal, "out of memory") }
    }
    deinit { av_packet_free(&pointer) }
}

/// An owned AVFrame.
final class Frame {
    var pointer: UnsafeMutablePointer<AVFrame>?
    init() throws(ProcessingError) {
        pointer = av_frame_alloc()
        guard pointer != nil else { throw ProcessingError(.internal, "out of memory") }
    }
    deinit { av_frame_free(&pointer) }
}

/// A demuxer over bytes in memory, limited to an allow-list of demuxers, with a deadline.
final class Input {
    var context: UnsafeMutablePointer<AVFormatContext>?

    init(_ bytes: UnsafeRawBufferPointer, formats: String, deadline: Date) throws(ProcessingError) {
        let pastDeadline = ProcessingError(.timedOut, "processing took longer than allowed")
        guard Date() < deadline else { throw pastDeadline }
        var context: UnsafeMutablePointer<AVFormatContext>?
        let rc = mgw_open_memory_input(
            bytes.baseAddress?.assumingMemoryBound(to: UInt8.self),
            bytes.count,
            formats,
            5 << 20,
            monotonicMicroseconds(of: deadline),
            &context
        )
        guard rc >= 0, let context else {
            // the interrupt callback stops FFmpeg at the deadline: that failure is the deadline's, not the file's
            guard Date() < deadline else { throw pastDeadline }
            throw ProcessingError(.invalidMedia, "not a readable \(formats.contains("mp3") ? "audio" : "video") file: \(ffmpegError(rc))")
        }
        self.context = context
        let probed = avformat_find_stream_info(context, nil)
        // an interrupted probe leaves streams half described: say it was the deadline
        guard Date() < deadline else { throw pastDeadline }
        try check(probed, "reading the streams")
    }

    deinit { mgw_close_input(&context) }

    var formatName: String { String(cString: mgw_format_name(context)) }

    func stream(_ index: Int32) -> UnsafeMutablePointer<AVStream> { context!.pointee.streams[Int(index)]! }

    /// The best stream of `type` and its decoder, or `nil` when there is none.
    func bestStream(_ type: AVMediaType) -> (Int32, UnsafePointer<AVCodec>)? {
        var decoder: UnsafePointer<AVCodec>?
        let index = av_find_best_stream(context, type, -1, -1, &decoder, 0)
        guard index >= 0, let decoder else { return nil }
        return (index, decoder)
    }

    var durationMilliseconds: Int64 {
        guard let context, context.pointee.duration != mgw_av_nopts_value(), context.pointee.duration > 0 else { return 0 }
        return context.pointee.duration / 1000
    }
}

/// A decoder for one stream, strict: a corrupt packet fails the job instead of being concealed.
final class Decoder {
    var context: UnsafeMutablePointer<AVCodecContext>?
    let streamIndex: Int32

    init(_ input: Input, stream index: Int32, codec: UnsafePointer<AVCodec>) throws(ProcessingError) {
        streamIndex = index
        context = avcodec_alloc_context3(codec)
        guard let context else { throw ProcessingError(.internal, "out of memory") }
        try check(avcodec_parameters_to_context(context, input.stream(index).pointee.codecpar), "reading codec parameters")
        context.pointee.thread_count = 1
        context.pointee.pkt_timebase = input.stream(index).pointee.time_base
        context.pointee.err_recognition |= AV_EF_CRCCHECK | AV_EF_BITSTREAM | AV_EF_BUFFER | AV_EF_EXPLODE
        try check(avcodec_open2(context, codec, nil), "opening the \(String(cString: codec.pointee.name)) decoder", .unsupported)
    }

    deinit { avcodec_free_context(&context) }

    /// Sends a packet (nil to flush) and hands every decoded frame to `body`.
    func decode(
        _ packet: UnsafeMutablePointer<AVPacket>?,
        into frame: Frame,
        _ body: (UnsafeMutablePointer<AVFrame>) throws(ProcessingError) -> Void
    ) throws(ProcessingError) {
        let sent = avcodec_send_packet(context, packet)
        if sent < 0 && sent != eof { try check(sent, "corrupt data") }
        while true {
            let rc = avcodec_receive_frame(context, frame.pointer)
            if rc == eagain || rc == eof { return }
            try check(rc, "corrupt data")
            frame.pointer!.pointee.pts = frame.pointer!.pointee.best_effort_timestamp
            try body(frame.pointer!)
            av_frame_unref(frame.pointer)
        }
    }
}

/// A filter graph from one buffer source to one buffer sink.
final class FilterGraph {
    var graph: UnsafeMutablePointer<AVFilterGraph>?
    var source: UnsafeMutablePointer<AVFilterContext>?
    var sink: UnsafeMutablePointer<AVFilterContext>?

    init(video: Bool, sourceArguments: String, description: String) throws(ProcessingError) {
        graph = avfilter_graph_alloc()
        guard let graph else { throw ProcessingError(.internal, "out of memory") }
        graph.pointee.nb_threads = 1
        let sourceFilter = avfilter_get_by_name(video ? "buffer" : "abuffer")
        let sinkFilter = avfilter_get_by_name(video ? "buffersink" : "abuffersink")
        try check(avfilter_graph_create_filter(&source, sourceFilter, "in", sourceArguments, nil, graph), "filter source", .internal)
        try check(avfilter_graph_create_filter(&sink, sinkFilter, "out", nil, nil, graph), "filter sink", .internal)
        var outputs = avfilter_inout_alloc()
        var inputs = avfilter_inout_alloc()
        defer {
            avfilter_inout_free(&outputs)
            avfilter_inout_free(&inputs)
        }
        outputs!.pointee.name = av_strdup("in")
        outputs!.pointee.filter_ctx = source
        outputs!.pointee.pad_idx = 0
        outputs!.pointee.next = nil
        inputs!.pointee.name = av_strdup("out")
        inputs!.pointee.filter_ctx = sink
        inputs!.pointee.pad_idx = 0
        inputs!.pointee.next = nil
        try check(avfilter_graph_parse_ptr(graph, description, &inputs, &outputs, nil), "filter graph \(description)", .internal)
        try check(avfilter_graph_config(graph, nil), "filter graph \(description)", .internal)
    }

    deinit { avfilter_graph_free(&graph) }

    var timeBase: AVRational { av_buffersink_get_time_base(sink) }
    var frameRate: AVRational { av_buffersink_get_frame_rate(sink) }
    var width: Int32 { av_buffersink_get_w(sink) }
    var height: Int32 { av_buffersink_get_h(sink) }

    /// Pushes a frame (nil at the end) and hands every filtered frame to `body`.
    func filter(
        _ frame: UnsafeMutablePointer<AVFrame>?,
        into output: Frame,
        _ body: (UnsafeMutablePointer<AVFrame>) throws(ProcessingError) -> Void
    ) throws(ProcessingError) {
        try check(av_buffersrc_add_frame_flags(source, frame, 0), "filtering", .internal)
        while true {
            let rc = av_buffersink_get_frame(sink, output.pointer)
            if rc == eagain || rc == eof { return }
            try check(rc, "filtering", .internal)
            try body(output.pointer!)
            av_frame_unref(output.pointer)
        }
    }
}

/// An encoder feeding one stream of an output.
final class Encoder {
    var context: UnsafeMutablePointer<AVCodecContext>?
    let stream: UnsafeMutablePointer<AVStream>

    init(
        codecName: String,
        output: Output,
        configure: (UnsafeMutablePointer<AVCodecContext>) throws(ProcessingError) -> Void,
        options: [String: String]
    ) throws(ProcessingError) {
        guard let codec = avcodec_find_encoder_by_name(codecName) else {
            throw ProcessingError(.internal, "this FFmpeg has no \(codecName) encoder")
        }
        context = avcodec_alloc_context3(codec)
        guard let context, let stream = avformat_new_stream(output.context, nil) else { throw ProcessingError(.internal, "out of memory") }
        self.stream = stream
        try configure(context)
        if output.context!.pointee.oformat.pointee.flags & AVFMT_GLOBALHEADER != 0 {
            context.pointee.flags |= AV_CODEC_FLAG_GLOBAL_HEADER
        }
        var dictionary: OpaquePointer?
        for (key, value) in options { av_dict_set(&dictionary, key, value, 0) }
        defer { av_dict_free(&dictionary) }
        try check(avcodec_open2(context, codec, &dictionary), "opening the \(codecName) encoder", .internal)
        try check(avcodec_parameters_from_context(stream.pointee.codecpar, context), "encoder parameters", .internal)
        stream.pointee.time_base = context.pointee.time_base
    }

    deinit { avcodec_free_context(&context) }

    /// Encodes a frame (nil to flush) and writes every packet to `output`.
    func encode(_ frame: UnsafeMutablePointer<AVFrame>?, to output: Output, packet: Packet) throws(ProcessingError) {
        let sent = avcodec_send_frame(context, frame)
        if sent < 0 && sent != eof { try check(sent, "encoding", .internal) }
        while true {
            let rc = avcodec_receive_packet(context, packet.pointer)
            if rc == eagain || rc == eof { return }
            try check(rc, "encoding", .internal)
            packet.pointer!.pointee.stream_index = stream.pointee.index
            av_packet_rescale_ts(packet.pointer, context!.pointee.time_base, stream.pointee.time_base)
            try check(av_interleaved_write_frame(output.context, packet.pointer), "writing", .internal)
        }
    }
}

/// An MP4 file being written (fast start: the index is moved to the front when it is finished).
final class Output {
    var context: UnsafeMutablePointer<AVFormatContext>?
    let path: String
    private var opened = false
    private var deadline: Int64

    init(path: String, deadline: Date) throws(ProcessingError) {
        self.path = path
        self.deadline = monotonicMicroseconds(of: deadline)
        try check(avformat_alloc_output_context2(&context, nil, "mp4", path), "creating the output", .internal)
        mgw_set_output_deadline(context, &self.deadline)
    }

    func start() throws(ProcessingError) {
        try check(avio_open(&context!.pointee.pb, path, AVIO_FLAG_WRITE), "opening \(path)", .internal)
        opened = true
        var options: OpaquePointer?
        av_dict_set(&options, "movflags", "+faststart", 0)
        defer { av_dict_free(&options) }
        try check(avformat_write_header(context, &options), "writing the header", .internal)
    }

    func finish() throws(ProcessingError) {
        try check(av_write_trailer(context), "finishing the file", .internal)
    }

    deinit {
        if opened { avio_closep(&context!.pointee.pb) }
        avformat_free_context(context)
    }
}

/// Converts frames to packed RGB (for poster frames).
func rgbFrame(_ frame: UnsafeMutablePointer<AVFrame>) throws(ProcessingError) -> RGBFrame {
    let width = frame.pointee.width
    let height = frame.pointee.height
    guard width > 0, height > 0 else { throw ProcessingError(.invalidMedia, "an empty frame") }
    guard
        let scaler = sws_getContext(
            width,
            height,
            AVPixelFormat(rawValue: frame.pointee.format),
            width,
            height,
            AV_PIX_FMT_RGB24,
            SWS_BILINEAR,
            nil,
            nil,
            nil
        )
    else { throw ProcessingError(.internal, "no scaler for this frame") }
    defer { sws_freeContext(scaler) }
    // swscale writes whole SIMD blocks: give every row an aligned stride and the buffer room to spare
    let stride = (Int(width) * 3 + 63) / 64 * 64
    var padded = [UInt8](repeating: 0, count: stride * Int(height) + 64)
    let rc = padded.withUnsafeMutableBufferPointer { buffer -> Int32 in
        var destination: [UnsafeMutablePointer<UInt8>?] = [buffer.baseAddress, nil, nil, nil]
        var strides: [Int32] = [Int32(stride), 0, 0, 0]
        return withUnsafePointer(to: frame.pointee.data) { data in
            data.withMemoryRebound(to: UnsafePointer<UInt8>?.self, capacity: 8) { planes in
                withUnsafePointer(to: frame.pointee.linesize) { linesize in
                    linesize.withMemoryRebound(to: Int32.self, capacity: 8) { lines in
                        sws_scale(scaler, planes, lines, 0, height, &destination, &strides)
                    }
                }
            }
        }
    }
    guard rc == height else { throw ProcessingError(.internal, "frame conversion failed") }
    var pixels = [UInt8]()
    pixels.reserveCapacity(Int(width) * Int(height) * 3)
    for row in 0..<Int(height) {
        pixels += padded[(row * stride)..<(row * stride + Int(width) * 3)]
    }
    return RGBFrame(width: Int(width), height: Int(height), pixels: pixels)
}
