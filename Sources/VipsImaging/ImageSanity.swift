import CVipsShim
import MediaCore

/// Structural checks of an upload's container, before any decoder sees it: decoders are lenient (a
/// truncated PNG or a GIF frame far outside its canvas decodes "fine"), hostile input must fail instead.
enum ImageSanity {
    static func check(_ bytes: [UInt8], mime: String, maxFrames: Int) throws(ProcessingError) {
        switch mime {
        case "image/png": try png(bytes)
        case "image/gif": try gif(bytes, maxFrames: maxFrames)
        case "image/jpeg": try jpeg(bytes)
        default: return
        }
    }

    static func invalid(_ message: String) -> ProcessingError { ProcessingError(.invalidMedia, message) }

    static func uint32(_ b: [UInt8], _ at: Int) -> Int {
        Int(b[at]) << 24 | Int(b[at + 1]) << 16 | Int(b[at + 2]) << 8 | Int(b[at + 3])
    }

    static func uint16LE(_ b: [UInt8], _ at: Int) -> Int { Int(b[at]) | Int(b[at + 1]) << 8 }

    static func inflates(_ data: ArraySlice<UInt8>, limit: Int) -> Int32 {
        var size = 0
        return Array(data).withUnsafeBytes { mgw_inflate_check($0.baseAddress, $0.count, limit, &size) }
    }

    /// Chunks whole and checksummed, IHDR first, image data that inflates completely, compressed text and
    /// profiles of bounded size, IEND last.
    static func png(_ b: [UInt8]) throws(ProcessingError) {
        var at = 8
        var idat: [UInt8] = []
        var width = 0
        var height = 0
        var bitsPerPixel = 0
        var sawEnd = false
        while at < b.count && !sawEnd {
            guard at + 12 <= b.count else { throw invalid("the PNG ends inside a chunk header") }
            let length = uint32(b, at)
            guard length <= b.count - at - 12 else { throw invalid("a PNG chunk runs past the end of the file") }
            let type = String(decoding: b[at + 4..<at + 8], as: UTF8.self)
            let data = b[at + 8..<at + 8 + length]
            let crc = b[at + 4..<at + 8 + length].withUnsafeBytes { mgw_crc32($0.baseAddress, $0.count) }
            guard UInt32(truncatingIfNeeded: crc) == UInt32(uint32(b, at + 8 + length)) else { throw invalid("the PNG chunk \(type) has a bad CRC") }
            if at == 8 && type != "IHDR" { throw invalid("the PNG does not start with IHDR") }
            switch type {
            case "IHDR":
                guard length == 13 else { throw invalid("the PNG header has the wrong size") }
                width = uint32(b, at + 8)
                height = uint32(b, at + 12)
                let depth = Int(b[at + 16])
                let colour = Int(b[at + 17])
                let valid: [Int: [Int]] = [0: [1, 2, 4, 8, 16], 2: [8, 16], 3: [1, 2, 4, 8], 4: [8, 16], 6: [8, 16]]
                guard width > 0, height > 0, valid[colour]?.contains(depth) == true else { throw invalid("the PNG header is invalid") }
                let channels = [0: 1, 2: 3, 3: 1, 4: 2, 6: 4][colour]!
                bitsPerPixel = channels * depth
            case "IDAT":
                idat += data
            case "zTXt", "iCCP":
                guard let zero = data.firstIndex(of: 0), zero + 2 <= data.endIndex else { throw invalid("the PNG chunk \(type) is malformed") }
                let limit = type == "iCCP" ? 4 << 20 : 1 << 20
                guard inflates(data[(zero + 2)...], limit: limit) == 0 else { throw invalid("the PNG chunk \(type) is corrupt or inflates too far") }
            case "iTXt":
                guard let zero = data.firstIndex(of: 0), zero + 3 <= data.endIndex else { throw invalid("the PNG chunk iTXt is malformed") }
                if data[zero + 1] == 1 {
                    var rest = data[(zero + 3)...]
                    for _ in 0..<2 {  // language tag and translated keyword
                        guard let end = rest.firstIndex(of: 0) else { throw invalid("the PNG chunk iTXt is malformed") }
                        rest = rest[(end + 1)...]
                    }
                    guard inflates(rest, limit: 1 << 20) == 0 else { throw invalid("the PNG chunk iTXt is corrupt or inflates too far") }
                }
            case "IEND":
                sawEnd = true
            default:
                break
            }
            at += length + 12
        }
        guard sawEnd else { throw invalid("the PNG is truncated (no IEND)") }
        guard !idat.isEmpty else { throw invalid("the PNG has no image data") }
        // the rows (plus one filter byte each), with room for interlacing's extra filter bytes
        let rowBytes = (width * bitsPerPixel + 7) / 8 + 1
        let limit = height * rowBytes * 2 + 4096
        switch inflates(idat[...], limit: limit) {
        case 0: return
        case -2: throw invalid("the PNG image data inflates to more than its size")
        default: throw invalid("the PNG image data is corrupt or truncated")
        }
    }

