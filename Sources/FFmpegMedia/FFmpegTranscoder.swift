import CFFmpeg
import CFFmpegShim
import Foundation
import MediaConcurrency
import MediaCore

/// The ``Transcoder`` on the FFmpeg libraries (libavformat, libavcodec, libavfilter, libswscale), called from
/// Swift: no `ffmpeg` process. Inputs are read from memory through a custom I/O context, by allow-listed
/// demuxers only; decoding is strict (corrupt data fails the job); video becomes H.264 + AAC in MP4 with
/// the index at the front, audio AAC-LC in M4A. The libraries block their caller: each call runs on a
/// thread of its own, never on an event loop or the cooperative pool.
public struct FFmpegTranscoder: Transcoder {
    /// Demuxers that may read an upload: the containers the upload sniffing accepts, nothing else.
    static let videoFormats = "mov,mp4,m4a,3gp,3g2,mj2,matroska,webm"
    static let audioFormats = "mp3,aac,mov,mp4,m4a,3gp,3g2,mj2,ogg,flac,wav"

    public init() {
        av_log_set_level(AV_LOG_QUIET)
    }

    public var versions: [String: String] {
        [
            "ffmpeg": String(cString: av_version_info()),
            "libx264": avcodec_find_encoder_by_name("libx264") != nil ? "yes" : "no",
            "aac": avcodec_find_encoder_by_name("aac") != nil ? "yes" : "no",
        ]
    }

    // MARK: Video

    public func transcodeVideo(
        _ input: [UInt8],
        settings: TranscodeSettings,
        workDirectory: String,
        deadline: Date
    ) async throws(ProcessingError)
        -> VideoResult
    {
        try await onOwnThread { () throws(ProcessingError) in
            try typed {
                try input.withUnsafeBytes { bytes in
                    try video(bytes, settings: settings, workDirectory: workDirectory, deadline: deadline)
                }
            }
        }
    }

