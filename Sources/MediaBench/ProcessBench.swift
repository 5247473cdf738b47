import ArgumentParser
import FFmpegMedia
import Foundation
import MediaApp
import VipsImaging

/// Processing, in this process, beside the command-line tools an operator would otherwise run, on the same
/// inputs in one run: the photo ladder (every width in WebP and JPEG from one decode) beside `vipsthumbnail`
/// once per output and ImageMagick's `convert` once per output; the video transcode beside the `ffmpeg`
/// command line with the same settings. Wall time and CPU time (this process's for the library calls, the
/// reaped children's for the tools).
struct ProcessBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "process",
        abstract: "Photo ladder vs vipsthumbnail and convert; video transcode vs the ffmpeg command line (CPU and wall time)."
    )

    @Option(help: "Rounds (medians are reported).")
    var rounds = 3
    @Option(name: .customLong("photo"), help: "A photo to use instead of the benchmark's six (repeatable).")
    var ownPhotos: [String] = []
    @Flag(help: "Leave out the video transcode.")
    var noVideo = false

    /// Real photos of the corpus, from a phone-sized HDR JPEG and an iPhone HEIC down to a small camera JPEG.
    static let corpusPhotos = [
        "images/jpeg-ultrahdr-gainmap.jpg", "images/heic-iphone-grid-gps.heic", "images/orientation-6.jpg",
        "images/gps-nikon-coolpix-p6000-1.jpg", "images/webp-lossy-alpha.webp",
    ]

    func run() async throws {
        let scratch = try scratchDirectory()
        defer { try? FileManager.default.removeItem(at: scratch) }
        let corpus = URL(fileURLWithPath: "Tests/Fixtures/corpus")
        var photos = Self.corpusPhotos.map { corpus.appendingPathComponent($0) }
        if ownPhotos.isEmpty {
            let generated = scratch.appendingPathComponent("generated-12mp.jpg")
            _ = try runProcess([
                "ffmpeg", "-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi", "-i", "testsrc2=size=4000x3000",
                "-vf", "noise=alls=12:allf=u", "-frames:v", "1", "-q:v", "3", generated.path,
            ])
            photos.append(generated)
        } else {
            photos = ownPhotos.map { URL(fileURLWithPath: $0) }
        }
        guard photos.allSatisfy({ FileManager.default.fileExists(atPath: $0.path) }),
            ownPhotos.isEmpty ? photos.count == 6 : photos.count == ownPhotos.count
        else {
            throw BenchError("the benchmark's photos are missing: run it from the checkout")
        }
        let settings = PhotoSettings()
        let images = try VipsImageProcessor()
        let inputs = try photos.map { try [UInt8](Data(contentsOf: $0)) }
        let originalBytes = inputs.map(\.count).reduce(0, +)
        print(
            "process: \(photos.count) photos (\(originalBytes) B), ladder \(settings.widths) x WebP q\(settings.webpQuality) + JPEG q\(settings.jpegQuality); \(rounds) rounds"
        )

        // 1. the photo ladder, in process, beside the tools once per output
        var ladder: [Usage] = []
        var thumbnail: [Usage] = []
        var magick: [Usage] = []
        var ladderBytes = 0
        var largerThanOriginal: [String] = []
        for round in 0..<rounds {
            let measured = try await Usage.measureAsync {
                for (index, bytes) in inputs.enumerated() {
                    let derived = try await images.derive(encoded: bytes, settings: settings, prefix: "bench")
                    if round == 0 {
                        ladderBytes += derived.renditions.map(\.bytes.count).reduce(0, +)
                        for rendition in derived.renditions where rendition.bytes.count > bytes.count {
                            largerThanOriginal.append(
                                "\(photos[index].lastPathComponent) \(rendition.name) \(rendition.bytes.count) B > \(bytes.count) B"
                            )
                        }
                    }
                }
            }
            ladder.append(measured)
            thumbnail.append(
                try Usage.measure {
                    for photo in photos {
                        for width in settings.widths {
                            for (format, options) in [("webp", "Q=\(settings.webpQuality),strip"), ("jpg", "Q=\(settings.jpegQuality),strip")] {
                                let out = scratch.appendingPathComponent("vips-\(width).\(format)").path
                                _ = try runProcess(["vipsthumbnail", photo.path, "--size", "\(width)x100000", "-o", "\(out)[\(options)]"])
                            }
                        }
                    }
                }
            )
            magick.append(
                try Usage.measure {
                    for photo in photos {
                        for width in settings.widths {
                            for (format, quality) in [("webp", settings.webpQuality), ("jpg", settings.jpegQuality)] {
                                let out = scratch.appendingPathComponent("magick-\(width).\(format)").path
                                _ = try runProcess([
                                    "/usr/bin/convert", photo.path + "[0]", "-auto-orient", "-strip", "-resize", "\(width)x>", "-quality",
                                    "\(quality)", out,
                                ])
                            }
                        }
                    }
                }
            )
        }

        var videoBytes: [UInt8] = []
        var ours: [Usage] = []
        var cli: [Usage] = []
        if !noVideo {
            // 2. the video transcode, in process, beside the ffmpeg command line with the same settings
            let video = scratch.appendingPathComponent("phone-1080p.mp4")
            _ = try runProcess([
                "ffmpeg", "-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi", "-i", "testsrc2=size=1920x1080:rate=30",
                "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000", "-vf", "noise=alls=10:allf=t", "-t", "10",
                "-c:v", "libx264", "-preset", "fast", "-b:v", "7M", "-c:a", "aac", "-b:a", "128k", "-shortest", video.path,
            ])
            videoBytes = try [UInt8](Data(contentsOf: video))
            let transcoder = FFmpegTranscoder()
            let transcode = TranscodeSettings()
            for _ in 0..<rounds {
                ours.append(
                    try await Usage.measureAsync {
                        _ = try await transcoder.transcodeVideo(
                            videoBytes,
                            settings: transcode,
                            workDirectory: scratch.path,
                            deadline: Date().addingTimeInterval(600)
                        )
                    }
                )
                cli.append(
                    try Usage.measure {
                        _ = try runProcess([
                            "ffmpeg", "-hide_banner", "-loglevel", "error", "-y", "-threads", "1", "-filter_threads", "1", "-i", video.path,
                            "-vf", "scale=1280:720:flags=bicubic,setsar=1,format=yuv420p", "-c:v", "libx264", "-preset", "veryfast",
                            "-crf", "\(transcode.crf)", "-profile:v", "high", "-g", "60", "-bf", "2", "-maxrate", "\(transcode.videoMaxBitrate)",
                            "-bufsize", "\(transcode.videoMaxBitrate * 2)", "-x264-params", "threads=1", "-c:a", "aac", "-b:a",
                            "\(transcode.audioBitrate)",
                            "-ar", "\(transcode.audioSampleRate)", "-movflags", "+faststart", scratch.appendingPathComponent("cli.mp4").path,
                        ])
                    }
                )
            }
        }

        let perPhoto = { (runs: [Usage]) in
            "\(format(median(runs.map(\.wall)) / Double(photos.count) * 1000)) ms wall, \(format(median(runs.map(\.cpu)) / Double(photos.count) * 1000)) ms CPU per photo"
        }
        print("photo ladder (in process):        \(perPhoto(ladder))")
        print("vipsthumbnail, once per output:   \(perPhoto(thumbnail))")
        print("ImageMagick convert, per output:  \(perPhoto(magick))")
        print(
            "ratios: ladder / vipsthumbnail \(format(median(ladder.map(\.wall)) / median(thumbnail.map(\.wall)), 2)) wall (target <= 0.5), "
                + "\(format(median(ladder.map(\.cpu)) / median(thumbnail.map(\.cpu)), 2)) CPU; "
                + "convert / ladder \(format(median(magick.map(\.wall)) / median(ladder.map(\.wall)), 1))x wall (target >= 3)"
        )
        print(
            "ladder bytes: \(ladderBytes) B for \(originalBytes) B of originals (\(format(Double(ladderBytes) / Double(originalBytes) * 100)) %); "
                + "renditions larger than their original: \(largerThanOriginal.isEmpty ? "none" : largerThanOriginal.joined(separator: "; "))"
        )
        if !noVideo {
            print(
                "video (10 s 1080p30 H.264 \(videoBytes.count) B → 720p): in process \(format(median(ours.map(\.wall)))) s wall, \(format(median(ours.map(\.cpu)))) s CPU; "
                    + "ffmpeg command line \(format(median(cli.map(\.wall)))) s wall, \(format(median(cli.map(\.cpu)))) s CPU; "
                    + "ratio \(format(median(ours.map(\.wall)) / median(cli.map(\.wall)), 2)) wall (target <= 1.1)"
            )
        }
        print(
            "per core: \(format(Double(photos.count) / median(ladder.map(\.cpu)))) photos per CPU second; "
                + (noVideo ? "" : "\(format(median(ours.map(\.cpu)) / 10, 2)) CPU seconds per second of video")
        )
    }
}

/// Wall and CPU time of a piece of work: this process's CPU (library calls on its threads) plus that of the
/// children it reaped meanwhile (the command-line tools).
struct Usage {
    var wall: Double
    var cpu: Double

    static func cpuNow() -> Double {
        var own = rusage()
        var children = rusage()
        getrusage(RUSAGE_SELF.rawValue, &own)
        getrusage(RUSAGE_CHILDREN.rawValue, &children)
        let seconds = { (time: timeval) in Double(time.tv_sec) + Double(time.tv_usec) / 1e6 }
        return seconds(own.ru_utime) + seconds(own.ru_stime) + seconds(children.ru_utime) + seconds(children.ru_stime)
    }

    static func measure(_ body: () throws -> Void) throws -> Usage {
        let (start, cpu) = (Date(), cpuNow())
        try body()
        return Usage(wall: Date().timeIntervalSince(start), cpu: cpuNow() - cpu)
    }

    static func measureAsync(_ body: () async throws -> Void) async throws -> Usage {
        let (start, cpu) = (Date(), cpuNow())
        try await body()
        return Usage(wall: Date().timeIntervalSince(start), cpu: cpuNow() - cpu)
    }
}
