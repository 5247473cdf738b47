import FFmpegMedia
import Foundation
import MediaCore
import Testing

/// The FFmpeg transcoder on the corpus (`Tests/Fixtures/corpus`; no services involved).
/// The transcoder runs FFmpeg on a thread of its own, so the cooperative pool stays free for the rest of the
/// run (the gateways of the integration tests live in this process). Serialized, so that these tests take
/// one core, not all of them.
@Suite(.serialized) struct FFmpegTranscoderTests {
    static let corpus = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../Fixtures/corpus").standardized
    let transcoder = FFmpegTranscoder()
    let settings = TranscodeSettings()
    let work: String = {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("ffmpeg-tests-\(UUID())").path
        try? FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }()

    func bytes(_ path: String) throws -> [UInt8] { Array(try Data(contentsOf: Self.corpus.appendingPathComponent(path))) }
    var deadline: Date { Date().addingTimeInterval(60) }

    func transcodeVideo(_ path: String, settings: TranscodeSettings? = nil, deadline: Date? = nil) async throws -> VideoResult {
        try await transcoder.transcodeVideo(
            try bytes(path),
            settings: settings ?? self.settings,
            workDirectory: work,
            deadline: deadline ?? self.deadline
        )
    }

    func transcodeAudio(_ path: String) async throws -> AudioResult {
        try await transcoder.transcodeAudio(try bytes(path), settings: settings, workDirectory: work, deadline: deadline)
    }

    /// Offsets of the top-level boxes of an MP4 file.
    func boxes(_ file: [UInt8]) -> [String: Int] {
        var result: [String: Int] = [:]
        var at = 0
        while at + 8 <= file.count {
            let size = Int(file[at]) << 24 | Int(file[at + 1]) << 16 | Int(file[at + 2]) << 8 | Int(file[at + 3])
            let type = String(decoding: file[at + 4..<at + 8], as: UTF8.self)
            if result[type] == nil { result[type] = at }
            guard size >= 8 else { break }
            at += size
        }
        return result
    }

    static let videos = [
        "video/3gp-h263-amr.3gp", "video/mkv-h264-aac.mkv", "video/mov-h264.mov", "video/mov-iphone-rotated-90-gps.mov",
        "video/mp4-h264-aac-bbb-10s.mp4", "video/mp4-h264-aac-testpattern-8s.mp4", "video/mp4-hevc-1080p.mp4",
        "video/mp4-hevc-aac.mp4", "video/webm-vp8-vorbis.webm", "video/webm-vp9-opus.webm",
    ]

    @Test(arguments: videos)
    func everyValidVideoBecomesFastStartH264MP4WithAPoster(_ path: String) async throws {
        let result = try await transcodeVideo(path)
        defer { try? FileManager.default.removeItem(atPath: result.output.path) }
        let file = Array(try Data(contentsOf: URL(fileURLWithPath: result.output.path)))
        #expect(MediaSniffer.sniff(file)?.mime == "video/mp4", "\(path)")
        let top = boxes(file)
        let moov = try #require(top["moov"], "\(path)")
        let mdat = try #require(top["mdat"], "\(path)")
        #expect(moov < mdat, "\(path): the index comes first (fast start)")
        let width = try #require(result.output.width)
        let height = try #require(result.output.height)
        #expect(max(width, height) <= 1280 && min(width, height) <= 720 && width % 2 == 0 && height % 2 == 0, "\(path): \(width)x\(height)")
        #expect(result.poster != nil, "\(path)")
        #expect(result.probe.videoCodec != nil)
    }

    @Test func aRotatedPhoneVideoComesOutUpright() async throws {
        let result = try await transcodeVideo("video/mov-iphone-rotated-90-gps.mov")
        defer { try? FileManager.default.removeItem(atPath: result.output.path) }
        #expect(result.probe.rotation == 90)
        #expect(result.probe.width == 568 && result.probe.height == 320)
        #expect(result.output.width == 320 && result.output.height == 568, "portrait after rotation")
        #expect(result.poster?.width == 320 && result.poster?.height == 568)
        #expect(result.probe.audioCodec == "aac")
        #expect(result.probe.durationMilliseconds > 2000)
    }

    @Test func largeVideoIsScaledTo720p() async throws {
        let result = try await transcodeVideo("video/mp4-hevc-1080p.mp4")
        defer { try? FileManager.default.removeItem(atPath: result.output.path) }
        #expect(result.output.width == 1280 && result.output.height == 720)
        #expect(result.probe.videoCodec == "hevc")
    }

