import Foundation
import MediaCore
import Testing
import VipsImaging

/// The libvips image processor on real files of the corpus (`Tests/Fixtures/corpus`; no services involved).
/// The processor runs libvips on a thread of its own, so the cooperative pool stays free for the rest of
/// the run (the gateways of the integration tests live in this process). Serialized, so that these tests
/// take one core, not all of them.
@Suite(.serialized) struct VipsImageProcessorTests {
    static let corpus = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../Fixtures/corpus").standardized

    /// The file names in a corpus folder; none if the folder is missing, which the count guards below catch.
    static func names(in folder: String) -> [String] {
        do {
            return try FileManager.default.contentsOfDirectory(atPath: corpus.appendingPathComponent(folder).path).sorted()
        } catch {
            return []
        }
    }
    let processor = try! VipsImageProcessor()
    let settings = PhotoSettings()

    func bytes(_ path: String) throws -> [UInt8] { Array(try Data(contentsOf: Self.corpus.appendingPathComponent(path))) }

    func derive(_ path: String) async throws -> PhotoDerivation {
        try await derive(encoded: try bytes(path))
    }

    func derive(encoded: [UInt8]) async throws -> PhotoDerivation {
        try await processor.derive(encoded: encoded, settings: settings, prefix: "")
    }

    func contains(_ haystack: [UInt8], _ needle: String) -> Bool {
        let pattern = Array(needle.utf8)
        guard haystack.count >= pattern.count else { return false }
        return (0...(haystack.count - pattern.count)).contains { Array(haystack[$0..<$0 + pattern.count]) == pattern }
    }

    @Test func aPhotoGetsTheWholeLadderInBothFormatsNeverUpscaled() async throws {
        let result = try await derive("images/gps-nikon-coolpix-p6000-1.jpg")  // 640x480
        #expect(result.width == 640 && result.height == 480)
        #expect(result.renditions.map(\.name) == ["w160.webp", "w160.jpg", "w320.webp", "w320.jpg", "w640.webp", "w640.jpg"])
        #expect(result.renditions.map(\.width) == [160, 160, 320, 320, 640, 640])
        #expect(result.renditions.first { $0.name == "w320.jpg" }?.height == 240)
        for rendition in result.renditions {
            #expect(rendition.bytes.count > 100)
            #expect(MediaSniffer.sniff(rendition.bytes)?.mime == rendition.mime, "\(rendition.name)")
        }
    }

    @Test func everyRenditionLosesTheCameraMetadataAndGPS() async throws {
        let source = try bytes("images/gps-nikon-coolpix-p6000-1.jpg")
        #expect(contains(source, "NIKON"))
        let result = try await derive(encoded: source)
        for rendition in result.renditions {
            for marker in ["NIKON", "COOLPIX", "GPS", "Exif\0\0MM", "http://ns.adobe.com/xap"] {
                #expect(!contains(rendition.bytes, marker), "\(rendition.name) still has \(marker.debugDescription)")
            }
        }
    }

    @Test(arguments: 1...8)
    func exifOrientationIsApplied(_ orientation: Int) async throws {
        let result = try await derive("images/orientation-\(orientation).jpg")
        // every variant displays as the same 1200x1800 portrait
        #expect(result.width == 1200 && result.height == 1800, "orientation \(orientation): \(result.width)x\(result.height)")
        #expect(result.orientation == orientation)
        let top = result.renditions.first { $0.name == "w1280.jpg" }
        #expect(top?.width == 1200 && top?.height == 1800)
    }

    @Test func anInvalidOrientationTagIsTreatedAsNone() async throws {
        let result = try await derive("images/orientation-0-invalid-tag.jpg")
        #expect(result.orientation == 1)
        #expect(result.width == 1200 && result.height == 1800)
    }

    @Test func anAnimationAlsoGetsAnAnimatedWebPAtTheSmallestSize() async throws {
        for path in ["images/gif-animated.gif", "images/webp-animated.webp"] {
            let result = try await derive(path)
            #expect(result.frames == 10, "\(path)")
            let animated = try #require(result.renditions.first { $0.name == "anim.webp" }, "\(path)")
            #expect(animated.width == 160)
            #expect(contains(animated.bytes, "ANIM"), "an animated WebP has an ANIM chunk")
        }
    }

    @Test(arguments: [
        "images/cmyk-adobe.jpg", "images/cmyk-no-icc-profile.jpg", "images/png-16bit-rgb.png", "images/png-palette-trns.png",
        "images/webp-lossless-alpha.webp", "images/progressive.jpg", "images/heic-small.heic", "images/avif-8bit-yuv420.avif",
        "images/png-interlaced-adam7-rgba.png", "images/apng-animated.png", "images/edge-jpeg-arithmetic-coding.jpg",
    ])
    func validPhotosOfEveryFlavourAreRendered(_ path: String) async throws {
        let result = try await derive(path)
        #expect(!result.renditions.isEmpty)
        #expect(result.blurHash.count == 28, "4x3 components")
        #expect(result.dominantColor.count == 7 && result.dominantColor.hasPrefix("#"))
    }

    @Test(arguments: [
        "bad-images/bomb-jpeg-64250x64250.jpg", "bad-images/bomb-png-65536x65536.png", "bad-images/bomb-gif-40k-frames.gif",
        "bad-images/bomb-jpeg-20000x14000-real.jpg",
    ])
    func bombsAreRefusedFromTheHeaderWithoutDecoding(_ path: String) async throws {
        let started = ContinuousClock.now
        do {
            _ = try await derive(path)
            Issue.record("\(path) was rendered")
        } catch let error as ProcessingError {
            #expect(error.code == .unsupported, "\(path): \(error)")
        }
        #expect(ContinuousClock.now - started < .seconds(5))
    }