    private func video(_ bytes: UnsafeRawBufferPointer, settings: TranscodeSettings, workDirectory: String, deadline: Date) throws -> VideoResult {
        let input = try Input(bytes, formats: Self.videoFormats, deadline: deadline)
        guard let (videoIndex, videoCodec) = input.bestStream(AVMEDIA_TYPE_VIDEO) else {
            throw ProcessingError(.invalidMedia, "no video stream")
        }
        let videoStream = input.stream(videoIndex)
        let parameters = videoStream.pointee.codecpar.pointee
        guard parameters.width > 0, parameters.height > 0, parameters.width <= 8192, parameters.height <= 8192 else {
            throw ProcessingError(.unsupported, "video size \(parameters.width)x\(parameters.height) is out of range")
        }
        let audio = input.bestStream(AVMEDIA_TYPE_AUDIO)
        let rotation = Self.clockwiseRotation(videoStream)
        let frameRate = av_q2d(videoStream.pointee.avg_frame_rate)
        var probe = MediaProbe(
            container: input.formatName,
            durationMilliseconds: input.durationMilliseconds,
            videoCodec: String(cString: avcodec_get_name(parameters.codec_id)),
            audioCodec: audio.map { String(cString: avcodec_get_name(input.stream($0.0).pointee.codecpar.pointee.codec_id)) },
            width: Int(parameters.width),
            height: Int(parameters.height),
            frameRate: frameRate.isFinite && frameRate > 0 ? (frameRate * 1000).rounded() / 1000 : nil,
            rotation: rotation
        )

        // upright size, then at most 1280x720 (or 720x1280) keeping the aspect ratio, even dimensions
        let (uprightWidth, uprightHeight) =
            rotation % 180 == 0 ? (Int(parameters.width), Int(parameters.height)) : (Int(parameters.height), Int(parameters.width))
        let longest = Double(max(uprightWidth, uprightHeight))
        let shortest = Double(min(uprightWidth, uprightHeight))
        let scale = min(1, Double(settings.maxVideoWidth) / longest, Double(settings.maxVideoHeight) / shortest)
        let targetWidth = max(2, Int((Double(uprightWidth) * scale / 2).rounded()) * 2)
        let targetHeight = max(2, Int((Double(uprightHeight) * scale / 2).rounded()) * 2)
        let turn = [90: "transpose=clock,", 180: "hflip,vflip,", 270: "transpose=cclock,"][rotation] ?? ""

        let videoDecoder = try Decoder(input, stream: videoIndex, codec: videoCodec)
        let sar = videoDecoder.context!.pointee.sample_aspect_ratio
        let timeBase = videoStream.pointee.time_base
        let videoGraph = try FilterGraph(
            video: true,
            sourceArguments:
                "video_size=\(parameters.width)x\(parameters.height):pix_fmt=\(videoDecoder.context!.pointee.pix_fmt.rawValue):time_base=\(timeBase.num)/\(timeBase.den):pixel_aspect=\(max(sar.num, 1))/\(max(sar.den, 1))",
            description: "\(turn)scale=\(targetWidth):\(targetHeight):flags=bicubic,setsar=1,format=yuv420p"
        )

        let path = "\(workDirectory)/video-\(UUID().uuidString).mp4"
        let output = try Output(path: path, deadline: deadline)
        do {
            var fps = videoGraph.frameRate
            if fps.num <= 0 || fps.den <= 0 { fps = av_guess_frame_rate(input.context, videoStream, nil) }
            if fps.num <= 0 || fps.den <= 0 { fps = AVRational(num: 30, den: 1) }
            let gop = Int32(max(1, min(300, (2 * av_q2d(fps)).rounded())))
            let videoEncoder = try Encoder(
                codecName: "libx264",
                output: output,
                configure: { (context) throws(ProcessingError) in
                    context.pointee.width = videoGraph.width
                    context.pointee.height = videoGraph.height
                    context.pointee.pix_fmt = AV_PIX_FMT_YUV420P
                    context.pointee.sample_aspect_ratio = AVRational(num: 1, den: 1)
                    context.pointee.time_base = videoGraph.timeBase
                    context.pointee.framerate = fps
                    context.pointee.gop_size = gop
                    context.pointee.max_b_frames = 2
                    context.pointee.rc_max_rate = Int64(settings.videoMaxBitrate)
                    context.pointee.rc_buffer_size = Int32(settings.videoMaxBitrate * 2)
                    context.pointee.thread_count = 1
                },
                options: ["preset": "veryfast", "crf": "\(settings.crf)", "profile": "high"]
            )

            var audioPipeline: AudioPipeline?
            if let (audioIndex, audioCodec) = audio {
                audioPipeline = try AudioPipeline(input: input, stream: audioIndex, codec: audioCodec, output: output, settings: settings)
            }
            try output.start()

            let packet = try Packet()
            let decoded = try Frame()
            let filtered = try Frame()
            let posterAt = settings.posterAt.seconds
            var poster: RGBFrame?
            var first: RGBFrame?
            var frames = 0
            let graphTimeBase = videoGraph.timeBase
            let handleFiltered: (UnsafeMutablePointer<AVFrame>) throws(ProcessingError) -> Void = { (frame) throws(ProcessingError) in
                frames += 1
                let time = Double(frame.pointee.pts) * av_q2d(graphTimeBase)
                if first == nil { first = try rgbFrame(frame) }
                if poster == nil && time >= posterAt { poster = try rgbFrame(frame) }
                frame.pointee.pict_type = AV_PICTURE_TYPE_NONE
                try videoEncoder.encode(frame, to: output, packet: packet)
            }
            while true {
                guard Date() < deadline else { throw ProcessingError(.timedOut, "transcoding took longer than allowed") }
                let rc = av_read_frame(input.context, packet.pointer)
                if rc == eof { break }
                try check(rc, "reading the video")
                defer { av_packet_unref(packet.pointer) }
                if packet.pointer!.pointee.stream_index == videoIndex {
                    try videoDecoder.decode(packet.pointer, into: decoded) { (frame) throws(ProcessingError) in
                        try videoGraph.filter(frame, into: filtered, handleFiltered)
                    }
                } else if let audioPipeline, packet.pointer!.pointee.stream_index == audioPipeline.decoder.streamIndex {
                    try audioPipeline.process(packet.pointer, output: output, packet: try Packet())
                }
            }
            // flush decoders, filters, encoders
            try videoDecoder.decode(nil, into: decoded) { (frame) throws(ProcessingError) in
                try videoGraph.filter(frame, into: filtered, handleFiltered)
            }
            try videoGraph.filter(nil, into: filtered, handleFiltered)
            try videoEncoder.encode(nil, to: output, packet: packet)
            try audioPipeline?.finish(output: output, packet: packet)
            guard frames > 0 else { throw ProcessingError(.invalidMedia, "the video has no decodable frame") }
            try output.finish()
            if probe.durationMilliseconds == 0, let audioPipeline { probe.durationMilliseconds = audioPipeline.durationMilliseconds }
            return VideoResult(
                probe: probe,
                output: TranscodedFile(path: path, mime: "video/mp4", width: Int(videoGraph.width), height: Int(videoGraph.height)),
                poster: poster ?? first
            )
        } catch {
            try? FileManager.default.removeItem(atPath: path)
            throw error
        }
    }

