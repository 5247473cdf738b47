import Foundation
import MediaCore
import Testing

@Suite struct SnifferTests {
    static let corpus = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../Fixtures/corpus").standardized

    /// What every file of the corpus (Tests/Fixtures/corpus) is, by its bytes (`nil`: refused as unsupported). Written by hand
    /// from MANIFEST.md and the files' headers, not by running the sniffer.
    static let expected: [String: SniffedType?] = [
        "audio/aac-adts-stereo.aac": .init(kind: .audio, mime: "audio/aac"),
        "audio/aac-lc-stereo.m4a": .init(kind: .audio, mime: "audio/mp4"),
        "audio/aiff-alaw.aif": nil,
        "audio/alac.m4a": .init(kind: .audio, mime: "audio/mp4"),
        "audio/flac-stereo.flac": .init(kind: .audio, mime: "audio/flac"),
        "audio/malformed-aac-adts-truncated.aac": .init(kind: .audio, mime: "audio/aac"),
        "audio/malformed-wav-header.wav": nil,
        "audio/mp3-id3-cover-art.mp3": .init(kind: .audio, mime: "audio/mpeg"),
        "audio/opus-mono.opus": .init(kind: .audio, mime: "audio/ogg"),
        "audio/speech-jfk-11s-16khz.wav": .init(kind: .audio, mime: "audio/wav"),
        "audio/speech-jfk-11s.mp3": .init(kind: .audio, mime: "audio/mpeg"),
        "audio/vorbis-stereo.ogg": .init(kind: .audio, mime: "audio/ogg"),
        "audio/wav-containing-mp3.wav": .init(kind: .audio, mime: "audio/wav"),
        "bad-images/bomb-gif-40k-frames.gif": .init(kind: .photo, mime: "image/gif"),
        "bad-images/bomb-gif-frame-65535x10751.gif": .init(kind: .photo, mime: "image/gif"),
        "bad-images/bomb-gif-frame-offset-65535.gif": .init(kind: .photo, mime: "image/gif"),
        "bad-images/bomb-jpeg-20000x14000-real.jpg": .init(kind: .photo, mime: "image/jpeg"),
        "bad-images/bomb-jpeg-64250x64250.jpg": .init(kind: .photo, mime: "image/jpeg"),
        "bad-images/bomb-png-65536x65536.png": .init(kind: .photo, mime: "image/png"),
        "bad-images/bomb-png-zlib-text-chunk.png": .init(kind: .photo, mime: "image/png"),
        "bad-images/bomb-tiff-oom.tif": nil,
        "bad-images/corrupt-gif-zero-width.gif": .init(kind: .photo, mime: "image/gif"),
        "bad-images/corrupt-jpeg-header.jpg": .init(kind: .photo, mime: "image/jpeg"),
        "bad-images/corrupt-jpeg-invalid-exif.jpg": .init(kind: .photo, mime: "image/jpeg"),
        "bad-images/corrupt-png-bad-adler32.png": .init(kind: .photo, mime: "image/png"),
        "bad-images/corrupt-png-bad-filter-type.png": .init(kind: .photo, mime: "image/png"),
        "bad-images/corrupt-png-bitdepth-99.png": .init(kind: .photo, mime: "image/png"),
        "bad-images/corrupt-png-crlf-mangled.png": nil,
        "bad-images/corrupt-png-garbage-after-signature.png": .init(kind: .photo, mime: "image/png"),
        "bad-images/corrupt-png-huge-chunk-length.png": .init(kind: .photo, mime: "image/png"),
        "bad-images/corrupt-png-ihdr-crc.png": .init(kind: .photo, mime: "image/png"),
        "bad-images/corrupt-png-missing-idat.png": .init(kind: .photo, mime: "image/png"),
        "bad-images/corrupt-png-signature-bit.png": nil,
        "bad-images/corrupt-tiff-libtiff-segfault.tif": nil,
        "bad-images/truncated-jpeg-baseline.jpg": .init(kind: .photo, mime: "image/jpeg"),
        "bad-images/truncated-jpeg-progressive.jpg": .init(kind: .photo, mime: "image/jpeg"),
        "bad-images/truncated-jpeg-ultrahdr-mpf-offset-past-eof.jpg": .init(kind: .photo, mime: "image/jpeg"),
        "bad-images/truncated-png-end-chunk.png": .init(kind: .photo, mime: "image/png"),
        "bad-images/truncated-png.png": .init(kind: .photo, mime: "image/png"),
        "bad-images/wrong-ext-heic-named.jpg": .init(kind: .photo, mime: "image/heic"),
        "bad-images/wrong-ext-jpeg-named.png": .init(kind: .photo, mime: "image/jpeg"),
        "bad-images/wrong-ext-json-named.webp": nil,
        "bad-images/wrong-ext-png-named.jpg": .init(kind: .photo, mime: "image/png"),
        "images/apng-animated.png": .init(kind: .photo, mime: "image/png"),
        "images/avif-10bit-odd-dimensions.avif": .init(kind: .photo, mime: "image/avif"),
        "images/avif-8bit-yuv420.avif": .init(kind: .photo, mime: "image/avif"),
        "images/avif-alpha.avif": .init(kind: .photo, mime: "image/avif"),
        "images/avif-animated.avifs": .init(kind: .photo, mime: "image/avif"),
        "images/avif-icc-profile.avif": .init(kind: .photo, mime: "image/avif"),
        "images/avif-irot-rotate90.avif": .init(kind: .photo, mime: "image/avif"),
        "images/cmyk-adobe.jpg": .init(kind: .photo, mime: "image/jpeg"),
        "images/cmyk-no-icc-profile.jpg": .init(kind: .photo, mime: "image/jpeg"),
        "images/edge-jpeg-12bit.jpg": .init(kind: .photo, mime: "image/jpeg"),
        "images/edge-jpeg-arithmetic-coding.jpg": .init(kind: .photo, mime: "image/jpeg"),
        "images/edge-jpeg-lossless-sof3.jpg": .init(kind: .photo, mime: "image/jpeg"),
        "images/gif-animated.gif": .init(kind: .photo, mime: "image/gif"),
        "images/gps-nikon-coolpix-p6000-1.jpg": .init(kind: .photo, mime: "image/jpeg"),
        "images/gps-nikon-coolpix-p6000-2.jpg": .init(kind: .photo, mime: "image/jpeg"),
        "images/heic-iphone-grid-gps.heic": .init(kind: .photo, mime: "image/heic"),
        "images/heic-small.heic": .init(kind: .photo, mime: "image/heic"),
        "images/jpeg-ultrahdr-gainmap.jpg": .init(kind: .photo, mime: "image/jpeg"),
        "images/orientation-0-invalid-tag.jpg": .init(kind: .photo, mime: "image/jpeg"),
        "images/orientation-1.jpg": .init(kind: .photo, mime: "image/jpeg"),
        "images/orientation-2.jpg": .init(kind: .photo, mime: "image/jpeg"),
        "images/orientation-3.jpg": .init(kind: .photo, mime: "image/jpeg"),
        "images/orientation-4.jpg": .init(kind: .photo, mime: "image/jpeg"),
        "images/orientation-5.jpg": .init(kind: .photo, mime: "image/jpeg"),
        "images/orientation-6.jpg": .init(kind: .photo, mime: "image/jpeg"),
        "images/orientation-7.jpg": .init(kind: .photo, mime: "image/jpeg"),
        "images/orientation-8.jpg": .init(kind: .photo, mime: "image/jpeg"),
        "images/png-16bit-gray-alpha.png": .init(kind: .photo, mime: "image/png"),
        "images/png-16bit-rgb.png": .init(kind: .photo, mime: "image/png"),
        "images/png-exif-chunk.png": .init(kind: .photo, mime: "image/png"),
        "images/png-interlaced-adam7-rgba.png": .init(kind: .photo, mime: "image/png"),
        "images/png-interlaced-palette.png": .init(kind: .photo, mime: "image/png"),
        "images/png-palette-trns.png": .init(kind: .photo, mime: "image/png"),
        "images/progressive-camera-exif.jpg": .init(kind: .photo, mime: "image/jpeg"),
        "images/progressive.jpg": .init(kind: .photo, mime: "image/jpeg"),
        "images/svg-embedded-data-uri-rasters.svg": nil,
        "images/svg-inkscape.svg": nil,
        "images/tiff-lzw.tif": nil,
        "images/tiff-multipage.tiff": nil,
        "images/webp-animated.webp": .init(kind: .photo, mime: "image/webp"),
        "images/webp-exif-orientation-6.webp": .init(kind: .photo, mime: "image/webp"),
        "images/webp-lossless-alpha.webp": .init(kind: .photo, mime: "image/webp"),
        "images/webp-lossy-alpha.webp": .init(kind: .photo, mime: "image/webp"),
        "images/webp-lossy.webp": .init(kind: .photo, mime: "image/webp"),
        "video/3gp-h263-amr.3gp": .init(kind: .video, mime: "video/3gpp"),
        "video/malformed-mkv-corrupt-ebml-header.mkv": .init(kind: .video, mime: "video/x-matroska"),
        "video/malformed-mp4-truncated-init.mp4": .init(kind: .video, mime: "video/mp4"),
        "video/malformed-webm-invalid-vp9-bitstream.webm": .init(kind: .video, mime: "video/x-matroska"),  // fuzzed: its DocType is garbage
        "video/mkv-h264-aac.mkv": .init(kind: .video, mime: "video/x-matroska"),
        "video/mov-h264.mov": .init(kind: .video, mime: "video/quicktime"),
        "video/mov-iphone-rotated-90-gps.mov": .init(kind: .video, mime: "video/quicktime"),
        "video/mp4-h264-aac-bbb-10s.mp4": .init(kind: .video, mime: "video/mp4"),
        "video/mp4-h264-aac-testpattern-8s.mp4": .init(kind: .video, mime: "video/mp4"),
        "video/mp4-hevc-1080p.mp4": .init(kind: .video, mime: "video/mp4"),
        "video/mp4-hevc-aac.mp4": .init(kind: .video, mime: "video/mp4"),
        "video/webm-vp8-vorbis.webm": .init(kind: .video, mime: "video/webm"),
        "video/webm-vp9-opus.webm": .init(kind: .video, mime: "video/webm"),
    ]