    /// A canvas with both dimensions, every frame inside it, whole blocks, at most `maxFrames` frames.
    static func gif(_ b: [UInt8], maxFrames: Int) throws(ProcessingError) {
        guard b.count >= 13 else { throw invalid("the GIF is truncated") }
        let width = uint16LE(b, 6)
        let height = uint16LE(b, 8)
        guard width > 0, height > 0 else { throw invalid("the GIF canvas has a zero dimension") }
        var at = 13
        if b[10] & 0x80 != 0 { at += 3 << (Int(b[10] & 0x07) + 1) }
        func skipBlocks() throws(ProcessingError) {
            while true {
                guard at < b.count else { throw invalid("the GIF is truncated") }
                let size = Int(b[at])
                at += 1 + size
                if size == 0 { return }
            }
        }
        var frames = 0
        while true {
            guard at < b.count else {
                // a missing trailer is common and harmless once a frame is complete
                if frames > 0 { return }
                throw invalid("the GIF is truncated")
            }
            switch b[at] {
            case 0x3B:
                guard frames > 0 else { throw invalid("the GIF has no image") }
                return
            case 0x21:
                at += 2
                try skipBlocks()
            case 0x2C:
                guard at + 10 <= b.count else { throw invalid("the GIF is truncated") }
                let left = uint16LE(b, at + 1)
                let top = uint16LE(b, at + 3)
                let frameWidth = uint16LE(b, at + 5)
                let frameHeight = uint16LE(b, at + 7)
                guard frameWidth > 0, frameHeight > 0, left + frameWidth <= width, top + frameHeight <= height else {
                    throw ProcessingError(.unsupported, "a GIF frame lies outside its \(width)x\(height) canvas")
                }
                frames += 1
                guard frames <= maxFrames else { throw ProcessingError(.unsupported, "the GIF has more than \(maxFrames) frames") }
                let flags = b[at + 9]
                at += 10
                if flags & 0x80 != 0 { at += 3 << (Int(flags & 0x07) + 1) }
                at += 1  // LZW minimum code size
                try skipBlocks()
            default:
                throw invalid("the GIF has an unknown block")
            }
        }
    }

    /// Whole marker segments up to the first scan, a frame header before it, and an EXIF block (the
    /// orientation is read from it) with a valid TIFF header.
    static func jpeg(_ b: [UInt8]) throws(ProcessingError) {
        var at = 2
        var sawFrame = false
        while true {
            guard at + 4 <= b.count else { throw invalid("the JPEG ends before its image data") }
            guard b[at] == 0xFF else { throw invalid("the JPEG has a broken marker") }
            let marker = b[at + 1]
            if marker == 0xFF {
                at += 1
                continue
            }  // fill byte
            if (0xD0...0xD7).contains(marker) || marker == 0x01 {
                at += 2
                continue
            }
            let length = Int(b[at + 2]) << 8 | Int(b[at + 3])
            guard length >= 2, at + 2 + length <= b.count else { throw invalid("a JPEG segment runs past the end of the file") }
            let segment = b[(at + 4)..<(at + 2 + length)]
            switch marker {
            case 0xC0...0xCF where marker != 0xC4 && marker != 0xC8 && marker != 0xCC:
                sawFrame = true
            case 0xE1 where segment.starts(with: Array("Exif\0\0".utf8)):
                let tiff = Array(segment.dropFirst(6))
                guard tiff.count >= 8, tiff.starts(with: [0x49, 0x49, 0x2A, 0x00]) || tiff.starts(with: [0x4D, 0x4D, 0x00, 0x2A]) else {
                    throw invalid("the JPEG's EXIF block is malformed")
                }
                let littleEndian = tiff[0] == 0x49
                let offset =
                    littleEndian
                    ? Int(tiff[4]) | Int(tiff[5]) << 8 | Int(tiff[6]) << 16 | Int(tiff[7]) << 24
                    : uint32(tiff, 4)
                guard offset >= 8, offset + 2 <= tiff.count else { throw invalid("the JPEG's EXIF block is malformed") }
            case 0xDA:
                guard sawFrame else { throw invalid("the JPEG has no frame header") }
                return
            default:
                break
            }
            at += 2 + length
        }
    }
}