    /// Clockwise degrees (0, 90, 180, 270) from the display matrix, as ffmpeg's autorotate reads it.
    static func clockwiseRotation(_ stream: UnsafeMutablePointer<AVStream>) -> Int {
        let theta = -mgw_stream_rotation(stream)
        let rounded = Int((theta / 90).rounded()) * 90
        return ((rounded % 360) + 360) % 360
    }

    // MARK: Audio

    public func transcodeAudio(
        _ input: [UInt8],
        settings: TranscodeSettings,
        workDirectory: String,
        deadline: Date
    ) async throws(ProcessingError)
        -> AudioResult
    {
        try await onOwnThread { () throws(ProcessingError) in
            try typed {
                try input.withUnsafeBytes { bytes in
                    try audio(bytes, settings: settings, workDirectory: workDirectory, deadline: deadline)
                }
            }
        }
    }

    private func audio(_ bytes: UnsafeRawBufferPointer, settings: TranscodeSettings, workDirectory: String, deadline: Date) throws -> AudioResult {
        let input = try Input(bytes, formats: Self.audioFormats, deadline: deadline)
        guard let (audioIndex, audioCodec) = input.bestStream(AVMEDIA_TYPE_AUDIO) else {
            throw ProcessingError(.invalidMedia, "no audio stream")
        }
        // cover art travels as an attached picture: kept apart, dropped from the audio
        var cover: [UInt8]?
        for index in 0..<Int32(input.context!.pointee.nb_streams) {
            let stream = input.stream(index)
            if stream.pointee.disposition & AV_DISPOSITION_ATTACHED_PIC != 0, stream.pointee.attached_pic.size > 0, cover == nil {
                cover = Array(UnsafeBufferPointer(start: stream.pointee.attached_pic.data, count: Int(stream.pointee.attached_pic.size)))
            }
        }
        let parameters = input.stream(audioIndex).pointee.codecpar.pointee
        var probe = MediaProbe(
            container: input.formatName,
            durationMilliseconds: input.durationMilliseconds,
            audioCodec: String(cString: avcodec_get_name(parameters.codec_id)),
            sampleRate: Int(parameters.sample_rate),
            channels: Int(parameters.ch_layout.nb_channels)
        )
        let path = "\(workDirectory)/audio-\(UUID().uuidString).m4a"
        let output = try Output(path: path, deadline: deadline)
        do {
            let pipeline = try AudioPipeline(input: input, stream: audioIndex, codec: audioCodec, output: output, settings: settings)
            try output.start()
            let packet = try Packet()
            let scratch = try Packet()
            while true {
                guard Date() < deadline else { throw ProcessingError(.timedOut, "transcoding took longer than allowed") }
                let rc = av_read_frame(input.context, packet.pointer)
                if rc == eof { break }
                try check(rc, "reading the audio")
                defer { av_packet_unref(packet.pointer) }
                if packet.pointer!.pointee.stream_index == audioIndex {
                    try pipeline.process(packet.pointer, output: output, packet: scratch)
                }
            }
            try pipeline.finish(output: output, packet: scratch)
            guard pipeline.samples > 0 else { throw ProcessingError(.invalidMedia, "the audio has no decodable sample") }
            try output.finish()
            if probe.durationMilliseconds == 0 { probe.durationMilliseconds = pipeline.durationMilliseconds }
            return AudioResult(
                probe: probe,
                output: TranscodedFile(path: path, mime: "audio/mp4"),
                waveform: pipeline.waveform(points: settings.waveformPoints),
                coverArt: cover
            )
        } catch {
            try? FileManager.default.removeItem(atPath: path)
            throw error
        }
    }

    /// Runs `body`, whose errors are all ``ProcessingError``s, as a typed-throwing call.
    private func typed<T>(_ body: () throws -> T) throws(ProcessingError) -> T {
        do {
            return try body()
        } catch let error as ProcessingError {
            throw error
        } catch {
            throw ProcessingError(.internal, "\(error)")
        }
    }
}

