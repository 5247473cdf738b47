import CVipsShim
import Foundation
import MediaConcurrency
import MediaCore
import Synchronization

/// The ``ImageProcessor`` on libvips: header checks before any decode, one decode per photo (shrink-on-load
/// to the largest rendition, EXIF orientation applied, converted to sRGB, rendered into memory once), the
/// ladder derived from that, every rendition stripped of all metadata, WebP and JPEG. libvips blocks its
/// caller: each call runs on a thread of its own, never on an event loop or the cooperative pool.
public struct VipsImageProcessor: ImageProcessor {
    private static let started = Mutex(false)

    /// Starts libvips (once per process) with `concurrency` threads per operation.
    public init(concurrency: Int = 1) throws(ProcessingError) {
        let ok = Self.started.withLock { started -> Bool in
            if started { return true }
            started = mgw_vips_start("mediagw", Int32(concurrency)) == 0
            return started
        }
        guard ok else { throw ProcessingError(.internal, "libvips did not start: \(Self.lastError())") }
    }

    public static var version: String { String(cString: mgw_vips_version()) }

    public var loaders: [String: Bool] {
        let names = [
            "jpeg": "jpegload_buffer", "png": "pngload_buffer", "webp": "webpload_buffer", "gif": "gifload_buffer",
            "heif/avif": "heifload_buffer", "webp-save": "webpsave_buffer", "jpeg-save": "jpegsave_buffer",
        ]
        return names.mapValues { mgw_vips_has_operation($0) != 0 }
    }

    static func lastError() -> String {
        let text = String(cString: mgw_vips_error()).split(separator: "\n").first.map(String.init) ?? "unknown libvips error"
        return String(text.prefix(300))
    }

    /// An owned VipsImage.
    final class Image {
        let pointer: OpaquePointer
        init(_ pointer: OpaquePointer) { self.pointer = pointer }
        deinit { mgw_vips_unref(pointer) }
        var width: Int { Int(mgw_vips_width(pointer)) }
        var height: Int { Int(mgw_vips_height(pointer)) }
    }

    static func make(_ code: ProcessingError.Code, _ body: (UnsafeMutablePointer<OpaquePointer?>) -> Int32) throws -> Image {
        var out: OpaquePointer?
        guard body(&out) == 0, let out else { throw ProcessingError(code, lastError()) }
        return Image(out)
    }

    public func derive(encoded bytes: [UInt8], settings: PhotoSettings, prefix: String) async throws(ProcessingError) -> PhotoDerivation {
        try await onOwnThread { () throws(ProcessingError) in try Self.typed { try deriveEncoded(bytes, settings: settings, prefix: prefix) } }
    }

    public func derive(frame: RGBFrame, settings: PhotoSettings, prefix: String) async throws(ProcessingError) -> PhotoDerivation {
        try await onOwnThread { () throws(ProcessingError) in try Self.typed { try deriveFrame(frame, settings: settings, prefix: prefix) } }
    }

    /// Runs `body`, whose errors are all ``ProcessingError``s, as a typed-throwing call.
    static func typed<T>(_ body: () throws -> T) throws(ProcessingError) -> T {
        do {
            return try body()
        } catch let error as ProcessingError {
            throw error
        } catch {
            throw ProcessingError(.internal, "\(error)")
        }
    }