    @Test func thePosterIsTakenAtAboutOneSecond() async throws {
        let result = try await transcodeVideo("video/mp4-h264-aac-testpattern-8s.mp4")
        defer { try? FileManager.default.removeItem(atPath: result.output.path) }
        let first = try await transcodeVideo("video/mp4-h264-aac-testpattern-8s.mp4", settings: TranscodeSettings(posterAt: .zero))
        defer { try? FileManager.default.removeItem(atPath: first.output.path) }
        // the test pattern burns the time code in: the frame at 1 s differs from the first
        #expect(result.poster != first.poster)
        #expect(result.probe.durationMilliseconds == 8000)
    }

    @Test(arguments: [
        "video/malformed-mkv-corrupt-ebml-header.mkv", "video/malformed-mp4-truncated-init.mp4", "video/malformed-webm-invalid-vp9-bitstream.webm",
    ])
    func malformedVideosFailWithAReason(_ path: String) async throws {
        do {
            let result = try await transcodeVideo(path)
            try? FileManager.default.removeItem(atPath: result.output.path)
            Issue.record("\(path) was transcoded")
        } catch let error as ProcessingError {
            #expect(error.permanent, "\(path): \(error)")
            #expect(!error.message.isEmpty)
        }
        #expect(try FileManager.default.contentsOfDirectory(atPath: work).isEmpty, "no temporary file left behind")
    }

    static let audio = [
        "audio/aac-adts-stereo.aac", "audio/aac-lc-stereo.m4a", "audio/alac.m4a", "audio/flac-stereo.flac",
        "audio/mp3-id3-cover-art.mp3", "audio/opus-mono.opus", "audio/speech-jfk-11s-16khz.wav", "audio/speech-jfk-11s.mp3",
        "audio/vorbis-stereo.ogg", "audio/wav-containing-mp3.wav",
    ]

    @Test(arguments: audio)
    func everyValidAudioBecomesAACInM4AWithAWaveform(_ path: String) async throws {
        let result = try await transcodeAudio(path)
        defer { try? FileManager.default.removeItem(atPath: result.output.path) }
        let file = Array(try Data(contentsOf: URL(fileURLWithPath: result.output.path)))
        #expect(MediaSniffer.sniff(file) != nil, "\(path)")
        let top = boxes(file)
        #expect((top["moov"] ?? .max) < (top["mdat"] ?? 0), "\(path): fast start")
        #expect(result.waveform.count == 100, "\(path)")
        #expect(result.waveform.allSatisfy { (0...1).contains($0) })
        if path.contains("jfk") { #expect(result.waveform.filter { $0 > 0.05 }.count > 50, "\(path): speech is not silent") }
        #expect(result.probe.durationMilliseconds > 0)
    }

    @Test func coverArtIsKeptApartAndDroppedFromTheAudio() async throws {
        let result = try await transcodeAudio("audio/mp3-id3-cover-art.mp3")
        defer { try? FileManager.default.removeItem(atPath: result.output.path) }
        let cover = try #require(result.coverArt)
        #expect(MediaSniffer.sniff(cover)?.kind == .photo)
        let file = Array(try Data(contentsOf: URL(fileURLWithPath: result.output.path)))
        #expect(!file.starts(with: cover) && file.count < 60_000)
        #expect(result.probe.audioCodec == "mp3" && result.probe.sampleRate == 44100)
    }

    @Test func truncatedAudioFailsWithAReason() async throws {
        do {
            let result = try await transcodeAudio("audio/malformed-aac-adts-truncated.aac")
            try? FileManager.default.removeItem(atPath: result.output.path)
            Issue.record("the truncated ADTS stream was transcoded")
        } catch let error as ProcessingError {
            #expect(error.permanent, "\(error)")
        }
    }

    @Test func notAnAudioContainerIsRefused() async throws {
        for path in ["audio/aiff-alaw.aif", "images/orientation-1.jpg", "audio/malformed-wav-header.wav"] {
            await #expect(throws: ProcessingError.self) { try await transcodeAudio(path) }
        }
    }

    @Test(arguments: [0, 0.2])
    func aDeadlineThatPassesStopsTheWorkAsTimedOut(_ seconds: Double) async throws {
        // a 10 s video takes seconds to transcode: a deadline already passed, or one that passes during the
        // work, stops it, and says so (never "invalid media")
        await #expect {
            try await transcodeVideo("video/mp4-h264-aac-bbb-10s.mp4", deadline: Date().addingTimeInterval(seconds))
        } throws: { error in
            (error as? ProcessingError)?.code == .timedOut
        }
    }

    @Test func theLibrariesAreReported() {
        #expect(transcoder.versions["libx264"] == "yes")
        #expect(transcoder.versions["aac"] == "yes")
    }
}