    static let badImages = names(in: "bad-images")
    /// Valid images under a misleading name: their bytes say what they are, and they render.
    static let validUnderAWrongName: Set = ["wrong-ext-heic-named.jpg", "wrong-ext-jpeg-named.png", "wrong-ext-png-named.jpg"]

    @Test func theBadImagesAreAllHere() {
        #expect(Self.badImages.count == 30)
    }

    @Test(arguments: badImages)
    func everyBadImageFailsWithAReasonInsteadOfBecomingGreyGarbage(_ name: String) async throws {
        let path = "bad-images/\(name)"
        if Self.validUnderAWrongName.contains(name) {
            #expect(try await !derive(path).renditions.isEmpty)
            return
        }
        do {
            let result = try await derive(path)
            Issue.record("\(path) was rendered (\(result.width)x\(result.height)) instead of failing")
        } catch let error as ProcessingError {
            #expect(error.permanent && (error.code == .invalidMedia || error.code == .unsupported), "\(path): \(error)")
            #expect(!error.message.isEmpty)
        }
    }

    static let validPhotos = names(in: "images").filter {
        !$0.hasPrefix("svg-") && !$0.hasPrefix("tiff-") && !undecodableHere.contains("images/\($0)")
    }

    @Test func theValidPhotosAreAllHere() {
        #expect(Self.validPhotos.count == 36)
    }

    @Test(arguments: validPhotos)
    func everyValidCorpusPhotoRenders(_ name: String) async throws {
        let result = try await derive("images/\(name)")
        #expect(result.renditions.count >= 2, "\(name)")
        #expect(result.width > 0 && result.height > 0)
    }

    /// No rendition costs more storage than the original (a JPEG 1200 px wide upright, of 251,800 B, once got
    /// a `w1280.jpg` of 284,782 B).
    @Test func noRenditionIsLargerThanTheOriginal() async throws {
        let original = try bytes("images/orientation-6.jpg")
        #expect(original.count == 251_800)
        let result = try await derive(encoded: original)
        let top = result.renditions.filter { $0.name.hasPrefix("w1280.") }
        #expect(top.count == 2)
        for rendition in top { #expect(rendition.bytes.count <= original.count, "\(rendition.name): \(rendition.bytes.count) B") }
    }

    /// Over the corpus, only two kinds of original may be outgrown by a rendition even at the lowest quality
    /// tried: originals in a more efficient codec than the renditions' (AVIF, HEIC), and
    /// tiny, tightly compressed ones (a few-hundred-byte PNG) where no WebP or JPEG of the same pixels can be
    /// smaller. Measured: 14 renditions, all of AVIF originals or of originals under 16 KiB.
    @Test func acrossTheCorpusRenditionsOutgrowOnlyTinyOrMoreEfficientOriginals() async throws {
        var outgrown: [String] = []
        for name in Self.validPhotos {
            let original = try bytes("images/\(name)")
            let result = try await derive(encoded: original)
            let moreEfficientCodec = name.hasSuffix(".avif") || name.hasSuffix(".heic")
            for rendition in result.renditions where rendition.bytes.count > original.count {
                outgrown.append("\(name) \(rendition.name) \(rendition.bytes.count)/\(original.count)")
                #expect(moreEfficientCodec || original.count < 16 << 10, "outgrown: \(outgrown.last ?? "")")
            }
        }
        #expect(Self.validPhotos.count == 36)
        #expect(outgrown.count <= 14, "\(outgrown)")
    }

    /// Valid files libvips 8.14 with Debian's libjpeg and libheif 1.15 cannot decode: 12-bit and lossless
    /// JPEG, AVIF sequences, and an AVIF rotated by its irot box ("bad image dimensions on decode").
    static let undecodableHere = [
        "images/edge-jpeg-12bit.jpg", "images/edge-jpeg-lossless-sof3.jpg",
        "images/avif-animated.avifs", "images/avif-irot-rotate90.avif",
    ]

    @Test(arguments: undecodableHere)
    func validFilesThisLibvipsCannotDecodeFailCleanly(_ path: String) async throws {
        do {
            _ = try await derive(path)
            Issue.record("\(path) was rendered")
        } catch let error as ProcessingError {
            #expect(error.permanent, "\(path): \(error)")
        }
    }

    @Test func aVideoFrameGetsTheLadderToo() async throws {
        var pixels = [UInt8](repeating: 0, count: 640 * 360 * 3)
        for index in stride(from: 0, to: pixels.count, by: 3) {
            pixels[index] = 200
            pixels[index + 2] = 40
        }
        let result = try await processor.derive(frame: RGBFrame(width: 640, height: 360, pixels: pixels), settings: settings, prefix: "poster-")
        #expect(
            result.renditions.map(\.name) == [
                "poster-w160.webp", "poster-w160.jpg", "poster-w320.webp", "poster-w320.jpg", "poster-w640.webp", "poster-w640.jpg",
            ]
        )
        #expect(result.dominantColor == "#c80028")
    }

    @Test func theLoadersOfThisBuildAreReported() {
        let loaders = processor.loaders
        #expect(loaders["jpeg"] == true && loaders["png"] == true && loaders["webp"] == true && loaders["gif"] == true)
        #expect(loaders["heif/avif"] != nil)
    }
}

@Suite struct BlurHashTests {
    @Test func aFlatImageEncodesToItsColourWithNoAC() {
        let pixels = [UInt8](repeating: 255, count: 8 * 8 * 3)
        let hash = BlurHash.encode(rgb: pixels, width: 8, height: 8, x: 4, y: 3)
        #expect(hash.count == 28)
        #expect(hash.hasPrefix("L"))  // 4x3 components
        #expect(BlurHash.dominantColor(rgb: pixels) == "#ffffff")
    }
}