/// Audio of one input stream: decoded, resampled to 44.1 kHz stereo in 1024-sample frames, encoded as AAC,
/// with peak levels kept for the waveform.
final class AudioPipeline {
    let decoder: Decoder
    let graph: FilterGraph
    let encoder: Encoder
    private let decoded: Frame
    private let filtered: Frame
    private(set) var samples = 0
    private var peaks: [Float] = []
    private let sampleRate: Int

    init(input: Input, stream index: Int32, codec: UnsafePointer<AVCodec>, output: Output, settings: TranscodeSettings) throws(ProcessingError) {
        decoder = try Decoder(input, stream: index, codec: codec)
        let context = decoder.context!.pointee
        var layout = context.ch_layout
        if layout.order == AV_CHANNEL_ORDER_UNSPEC || layout.nb_channels == 0 {
            av_channel_layout_default(&layout, max(1, context.ch_layout.nb_channels))
        }
        var description = [CChar](repeating: 0, count: 128)
        av_channel_layout_describe(&layout, &description, description.count)
        let timeBase = input.stream(index).pointee.time_base
        guard context.sample_rate > 0 else { throw ProcessingError(.invalidMedia, "the audio has no sample rate") }
        sampleRate = settings.audioSampleRate
        graph = try FilterGraph(
            video: false,
            sourceArguments:
                "time_base=\(timeBase.num)/\(timeBase.den):sample_rate=\(context.sample_rate):sample_fmt=\(String(cString: av_get_sample_fmt_name(context.sample_fmt))):channel_layout=\(String(cString: description))",
            description: "aresample=\(settings.audioSampleRate),aformat=sample_fmts=fltp:channel_layouts=stereo,asetnsamples=n=1024:p=0"
        )
        let rate = Int32(settings.audioSampleRate)
        encoder = try Encoder(
            codecName: "aac",
            output: output,
            configure: { (context) throws(ProcessingError) in
                context.pointee.sample_fmt = AV_SAMPLE_FMT_FLTP
                context.pointee.sample_rate = rate
                av_channel_layout_default(&context.pointee.ch_layout, 2)
                context.pointee.bit_rate = Int64(settings.audioBitrate)
                context.pointee.time_base = AVRational(num: 1, den: rate)
            },
            options: [:]
        )
        decoded = try Frame()
        filtered = try Frame()
    }

    var durationMilliseconds: Int64 { Int64(samples) * 1000 / Int64(sampleRate) }

    func process(_ packet: UnsafeMutablePointer<AVPacket>?, output: Output, packet scratch: Packet) throws(ProcessingError) {
        try decoder.decode(packet, into: decoded) { (frame) throws(ProcessingError) in
            try graph.filter(frame, into: filtered) { (frame) throws(ProcessingError) in try encode(frame, output: output, packet: scratch) }
        }
    }

    func finish(output: Output, packet: Packet) throws(ProcessingError) {
        try process(nil, output: output, packet: packet)
        try graph.filter(nil, into: filtered) { (frame) throws(ProcessingError) in try encode(frame, output: output, packet: packet) }
        try encoder.encode(nil, to: output, packet: packet)
    }

    private func encode(_ frame: UnsafeMutablePointer<AVFrame>, output: Output, packet: Packet) throws(ProcessingError) {
        let count = Int(frame.pointee.nb_samples)
        var peak: Float = 0
        for channel in 0..<2 {
            guard let plane = frame.pointee.extended_data[channel] else { continue }
            plane.withMemoryRebound(to: Float.self, capacity: count) { values in
                for index in 0..<count { peak = max(peak, abs(values[index])) }
            }
        }
        peaks.append(min(1, peak))
        samples += count
        try encoder.encode(frame, to: output, packet: packet)
    }

    /// `points` peak levels over equal slices of the whole audio.
    func waveform(points: Int) -> [Double] {
        guard !peaks.isEmpty, points > 0 else { return [] }
        return (0..<points).map { point in
            let start = point * peaks.count / points
            let end = max(start + 1, (point + 1) * peaks.count / points)
            let slice = peaks[min(start, peaks.count - 1)..<min(end, peaks.count)]
            return (Double(slice.max() ?? 0) * 1000).rounded() / 1000
        }
    }
}