    private func deriveEncoded(_ bytes: [UInt8], settings: PhotoSettings, prefix: String) throws -> PhotoDerivation {
        // 1. the header alone: refuse what is too big before decoding a pixel
        let header = try bytes.withUnsafeBytes { raw in
            try Self.make(.invalidMedia) { mgw_vips_header(raw.baseAddress, raw.count, $0) }
        }
        let width = header.width
        let pages = max(1, Int(mgw_vips_pages(header.pointer)))
        let frameHeight = max(0, Int(mgw_vips_page_height(header.pointer)))
        guard width > 0, frameHeight > 0 else { throw ProcessingError(.unsupported, "the image has a zero dimension") }
        guard width * frameHeight <= settings.maxPixels else {
            throw ProcessingError(.unsupported, "\(width)x\(frameHeight) is more than \(settings.maxPixels) pixels")
        }
        guard pages <= settings.maxFrames else {
            throw ProcessingError(.unsupported, "\(pages) frames is more than \(settings.maxFrames)")
        }
        let orientation = (1...8).contains(Int(mgw_vips_orientation(header.pointer))) ? Int(mgw_vips_orientation(header.pointer)) : 1

        // 2. the container must be whole, and its loader one we expect (never ImageMagick or a format we did
        //    not sniff)
        let loader = String(cString: mgw_vips_loader(header.pointer))
        guard ["jpegload", "pngload", "gifload", "webpload", "heifload"].contains(where: { loader.hasPrefix($0) }),
            let sniffed = MediaSniffer.sniff(bytes.prefix(MediaSniffer.prefixLength)), sniffed.kind == .photo
        else {
            throw ProcessingError(.unsupported, "not a supported photo format (\(loader))")
        }
        try ImageSanity.check(bytes, mime: sniffed.mime, maxFrames: settings.maxFrames)

        // 3. one decode: to the largest rendition (JPEG shrinks on load), failing on any decoder warning,
        //    upright, sRGB, rendered into memory once
        let largest = settings.widths.max() ?? 1280
        let displayWidth = orientation >= 5 ? frameHeight : width
        var shrink = 1
        if loader.hasPrefix("jpegload") {
            while shrink < 8 && displayWidth / (shrink * 2) >= largest { shrink *= 2 }
        }
        let base = try bytes.withUnsafeBytes { raw in
            let opened = try Self.make(.invalidMedia) { mgw_vips_load(raw.baseAddress, raw.count, shrink > 1 ? "shrink=\(shrink)" : "", $0) }
            let thumbnail = try Self.make(.invalidMedia) { mgw_vips_thumbnail_image(opened.pointer, Int32(largest), $0) }
            return try Self.make(.invalidMedia) { mgw_vips_materialize(thumbnail.pointer, $0) }
        }
        var derivation = try ladder(
            from: base,
            settings: settings,
            prefix: prefix,
            orientation: orientation,
            frames: pages,
            originalBytes: bytes.count
        )

        // 4. an animation also gets an animated WebP at the smallest size
        if pages > 1, let smallest = settings.widths.min() {
            let animated = try bytes.withUnsafeBytes { raw in
                let frames = try Self.make(.invalidMedia) { mgw_vips_load(raw.baseAddress, raw.count, "n=-1", $0) }
                return try Self.make(.invalidMedia) { mgw_vips_thumbnail_image(frames.pointer, Int32(smallest), $0) }
            }
            let stripped = try Self.make(.internal) { mgw_vips_strip(animated.pointer, $0) }
            let frame = max(1, Int(mgw_vips_page_height(stripped.pointer)))
            derivation.renditions.append(
                EncodedImage(
                    name: "\(prefix)anim.webp",
                    mime: "image/webp",
                    width: stripped.width,
                    height: frame,
                    bytes: try Self.save(stripped, webp: true, quality: settings.webpQuality)
                )
            )
        }
        return derivation
    }

    private func deriveFrame(_ frame: RGBFrame, settings: PhotoSettings, prefix: String) throws -> PhotoDerivation {
        guard frame.width > 0, frame.height > 0, frame.pixels.count >= frame.width * frame.height * 3 else {
            throw ProcessingError(.invalidMedia, "an empty frame")
        }
        let image = try frame.pixels.withUnsafeBytes { raw in
            try Self.make(.internal) { mgw_vips_from_rgb(raw.baseAddress, Int32(frame.width), Int32(frame.height), $0) }
        }
        let largest = settings.widths.max() ?? 1280
        let base =
            image.width > largest
            ? try Self.make(.internal) { mgw_vips_resize(image.pointer, Double(largest) / Double(image.width), $0) }
            : image
        return try ladder(from: base, settings: settings, prefix: prefix, orientation: 1, frames: 1, originalBytes: nil)
    }