    @Test func theTableCoversEveryCorpusFile() throws {
        let files = try FileManager.default.subpathsOfDirectory(atPath: Self.corpus.path)
            .filter { $0.contains("/") && !$0.hasSuffix(".md") }
        #expect(Set(files) == Set(Self.expected.keys))
        #expect(files.count == 100)
    }

    @Test(arguments: expected.keys.sorted())
    func corpusFileIsTypedByItsBytes(_ path: String) throws {
        let data = try Data(contentsOf: Self.corpus.appendingPathComponent(path))
        #expect(MediaSniffer.sniff(data) == Self.expected[path]!, "\(path)")
    }

    @Test(
        arguments: [
            ([0xFF, 0xFB, 0x90, 0x64], SniffedType(kind: .audio, mime: "audio/mpeg")),  // MPEG-1 layer III frame
            ([0xFF, 0xF9, 0x50, 0x80], SniffedType(kind: .audio, mime: "audio/aac")),  // MPEG-2 ADTS
            ([0xFF, 0xFB, 0xF0, 0x64], nil),  // bitrate index 15: not a frame
            ([0xFF, 0xD8], nil),  // too short for JPEG's magic
        ] as [([UInt8], SniffedType?)]
    )
    func frameHeadersAreCheckedFieldByField(_ bytes: [UInt8], _ expected: SniffedType?) {
        #expect(MediaSniffer.sniff(bytes) == expected)
    }

    @Test func isoBrandsDecideBetweenPhotoAudioAndVideo() {
        func ftyp(_ major: String, _ compatible: [String] = []) -> [UInt8] {
            let size = 16 + 4 * compatible.count
            return [0, 0, 0, UInt8(size)] + Array("ftyp".utf8) + Array(major.utf8) + [0, 0, 0, 0] + compatible.flatMap { Array($0.utf8) }
        }
        #expect(MediaSniffer.sniff(ftyp("mif1", ["mif1", "avif"]))?.mime == "image/avif")
        #expect(MediaSniffer.sniff(ftyp("mif1", ["heic"]))?.mime == "image/heic")
        #expect(MediaSniffer.sniff(ftyp("M4A ", ["isom"]))?.kind == .audio)
        #expect(MediaSniffer.sniff(ftyp("mp42"))?.mime == "video/mp4")
        #expect(MediaSniffer.sniff(ftyp("crx ")) == nil)
    }

    @Test func anOggStreamOfAnotherCodecIsRefused() {
        var page = Array("OggS".utf8) + [UInt8](repeating: 0, count: 24)
        page += [0x80] + Array("theora".utf8)
        #expect(MediaSniffer.sniff(page) == nil)
    }
}