    /// Every ladder width the image reaches (never upscaled: the first width at or above the image's own is
    /// rendered at the image's width), as WebP and JPEG, plus the placeholder.
    ///
    /// Storage is paid for ten years: a rendition larger than the original (`originalBytes`) is encoded at
    /// lower qualities, one after the other, until it is no larger; when none gets there, the smallest is
    /// kept.
    private func ladder(
        from base: Image,
        settings: PhotoSettings,
        prefix: String,
        orientation: Int,
        frames: Int,
        originalBytes: Int?
    ) throws -> PhotoDerivation {
        var renditions: [EncodedImage] = []
        var smallest: Image?
        for width in settings.widths.sorted() {
            let target = min(width, base.width)
            var sized = base
            if target < base.width {
                // computed once into memory: the WebP, the JPEG and any re-encode at a lower quality read it,
                // instead of each running the resize and the sharpening again
                let resized = try Self.make(.internal) { mgw_vips_resize(base.pointer, Double(target) / Double(base.width), $0) }
                let sharpened = try Self.make(.internal) { mgw_vips_sharpen(resized.pointer, $0) }
                sized = try Self.make(.internal) { mgw_vips_materialize(sharpened.pointer, $0) }
            }
            if smallest == nil { smallest = sized }
            let stripped = try Self.make(.internal) { mgw_vips_strip(sized.pointer, $0) }
            let cap = originalBytes
            renditions.append(
                EncodedImage(
                    name: "\(prefix)w\(width).webp",
                    mime: "image/webp",
                    width: stripped.width,
                    height: stripped.height,
                    bytes: try Self.save(stripped, webp: true, quality: settings.webpQuality, within: cap)
                )
            )
            let flat = try Self.make(.internal) { mgw_vips_flatten_rgb(stripped.pointer, $0) }
            renditions.append(
                EncodedImage(
                    name: "\(prefix)w\(width).jpg",
                    mime: "image/jpeg",
                    width: flat.width,
                    height: flat.height,
                    bytes: try Self.save(flat, webp: false, quality: settings.jpegQuality, within: cap)
                )
            )
            if target == base.width { break }
        }
        // placeholder: a small copy's pixels, from the smallest rendition (as good a source for 32 px, and far
        // fewer pixels to read than the base)
        let source = smallest ?? base
        let sampleWidth = min(32, source.width)
        let sampleHeight = max(1, min(32, source.height * sampleWidth / max(1, source.width)))
        var pixels: UnsafeMutablePointer<UInt8>?
        var length = 0
        guard mgw_vips_rgb_pixels(source.pointer, Int32(sampleWidth), Int32(sampleHeight), &pixels, &length) == 0, let pixels else {
            throw ProcessingError(.internal, Self.lastError())
        }
        let sample = Array(UnsafeBufferPointer(start: pixels, count: length))
        mgw_vips_free(pixels)
        return PhotoDerivation(
            width: base.width,
            height: base.height,
            orientation: orientation,
            frames: frames,
            blurHash: BlurHash.encode(rgb: sample, width: sampleWidth, height: sampleHeight),
            dominantColor: BlurHash.dominantColor(rgb: sample),
            renditions: renditions
        )
    }

    /// How far below the configured quality a rendition that outgrows its original is tried again.
    static let fallbackQualitySteps = [10, 20, 30]

    /// ``save(_:webp:quality:)``, at lower qualities while the result is larger than `cap` bytes (never
    /// below 40); the smallest result when none fits.
    static func save(_ image: Image, webp: Bool, quality: Int, within cap: Int?) throws -> [UInt8] {
        var best = try save(image, webp: webp, quality: quality)
        guard let cap else { return best }
        for step in fallbackQualitySteps where best.count > cap {
            let lower = quality - step
            guard lower >= 40 else { break }
            let encoded = try save(image, webp: webp, quality: lower)
            if encoded.count < best.count { best = encoded }
        }
        return best
    }

    static func save(_ image: Image, webp: Bool, quality: Int) throws -> [UInt8] {
        var buffer: UnsafeMutableRawPointer?
        var length = 0
        let rc =
            webp
            ? mgw_vips_save_webp(image.pointer, Int32(quality), &buffer, &length)
            : mgw_vips_save_jpeg(image.pointer, Int32(quality), &buffer, &length)
        guard rc == 0, let buffer else { throw ProcessingError(.internal, "encoding failed: \(lastError())") }
        defer { mgw_vips_free(buffer) }
        return Array(UnsafeRawBufferPointer(start: buffer, count: length))
    }
}
